package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

const (
	chA = "arn:aws:ivs:us-west-2:123456789012:channel/aaaaaaaaaaaa"
	chB = "arn:aws:ivs:us-west-2:123456789012:channel/bbbbbbbbbbbb"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestRegistry(t testing.TB) (*Registry, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	return New(Options{Now: c.Now, NoRuntimeMetrics: true}), c
}

// series is one gathered sample: its labels as "k=v,k=v" (sorted) and value.
type series map[string]float64

// gather returns the families of r by name, each as its series.
func gather(t testing.TB, r *Registry) (map[string]series, map[string]dto.MetricType) {
	t.Helper()
	fams, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out, types := map[string]series{}, map[string]dto.MetricType{}
	for _, f := range fams {
		s := series{}
		for _, m := range f.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(kv)
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Histogram != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			s[strings.Join(kv, ",")] = v
		}
		out[f.GetName()], types[f.GetName()] = s, f.GetType()
	}
	return out, types
}

func sample(ch, stream string, start time.Time) IngestSample {
	return IngestSample{
		ChannelARN: ch, StreamID: stream, StreamStart: start, Start: start, Duration: time.Second, Input: time.Second,
		Bitrate: 1_629_000,
		Video:   []TrackSample{{Track: "video", Bitrate: 1_500_000, Framerate: 30, KeyframeInterval: 2 * time.Second}},
		Audio:   []TrackSample{{Track: "audio", Bitrate: 128_000}},
	}
}

// TestIngestMetricNames: an ingest sample makes IVS's metrics under their
// Prometheus names, with the channel (ARN) and track labels, as gauges
// and counters; LiveDeliveredTime starts at 0 with country UNKNOWN.
func TestIngestMetricNames(t *testing.T) {
	r, c := newTestRegistry(t)
	r.ObserveIngest(sample(chA, "st-1", c.Now()))
	got, types := gather(t, r)
	want := map[string]struct {
		typ    dto.MetricType
		labels string
		value  float64
	}{
		"openivs_ingest_bitrate_bits_per_second":       {dto.MetricType_GAUGE, "channel=" + chA, 1_629_000},
		"openivs_ingest_video_bitrate_bits_per_second": {dto.MetricType_GAUGE, "channel=" + chA + ",track=video", 1_500_000},
		"openivs_ingest_audio_bitrate_bits_per_second": {dto.MetricType_GAUGE, "channel=" + chA + ",track=audio", 128_000},
		"openivs_ingest_framerate_frames_per_second":   {dto.MetricType_GAUGE, "channel=" + chA + ",track=video", 30},
		"openivs_keyframe_interval_seconds":            {dto.MetricType_GAUGE, "channel=" + chA + ",track=video", 2},
		"openivs_live_input_time_seconds_total":        {dto.MetricType_COUNTER, "channel=" + chA, 1},
		"openivs_live_delivered_time_seconds_total":    {dto.MetricType_COUNTER, "channel=" + chA + ",country=UNKNOWN", 0},
	}
	for name, w := range want {
		if types[name] != w.typ {
			t.Errorf("%s: type %v, want %v", name, types[name], w.typ)
		}
		if v, ok := got[name][w.labels]; !ok || v != w.value || len(got[name]) != 1 {
			t.Errorf("%s = %v, want {%s} %v", name, got[name], w.labels, w.value)
		}
	}
	// Not live yet as far as views go (the sampler sets them), and nothing
	// recorded: no series.
	for _, name := range []string{ConcurrentViews, RecordedTime, ConcurrentStreams, TranscodeProcesses, EventOutboxDepth} {
		if len(got[name]) != 0 {
			t.Errorf("%s has series %v before anything set it", name, got[name])
		}
	}
	r.ObserveIngest(sample(chA, "st-1", c.Now().Add(time.Second)))
	if got, _ := gather(t, r); got[LiveInputTime]["channel="+chA] != 2 {
		t.Errorf("LiveInputTime after two samples = %v, want 2", got[LiveInputTime])
	}
}

// fakeViewers is a ViewerSource.
type fakeViewers struct {
	counts    map[string]int
	delivered map[string]time.Duration
	country   string // of every viewer; "" unknown
}

func (f *fakeViewers) Count(ch string) int { return f.counts[ch] }

func (f *fakeViewers) DrainDelivered(fn func(string, string, time.Duration)) {
	for ch, d := range f.delivered {
		fn(ch, f.country, d)
	}
	f.delivered = map[string]time.Duration{}
}

