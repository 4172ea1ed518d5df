package messaging

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
)

// BenchmarkFanout: one SEND_MESSAGE from one client, received by all N
// clients of the room (rate limits lifted). ns/op is one message reaching
// everyone; ns/delivery divides that by N.
func BenchmarkFanout(b *testing.B) {
	for _, release := range []bool{false, true} {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("release=%v/clients=%d", release, n), func(b *testing.B) {
				benchmarkFanout(b, n, release)
			})
		}
	}
}

func benchmarkFanout(b *testing.B, n int, release bool) {
	h := newHarness(b, func(c *Config) { c.ConnRequestsPerSecond = 1 << 30; c.ReleaseHandler = release })
	h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 1 << 30})
	got := make(chan struct{}, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sender *websocket.Conn
	for i := range n {
		token, _, _ := h.ctl.issue(tokenSpec{UserID: fmt.Sprint("user", i), Capabilities: []string{chat.CapSendMessage}})
		ws, _, err := h.dial(ctx, token)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.CloseNow()
		if i == 0 {
			sender = ws
		}
		go func() {
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
	}
	frame := []byte(`{"Action":"SEND_MESSAGE","RequestId":"5b4c0b8e-6a9c-4c1e-9a52-0b0f4f2b7e11","Content":"a chat message of ordinary length, about sixty characters","Attributes":{"color":"red"}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := sender.Write(ctx, websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
		for range n {
			<-got
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
}

// BenchmarkIdleConnections reports what the server holds for each idle
// connection: heap in use plus goroutine stacks, after a forced GC, with
// 1000 connections open against none.
//
// The clients run in a child process (this test binary again, as
// TestIdleClientsHelper), so that none of their memory is in the
// figures: the process measured holds the server alone, plus the
// benchmark's list of tokens, which is allocated before the first
// measurement and kept to the last. The clients are bare TCP sockets
// that complete the handshake and never read, like idle viewers of a
// chat whose browser tab is in the background.
//
// release=false is ServeHTTP holding the net/http handler for the
// connection's life; release=true is Config.ReleaseHandler.
func BenchmarkIdleConnections(b *testing.B) {
	for _, release := range []bool{false, true} {
		b.Run(fmt.Sprintf("release=%v", release), func(b *testing.B) {
			benchmarkIdleConnections(b, release)
		})
	}
}

func benchmarkIdleConnections(b *testing.B, release bool) {
	const n = 1000
	var heap, stack, goroutines float64
	for range b.N {
		b.StopTimer()
		h := newHarness(b, func(c *Config) { c.ReleaseHandler = release })
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i], _, _ = h.ctl.issue(tokenSpec{UserID: fmt.Sprint("user", i)})
		}
		before := memInUse()
		g0 := runtime.NumGoroutine()
		b.StartTimer()

		clients := startIdleClients(b, h.hs.Listener.Addr().String(), tokens)
		deadline := time.Now().Add(30 * time.Second)
		for h.conns(testRoom) != n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := h.conns(testRoom); got != n {
			b.Fatalf("%d of %d clients connected", got, n)
		}
		after := memInUse()
		g1 := runtime.NumGoroutine()
		runtime.KeepAlive(tokens)
		heap = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / n
		stack = float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
		goroutines = float64(g1-g0) / n
		clients.stop()
		h.srv.Shutdown(context.Background())
	}
	b.ReportMetric(heap+stack, "B/idle-conn")
	b.ReportMetric(heap, "heap-B/idle-conn")
	b.ReportMetric(stack, "stack-B/idle-conn")
	b.ReportMetric(goroutines, "goroutines/idle-conn")
}

func memInUse() runtime.MemStats {
	// Twice: the first cycle's finalizers and sweeping free more.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// idleClients is the child process holding the clients.
type idleClients struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startIdleClients runs TestIdleClientsHelper and returns once it has
// completed every handshake.
func startIdleClients(tb testing.TB, addr string, tokens []string) *idleClients {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MESSAGING_IDLE_CLIENTS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &idleClients{cmd: cmd, stdin: stdin}
	tb.Cleanup(c.stop)
	go func() {
		w := bufio.NewWriter(stdin)
		fmt.Fprintln(w, addr)
		for _, t := range tokens {
			fmt.Fprintln(w, t)
		}
		fmt.Fprintln(w) // end of tokens; stdin stays open until stop
		w.Flush()
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			go io.Copy(io.Discard, stdout)
			return c
		}
		if strings.HasPrefix(line, "error") {
			tb.Fatalf("idle clients: %s", line)
		}
	}
	tb.Fatalf("idle clients exited before connecting: %v", sc.Err())
	return nil
}

// stop ends the child process: it exits when its stdin closes.
func (c *idleClients) stop() {
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
		_ = c.cmd.Wait()
	}
}

// TestIdleClientsHelper is the client side of BenchmarkIdleConnections
// when run as its child process: it reads the server address and the
// tokens from stdin, opens one WebSocket per token on a bare socket,
// prints "ready" and holds them until stdin closes.
func TestIdleClientsHelper(t *testing.T) {
	if os.Getenv("MESSAGING_IDLE_CLIENTS") != "1" {
		t.Skip("the child process of BenchmarkIdleConnections")
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	in.Scan()
	addr := in.Text()
	var tokens []string
	for in.Scan() && in.Text() != "" {
		tokens = append(tokens, in.Text())
	}
	conns := make([]net.Conn, len(tokens))
	errs := make(chan error, len(tokens))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, token := range tokens {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			nc, err := handshake(addr, token)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = nc
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	default:
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, nc := range conns {
		nc.Close()
	}
}

// handshake opens a WebSocket to /chat on a bare TCP connection and
// returns the connection unread.
func handshake(addr, token string) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(nc, "GET /chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
		addr, token)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	return nc, nil
}
