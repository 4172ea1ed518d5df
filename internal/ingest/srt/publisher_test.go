package srt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
)

// testPublisher is an in-memory ingest.Publisher: it knows a few keys and
// their passphrases, records every request and admission, and lets a test
// refuse admission or end a stream from the live side.
type testPublisher struct {
	mu          sync.Mutex
	passphrases map[string]string // key -> passphrase ("" = insecure ingest)
	refuse      error             // Authorize answers this when set
	lookups     []string          // keys given to SRTPassphrase
	requests    []ingest.Request
	admissions  []*testAdmission
	admitted    chan *testAdmission
}

func newTestPublisher(passphrases map[string]string) *testPublisher {
	return &testPublisher{passphrases: passphrases, admitted: make(chan *testAdmission, 16)}
}

func (p *testPublisher) SRTPassphrase(_ context.Context, key string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lookups = append(p.lookups, key)
	pass, ok := p.passphrases[key]
	if !ok {
		return "", ingest.ErrUnknownKey
	}
	return pass, nil
}

func (p *testPublisher) Authorize(_ context.Context, req ingest.Request) (ingest.Admission, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, req)
	if p.refuse != nil {
		return nil, p.refuse
	}
	if _, ok := p.passphrases[req.StreamKey]; !ok {
		return nil, ingest.ErrUnknownKey
	}
	a := &testAdmission{req: req, started: make(chan *testStream, 1), aborted: make(chan error, 1)}
	p.admissions = append(p.admissions, a)
	p.admitted <- a
	return a, nil
}

func (p *testPublisher) snapshot() (lookups []string, requests []ingest.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lookups...), append([]ingest.Request(nil), p.requests...)
}

// nextAdmission waits for the next admitted connection.
func (p *testPublisher) nextAdmission(t *testing.T, within time.Duration) *testAdmission {
	t.Helper()
	select {
	case a := <-p.admitted:
		return a
	case <-time.After(within):
		t.Fatalf("no connection was admitted within %s", within)
		return nil
	}
}

type testAdmission struct {
	req     ingest.Request
	started chan *testStream
	aborted chan error
	once    sync.Once
}

func (a *testAdmission) Start(tracks []media.Track, encoder string) (ingest.Stream, error) {
	for _, t := range tracks {
		if t.Codec != media.CodecH264 && t.Codec != media.CodecAAC {
			return nil, fmt.Errorf("%w: %s", ingest.ErrCodec, t.Codec)
		}
	}
	s := &testStream{tracks: tracks, encoder: encoder, done: make(chan struct{}), closed: make(chan struct{}), frameSeen: make(chan struct{}, 1)}
	a.started <- s
	return s, nil
}

func (a *testAdmission) Abort(reason error) {
	a.once.Do(func() { a.aborted <- reason })
}

// waitStream waits for Start.
func (a *testAdmission) waitStream(t *testing.T, within time.Duration) *testStream {
	t.Helper()
	select {
	case s := <-a.started:
		return s
	case err := <-a.aborted:
		t.Fatalf("admission aborted instead of starting: %v", err)
	case <-time.After(within):
		t.Fatalf("stream did not start within %s", within)
	}
	return nil
}

// waitAbort waits for Abort and returns its reason.
func (a *testAdmission) waitAbort(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-a.aborted:
		return err
	case <-a.started:
		t.Fatalf("stream started; want the admission aborted")
	case <-time.After(within):
		t.Fatalf("admission not aborted within %s", within)
	}
	return nil
}

type testStream struct {
	tracks  []media.Track
	encoder string

	mu        sync.Mutex
	frames    []media.Frame
	frameSeen chan struct{}
	endOnce   sync.Once
	done      chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
	reason    error
	closes    int
}

func (s *testStream) WriteFrame(f *media.Frame) error {
	select {
	case <-s.done:
		return errors.New("test: stream ended")
	default:
	}
	s.mu.Lock()
	s.frames = append(s.frames, *f)
	s.mu.Unlock()
	select {
	case s.frameSeen <- struct{}{}:
	default:
	}
	return nil
}

// WriteMetadata: SRT carries no in-band metadata yet.
func (s *testStream) WriteMetadata(string) error { return nil }

func (s *testStream) Done() <-chan struct{} { return s.done }

func (s *testStream) Close(reason error) {
	s.mu.Lock()
	s.closes++
	s.mu.Unlock()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.reason = reason
		s.mu.Unlock()
		close(s.closed)
	})
}

// end is the live side ending the stream.
func (s *testStream) end() { s.endOnce.Do(func() { close(s.done) }) }

// waitClosed waits for Close and returns its reason.
func (s *testStream) waitClosed(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(within):
		t.Fatalf("stream not closed within %s", within)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *testStream) snapshot() []media.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]media.Frame(nil), s.frames...)
}