// TestSeriesRemovedWhenStreamEnds: ConcurrentViews follows the viewers of
// live channels only (0 when nobody watches); at a stream's end its
// ingest gauges and views go at once, its counters stay until an hour
// after they last moved; the end of an older stream leaves a newer
// stream of the same channel alone.
func TestSeriesRemovedWhenStreamEnds(t *testing.T) {
	r, c := newTestRegistry(t)
	v := &fakeViewers{counts: map[string]int{chA: 3, chB: 7}, delivered: map[string]time.Duration{chA: 2500 * time.Millisecond}}
	r.ObserveIngest(sample(chA, "st-a", c.Now()))
	r.ObserveIngest(sample(chB, "st-b", c.Now()))
	v.counts[chB] = 0
	r.SampleViewers(v)
	got, _ := gather(t, r)
	if views := got[ConcurrentViews]; len(views) != 2 || views["channel="+chA] != 3 || views["channel="+chB] != 0 {
		t.Errorf("ConcurrentViews = %v, want A 3, B 0", views)
	}
	if d := got[LiveDeliveredTime]["channel="+chA+",country=UNKNOWN"]; d != 2.5 {
		t.Errorf("LiveDeliveredTime A = %v, want 2.5", d)
	}
	// With GeoIP, playback tells the viewers' country.
	v.country, v.delivered = "FR", map[string]time.Duration{chA: time.Second}
	r.SampleViewers(v)
	got, _ = gather(t, r)
	if d := got[LiveDeliveredTime]["channel="+chA+",country=FR"]; d != 1 {
		t.Errorf("LiveDeliveredTime A from FR = %v, want 1", d)
	}

	r.IngestEnded(chA, "st-a", c.Now())
	r.SampleViewers(v) // a live channel's viewers only
	got, _ = gather(t, r)
	for _, name := range []string{IngestBitrate, IngestVideoBitrate, IngestAudioBitrate, IngestFramerate, KeyframeInterval, ConcurrentViews} {
		for labels := range got[name] {
			if strings.Contains(labels, chA) {
				t.Errorf("%s{%s} after the stream ended", name, labels)
			}
		}
		if len(got[name]) != 1 {
			t.Errorf("%s = %v, want channel B's series only", name, got[name])
		}
	}
	if got[LiveInputTime]["channel="+chA] != 1 {
		t.Errorf("LiveInputTime of the ended stream = %v, want kept at 1", got[LiveInputTime])
	}

	// A new stream on B, then a late end of B's old one: the new one stays.
	r.ObserveIngest(sample(chB, "st-b2", c.Now()))
	r.IngestEnded(chB, "st-b", c.Now())
	if got, _ := gather(t, r); len(got[IngestBitrate]) != 1 || len(got[ConcurrentViews]) != 1 {
		t.Errorf("the old stream's end removed the new one's series: %v %v", got[IngestBitrate], got[ConcurrentViews])
	}

	// An hour later A's counters go; B is live and keeps its.
	c.Add(counterRetention + time.Second)
	r.ObserveIngest(sample(chB, "st-b2", c.Now()))
	r.SampleViewers(v)
	got, _ = gather(t, r)
	for _, name := range []string{LiveInputTime, LiveDeliveredTime} {
		if len(got[name]) != 1 {
			t.Errorf("%s = %v, want channel B's only", name, got[name])
		}
		for labels := range got[name] {
			if !strings.Contains(labels, chB) {
				t.Errorf("%s{%s} kept", name, labels)
			}
		}
	}
}

