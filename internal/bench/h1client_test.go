package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestH1Client: the lean client reads Content-Length and chunked bodies,
// sends Range, reuses a kept-alive connection, does not reuse one the
// server closes, and resends a GET once when a reused connection turns
// out to be dead.
func TestH1Client(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		case "/chunked":
			for _, s := range []string{"chu", "nk", "ed"} {
				_, _ = io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		case "/range":
			_, _ = io.WriteString(w, r.Header.Get("Range"))
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := &h1Client{dial: (&net.Dialer{}).DialContext}
	defer c.close()
	get := func(path, rng string) string {
		t.Helper()
		u, _ := url.Parse(srv.URL + path)
		r, err := c.do(context.Background(), u, rng, 5*time.Second)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, err := io.ReadAll(r.Body)
		r.finish(err == nil)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, r.StatusCode, err)
		}
		return string(b)
	}
	if got := get("/length", ""); got != "hello" {
		t.Errorf("/length = %q", got)
	}
	if got := get("/chunked", ""); got != "chunked" {
		t.Errorf("/chunked = %q", got)
	}
	if got := get("/range", "bytes=0-99"); got != "bytes=0-99" {
		t.Errorf("/range = %q", got)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for three sequential requests, want 1 kept alive", n)
	}
	if got := get("/close", ""); got != "bye" {
		t.Errorf("/close = %q", got)
	}
	if got := get("/length", ""); got != "hello" || conns.Load() != 2 {
		t.Errorf("after Connection: close: %q on %d connections, want a second connection", got, conns.Load())
	}

	// The server drops its idle connections: the pooled one is dead, and
	// the next GET is sent again on a fresh connection.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if got := get("/length", ""); got != "hello" {
		t.Errorf("after the server closed the idle connection: %q", got)
	}

	// A cancelled context unblocks a request that is waiting for headers.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		if nc, err := ln.Accept(); err == nil {
			defer nc.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	u, _ := url.Parse("http://" + ln.Addr().String() + "/never")
	if _, err := c.do(ctx, u, "", time.Minute); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("a request past its context: %v, want the context's error", err)
	}
}

// TestH1ClientAbandonsBody: a response abandoned half-read (an error, or
// the run ending) is let go at once, not drained until its deadline.
func TestH1ClientAbandonsBody(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		_, _ = io.WriteString(w, "a first few bytes")
		w.(http.Flusher).Flush()
		select { // the rest never comes while the test runs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	c := &h1Client{dial: (&net.Dialer{}).DialContext}
	u, _ := url.Parse(srv.URL + "/slow")
	r, err := c.do(context.Background(), u, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.finish(false); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a hang guard; the deadline is a minute
		t.Fatal("finish(false) waits for the rest of the body")
	}
	if len(c.idle[u.Host]) != 0 {
		t.Error("an abandoned connection went back to the pool")
	}
}
