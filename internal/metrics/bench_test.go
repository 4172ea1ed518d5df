package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkScrape100Channels renders /metrics as Prometheus scrapes it
// (gzip) for a node with 100 live channels, each with viewers, ingest
// gauges and counters, plus API latency histograms of 40 operations and
// the Go runtime and process metrics. Target: ≤ 50 ms a scrape.
func BenchmarkScrape100Channels(b *testing.B) {
	r := New(Options{})
	views := &fakeViewers{counts: map[string]int{}, delivered: map[string]time.Duration{}}
	now := time.Now()
	for i := range 100 {
		ch := fmt.Sprintf("arn:aws:ivs:us-west-2:123456789012:channel/ch%010d", i)
		r.ObserveIngest(sample(ch, fmt.Sprintf("st-%d", i), now))
		views.counts[ch] = i
		views.delivered[ch] = time.Duration(i) * time.Second
	}
	r.SampleViewers(views)
	for op := range 40 {
		for j := range 10 {
			r.APICall("ivs", fmt.Sprintf("Operation%d", op), 200, "", time.Duration(j)*time.Millisecond)
		}
		r.APICall("ivs", fmt.Sprintf("Operation%d", op), 400, "ValidationException", time.Millisecond)
	}
	r.ObserveStreamHealth(func() map[string]int { return map[string]int{"HEALTHY": 100} })
	r.ObserveTranscodes(func() int { return 3 })
	r.ObserveOutboxDepth(func() int { return 0 })
	h := r.Handler()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	var size int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
		n, _ := io.Copy(io.Discard, rec.Body)
		size = int(n)
	}
	b.ReportMetric(float64(size)/1024, "KB/scrape")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/scrape")
}
