package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/store"
)

// BenchmarkOutboxThroughput publishes b.N events over 16 channels to an
// SQLite outbox delivering to a webhook, and reports events/s end to end
// (append, read, POST, settle). Target: ≥ 2,000 events/s.
func BenchmarkOutboxThroughput(b *testing.B) {
	st, err := store.Open(context.Background(), "sqlite", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var got atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if got.Add(1) == target {
			close(done)
		}
	}))
	defer srv.Close()
	o, err := NewOutbox(OutboxConfig{Store: st, Holder: "bench", Logger: quiet,
		Routes: []Route{{Sink: NewWebhook("hook", srv.URL, []byte("k"))}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go o.Run(ctx)
	evs := make([]Event, b.N)
	for i := range evs {
		evs[i] = channelEvent(fmt.Sprint(i%16), i+1)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range evs {
		o.Publish(ctx, evs[i])
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkEventLatency measures a state change committed with its event
// (a store Update carrying it, as stream sessions do) to the webhook POST
// arriving, one event at a time; it reports p50 and p99. Target: p99 ≤ 100 ms.
func BenchmarkEventLatency(b *testing.B) {
	st, err := store.Open(context.Background(), "sqlite", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	arrived := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e Event
		_ = json.NewDecoder(r.Body).Decode(&e)
		arrived <- e.ID
	}))
	defer srv.Close()
	o, err := NewOutbox(OutboxConfig{Store: st, Holder: "bench", Logger: quiet,
		Routes: []Route{{Sink: NewWebhook("hook", srv.URL, []byte("k"))}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); o.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	const arn = "arn:aws:ivs:us-west-2:123456789012:stream-session/st-bench"
	if err := st.Insert(ctx, &store.Resource{ARN: arn, Kind: "stream-session", Account: "1"}, store.Quota{}); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := channelEvent("latency", i+1)
		rec, err := Record(e)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := st.Update(ctx, arn, func(r *store.Resource) error {
			r.Doc = []byte(fmt.Sprintf(`{"n":%d}`, i))
			r.Events = []store.OutboxEvent{rec}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		o.Wake()
		if id := <-arrived; id != e.ID {
			b.Fatalf("got event %s, want %s", id, e.ID)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
