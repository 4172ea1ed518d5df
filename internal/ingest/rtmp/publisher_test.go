package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
)

// testPublisher is an in-memory ingest.Publisher: the front-end's own
// contract test double. It records every request, start and frame, admits
// only known keys, and refuses codecs the way admission does (H.264 video
// required, AAC audio optional).
type testPublisher struct {
	mu       sync.Mutex
	keys     map[string]bool
	requests []ingest.Request
	aborts   []error
	starts   []*testStream
	// admitAll skips the codec check (fuzzing wants frames to flow).
	admitAll bool
	// configure, when set, adjusts each new stream before frames flow.
	configure func(*testStream)
}

func newTestPublisher(keys ...string) *testPublisher {
	p := &testPublisher{keys: make(map[string]bool)}
	for _, k := range keys {
		p.keys[k] = true
	}
	return p
}

func (p *testPublisher) Authorize(ctx context.Context, req ingest.Request) (ingest.Admission, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, req)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !p.admitAll && !p.keys[req.StreamKey] {
		return nil, ingest.ErrUnknownKey
	}
	return &testAdmission{p: p, req: req}, nil
}

func (p *testPublisher) SRTPassphrase(context.Context, string) (string, error) {
	return "", errors.New("not used by RTMP")
}

func (p *testPublisher) snapshot() (reqs []ingest.Request, starts []*testStream, aborts []error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ingest.Request(nil), p.requests...), append([]*testStream(nil), p.starts...), append([]error(nil), p.aborts...)
}

type testAdmission struct {
	p   *testPublisher
	req ingest.Request
}

func (a *testAdmission) Start(tracks []media.Track, encoder string) (ingest.Stream, error) {
	s := &testStream{
		req: a.req, tracks: tracks, encoder: encoder,
		done: make(chan struct{}), closed: make(chan struct{}),
	}
	a.p.mu.Lock()
	a.p.starts = append(a.p.starts, s)
	configure, admitAll := a.p.configure, a.p.admitAll
	a.p.mu.Unlock()
	if !admitAll {
		if err := admitCodecs(tracks); err != nil {
			s.refused = err
			return nil, err
		}
	}
	if configure != nil {
		configure(s)
	}
	return s, nil
}

func (a *testAdmission) Abort(reason error) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.p.aborts = append(a.p.aborts, reason)
}

// admitCodecs mirrors what the live manager's admission refuses.
func admitCodecs(tracks []media.Track) error {
	video := 0
	for _, t := range tracks {
		switch {
		case t.Kind == media.Video && t.Codec == media.CodecH264:
			video++
		case t.Kind == media.Audio && t.Codec == media.CodecAAC:
		default:
			return fmt.Errorf("%w: %s", ingest.ErrCodec, t.Codec)
		}
	}
	if video != 1 {
		return fmt.Errorf("%w: need exactly one H.264 video track", ingest.ErrCodec)
	}
	return nil
}

// testStream records frames; endAfter / failAfter end it from the live side.
type testStream struct {
	req     ingest.Request
	tracks  []media.Track
	encoder string
	refused error

	mu        sync.Mutex
	frames    []media.Frame
	metadata  []string // in-band metadata, each after the frame it was dated at
	metaAfter []int    // how many frames had been written when each arrived
	endAfter  int      // close Done after this many frames
	failAfter int      // WriteFrame errors after this many frames
	done      chan struct{}
	doneOnce  sync.Once
	closed    chan struct{}
	reason    error
	closes    int
}

func (s *testStream) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closes > 0 {
		panic("WriteFrame after Close")
	}
	if s.failAfter > 0 && len(s.frames) >= s.failAfter {
		return errors.New("test: stream ended by live side")
	}
	s.frames = append(s.frames, *f)
	if s.endAfter > 0 && len(s.frames) >= s.endAfter {
		s.end()
	}
	return nil
}

func (s *testStream) WriteMetadata(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closes > 0 {
		panic("WriteMetadata after Close")
	}
	s.metadata = append(s.metadata, text)
	s.metaAfter = append(s.metaAfter, len(s.frames))
	return nil
}

func (s *testStream) end() { s.doneOnce.Do(func() { close(s.done) }) }

func (s *testStream) Done() <-chan struct{} { return s.done }

func (s *testStream) Close(reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closes++
	s.reason = reason
	if s.closes == 1 {
		close(s.closed)
	}
}

func (s *testStream) snapshot() []media.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]media.Frame(nil), s.frames...)
}

// lockedBuffer collects logs from connection goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testServer is a running Server on a loopback port.
type testServer struct {
	addr   string
	logs   *lockedBuffer
	cancel context.CancelFunc
	served chan error
}

// startServer serves on 127.0.0.1:0; wrap turns the listener into a TLS one
// for RTMPS. Cleanup stops the server and fails the test if Serve does not
// return promptly (a leaked connection goroutine).
func startServer(t *testing.T, pub ingest.Publisher, protocol string, wrap func(net.Listener) net.Listener, cfg Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	logs := &lockedBuffer{}
	cfg.Publisher = pub
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{addr: addr, logs: logs, cancel: cancel, served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(ctx, ln, protocol) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return within 10 s of cancel")
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	return ts
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
