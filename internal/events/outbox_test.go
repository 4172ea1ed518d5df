package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/store"
	"github.com/openivs/openivs/internal/testutil/pgtest"
)

// received collects what a test webhook got, in arrival order.
type received struct {
	mu     sync.Mutex
	events []Event
	ids    map[string]int // deliveries per event id
	sigOK  bool
	bad    []string
	notify chan struct{}
}

func newReceived() *received {
	return &received{ids: map[string]int{}, sigOK: true, notify: make(chan struct{}, 1)}
}

// webhook starts a receiver; fail decides per request whether to answer 500.
func (r *received) webhook(t *testing.T, secret []byte, fail func() bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if fail != nil && fail() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var e Event
		if err := json.Unmarshal(body, &e); err != nil {
			r.mu.Lock()
			r.bad = append(r.bad, string(body))
			r.mu.Unlock()
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		if !VerifySignature(secret, body, req.Header.Get(SignatureHeader)) || req.Header.Get(EventIDHeader) != e.ID {
			r.sigOK = false
		}
		r.ids[e.ID]++
		if r.ids[e.ID] == 1 {
			r.events = append(r.events, e)
		}
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *received) waitCount(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for r.count() < n {
		select {
		case <-r.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("received %d events, want %d", r.count(), n)
		}
	}
}

// inOrder checks that each partition's events arrived in publish order
// (detail.n counts up per partition).
func (r *received) inOrder(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	last := map[string]float64{}
	for _, e := range r.events {
		p := "account"
		if len(e.Resources) > 0 {
			p = e.Resources[0]
		}
		n := e.Detail["n"].(float64)
		if n <= last[p] && last[p] != 0 {
			t.Fatalf("partition %s: event %v after %v", p, n, last[p])
		}
		last[p] = n
	}
}

var quiet = slog.New(slog.DiscardHandler)

func sqliteStore(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "sqlite", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func runOutbox(t *testing.T, cfg OutboxConfig) *Outbox {
	t.Helper()
	if cfg.Holder == "" {
		cfg.Holder = "test-node"
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	o, err := NewOutbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return o
}

func channelEvent(channel string, n int) Event {
	return New(StreamStateChange, "123456789012", "us-west-2", time.Now(),
		map[string]any{"event_name": "Stream Start", "n": n}, "arn:aws:ivs:us-west-2:123456789012:channel/"+channel)
}

func TestOutboxDeliversInOrderPerChannel(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var st store.Store
			if backend == "sqlite" {
				st = sqliteStore(t, t.TempDir())
			} else {
				var err error
				if st, err = store.Open(t.Context(), pgtest.DSN(t), ""); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.Close() })
			}
			secret := []byte("s3cret")
			got := newReceived()
			// Every third request fails: order must hold through retries.
			var calls atomic.Int64
			srv := got.webhook(t, secret, func() bool { return calls.Add(1)%3 == 0 })
			o := runOutbox(t, OutboxConfig{Store: st, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
				Routes: []Route{{Sink: NewWebhook("", srv.URL, secret)}}})
			const perChannel = 40
			for i := 1; i <= perChannel; i++ {
				for _, ch := range []string{"a", "b", "c"} {
					o.Publish(t.Context(), channelEvent(ch, i))
				}
			}
			got.waitCount(t, 3*perChannel, 30*time.Second)
			got.inOrder(t)
			if !got.sigOK {
				t.Fatal("a delivery had a bad signature or event id header")
			}
			if n, err := st.PendingCount(t.Context(), "webhook:"+srv.URL); err != nil || n != 0 {
				// Settlement follows delivery closely; allow it a moment.
				time.Sleep(200 * time.Millisecond)
				if n, err = st.PendingCount(t.Context(), "webhook:"+srv.URL); err != nil || n != 0 {
					t.Fatalf("pending after delivery: %d, %v", n, err)
				}
			}
		})
	}
}