// TestAPICalls: every call counts by service and operation, errors by
// code, and its latency lands in the histogram's buckets; an unrouted
// call's client-chosen names do not become labels.
func TestAPICalls(t *testing.T) {
	r, _ := newTestRegistry(t)
	r.APICall("ivs", "GetChannel", 200, "", 2*time.Millisecond)
	r.APICall("ivs", "GetChannel", 200, "", 30*time.Millisecond)
	r.APICall("ivs", "GetChannel", 404, "ResourceNotFoundException", time.Millisecond)
	r.APICall("ivs", "CreateChannel", 429, "ThrottlingException", 300*time.Microsecond)
	r.APICall("made-up", "", 400, "UnknownOperationException", time.Millisecond)
	got, types := gather(t, r)
	if types[APIRequestDuration] != dto.MetricType_HISTOGRAM || types[APIRequests] != dto.MetricType_COUNTER {
		t.Fatalf("types: %v %v", types[APIRequestDuration], types[APIRequests])
	}
	wantReq := series{"operation=GetChannel,service=ivs": 3, "operation=CreateChannel,service=ivs": 1, "operation=unknown,service=unknown": 1}
	if !equal(got[APIRequests], wantReq) {
		t.Errorf("%s = %v, want %v", APIRequests, got[APIRequests], wantReq)
	}
	wantErr := series{
		"code=ResourceNotFoundException,operation=GetChannel,service=ivs":  1,
		"code=ThrottlingException,operation=CreateChannel,service=ivs":     1,
		"code=UnknownOperationException,operation=unknown,service=unknown": 1,
	}
	if !equal(got[APIErrors], wantErr) {
		t.Errorf("%s = %v, want %v", APIErrors, got[APIErrors], wantErr)
	}
	if !equal(got[APIRequestDuration], wantReq) {
		t.Errorf("%s counts = %v, want %v", APIRequestDuration, got[APIRequestDuration], wantReq)
	}
	// The buckets of GetChannel: 1 ms, 2 ms, 30 ms.
	fams, _ := r.Gatherer().Gather()
	for _, f := range fams {
		if f.GetName() != APIRequestDuration {
			continue
		}
		for _, m := range f.GetMetric() {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetValue() == "GetChannel" }) {
				continue
			}
			h := m.GetHistogram()
			cum := map[float64]uint64{}
			for _, b := range h.GetBucket() {
				cum[b.GetUpperBound()] = b.GetCumulativeCount()
			}
			if cum[0.001] != 1 || cum[0.0025] != 2 || cum[0.025] != 2 || cum[0.05] != 3 {
				t.Errorf("GetChannel buckets %v", cum)
			}
			if s := h.GetSampleSum(); s < 0.0329 || s > 0.0331 {
				t.Errorf("GetChannel latency sum %v, want 0.033", s)
			}
		}
	}
}

func equal(a, b series) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestNodeGauges: ConcurrentStreams has a series per health value while
// anything is live and none otherwise; ffmpeg processes, the outbox depth
// and sink failures come from their sources; RecordedTime adds up.
func TestNodeGauges(t *testing.T) {
	r, _ := newTestRegistry(t)
	health := map[string]int{}
	r.ObserveStreamHealth(func() map[string]int { return health })
	r.ObserveTranscodes(func() int { return 2 })
	r.ObserveOutboxDepth(func() int { return 17 })
	r.SinkFailure("webhook")
	r.SinkFailure("webhook")
	r.SinkFailure("nats")
	r.AddRecordedTime(chA, 1500*time.Millisecond)
	r.AddRecordedTime(chA, 500*time.Millisecond)
	got, _ := gather(t, r)
	if len(got[ConcurrentStreams]) != 0 {
		t.Errorf("ConcurrentStreams with nothing live: %v, want no series", got[ConcurrentStreams])
	}
	health["HEALTHY"], health["STARVING"] = 2, 1
	got, types := gather(t, r)
	checks := []struct {
		name string
		want series
		typ  dto.MetricType
	}{
		{ConcurrentStreams, series{"health=HEALTHY": 2, "health=STARVING": 1, "health=UNKNOWN": 0}, dto.MetricType_GAUGE},
		{TranscodeProcesses, series{"": 2}, dto.MetricType_GAUGE},
		{EventOutboxDepth, series{"": 17}, dto.MetricType_GAUGE},
		{EventSinkFailures, series{"sink=webhook": 2, "sink=nats": 1}, dto.MetricType_COUNTER},
		{RecordedTime, series{"channel=" + chA: 2}, dto.MetricType_COUNTER},
	}
	for _, c := range checks {
		if !equal(got[c.name], c.want) || types[c.name] != c.typ {
			t.Errorf("%s = %v (%v), want %v (%v)", c.name, got[c.name], types[c.name], c.want, c.typ)
		}
	}
}

// TestHandlerText: /metrics answers the Prometheus text format with HELP
// and TYPE lines, the Go runtime's metrics included by default.
func TestHandlerText(t *testing.T) {
	r := New(Options{})
	r.ObserveIngest(sample(chA, "st-1", time.Now()))
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		"# TYPE openivs_ingest_video_bitrate_bits_per_second gauge",
		`openivs_ingest_video_bitrate_bits_per_second{channel="` + chA + `",track="video"} 1.5e+06`,
		"# TYPE openivs_live_input_time_seconds_total counter",
		"# TYPE go_goroutines gauge",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
}