// Events written with a state change are delivered once Wake is called.
func TestOutboxDeliversEventsWrittenWithResources(t *testing.T) {
	st := sqliteStore(t, t.TempDir())
	got := newReceived()
	srv := got.webhook(t, nil, nil)
	o := runOutbox(t, OutboxConfig{Store: st, Routes: []Route{{Sink: NewWebhook("hook", srv.URL, nil)}}})
	recs, err := Records([]Event{channelEvent("x", 1), channelEvent("x", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(t.Context(), &store.Resource{ARN: "arn:x", Kind: "stream", Account: "1", Events: recs}, store.Quota{}); err != nil {
		t.Fatal(err)
	}
	o.Wake()
	got.waitCount(t, 2, 5*time.Second)
	got.inOrder(t)
}

func TestOutboxPatternFilters(t *testing.T) {
	st := sqliteStore(t, t.TempDir())
	all, starts := newReceived(), newReceived()
	allSrv, startSrv := all.webhook(t, nil, nil), starts.webhook(t, nil, nil)
	pattern, err := ParsePattern([]byte(`{"source":["aws.ivs"],"detail-type":["IVS Stream State Change"],
		"detail":{"event_name":["Stream Start"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	o := runOutbox(t, OutboxConfig{Store: st, Routes: []Route{
		{Sink: NewWebhook("all", allSrv.URL, nil)},
		{Sink: NewWebhook("starts", startSrv.URL, nil), Pattern: pattern},
	}})
	at := time.Now()
	arn := "arn:aws:ivs:us-west-2:123456789012:channel/p"
	for i, name := range []string{"Session Created", "Stream Start", "Stream End", "Stream Start"} {
		o.Publish(t.Context(), New(StreamStateChange, "1", "r", at, map[string]any{"event_name": name, "n": i + 1}, arn))
	}
	o.Publish(t.Context(), New(LimitBreach, "1", "r", at, map[string]any{"limit_name": "Concurrent Viewers", "n": 5}))
	all.waitCount(t, 5, 5*time.Second)
	starts.waitCount(t, 2, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if starts.count() != 2 {
		t.Fatalf("filtered sink got %d events, want the 2 Stream Starts", starts.count())
	}
	for _, e := range starts.events {
		if e.Detail["event_name"] != "Stream Start" {
			t.Fatalf("filtered sink got %v", e.Detail)
		}
	}
	// Filtered-out events are settled too, so nothing stays pending.
	waitPending(t, st, "starts", 0)
}

func waitPending(t *testing.T, st store.Store, sink string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := st.PendingCount(t.Context(), sink)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink %s: %d pending (%v), want %d", sink, n, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A sink that keeps failing past MaxAge dead-letters the event and moves on.
func TestOutboxDeadLetters(t *testing.T) {
	st := sqliteStore(t, t.TempDir())
	var fail atomic.Bool
	fail.Store(true)
	got := newReceived()
	srv := got.webhook(t, nil, fail.Load)
	var attempts, failures atomic.Int64
	o := runOutbox(t, OutboxConfig{Store: st, MaxAge: 300 * time.Millisecond, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond, Routes: []Route{{Sink: NewWebhook("hook", srv.URL, nil)}},
		OnAttempt: func(sink string, err error) {
			attempts.Add(1)
			if err != nil {
				failures.Add(1)
			}
		}})
	o.Publish(t.Context(), channelEvent("d", 1))
	deadline := time.Now().Add(5 * time.Second)
	var dead []store.DeadLetter
	for len(dead) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event was never dead-lettered")
		}
		time.Sleep(50 * time.Millisecond)
		var err error
		if dead, err = st.DeadLetters(t.Context(), "hook", 10); err != nil {
			t.Fatal(err)
		}
	}
	if dead[0].Error == "" || failures.Load() < 2 {
		t.Fatalf("dead letter %+v after %d failures", dead[0], failures.Load())
	}
	// The next event of the same channel is not blocked by the dead one.
	fail.Store(false)
	o.Publish(t.Context(), channelEvent("d", 2))
	got.waitCount(t, 1, 5*time.Second)
	if got.events[0].Detail["n"].(float64) != 2 {
		t.Fatalf("delivered %v", got.events[0].Detail)
	}
}

// A sink down for a while gets everything once it is back, in order, and
// a restarted outbox (a new process on the same store) delivers what the
// old one left.
func TestOutboxSurvivesSinkOutageAndRestart(t *testing.T) {
	dir := t.TempDir()
	st := sqliteStore(t, dir)
	var down atomic.Bool
	down.Store(true)
	got := newReceived()
	srv := got.webhook(t, nil, down.Load)
	cfg := OutboxConfig{Store: st, Holder: "node-1", MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Routes: []Route{{Sink: NewWebhook("hook", srv.URL, nil)}}, Logger: quiet}
	o, err := NewOutbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx) }()
	for i := 1; i <= 20; i++ {
		o.Publish(t.Context(), channelEvent(fmt.Sprint(i%4), i))
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if got.count() != 0 {
		t.Fatalf("a down sink received %d events", got.count())
	}
	down.Store(false)
	runOutbox(t, cfg)
	got.waitCount(t, 20, 10*time.Second)
	got.inOrder(t)
}

func TestNewOutboxRejects(t *testing.T) {
	st := sqliteStore(t, t.TempDir())
	for name, cfg := range map[string]OutboxConfig{
		"no store":  {Holder: "n"},
		"no holder": {Store: st},
		"duplicate sinks": {Store: st, Holder: "n", Routes: []Route{
			{Sink: NewWebhook("", "http://x", nil)}, {Sink: NewWebhook("", "http://x", nil)}}},
		"nil sink": {Store: st, Holder: "n", Routes: []Route{{}}},
	} {
		if _, err := NewOutbox(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Publish keeps an event the store refused and appends it later.
func TestOutboxPublishRetriesAppend(t *testing.T) {
	st := &flakyOutbox{Store: sqliteStore(t, t.TempDir())}
	st.fail.Store(true)
	got := newReceived()
	srv := got.webhook(t, nil, nil)
	o := runOutbox(t, OutboxConfig{Store: st, Routes: []Route{{Sink: NewWebhook("hook", srv.URL, nil)}}})
	o.Publish(t.Context(), channelEvent("f", 1))
	time.Sleep(200 * time.Millisecond)
	st.fail.Store(false)
	got.waitCount(t, 1, 5*time.Second)
}

type flakyOutbox struct {
	store.Store
	fail atomic.Bool
}

func (f *flakyOutbox) AppendEvents(ctx context.Context, evs []store.OutboxEvent) error {
	if f.fail.Load() {
		return errors.New("database is down")
	}
	return f.Store.AppendEvents(ctx, evs)
}
