// Package metrics is the Prometheus registry with the IVS metric names and
// dimensions: the ten AWS/IVS CloudWatch metrics as Prometheus series (the
// CloudWatch dimensions are labels), IVS Chat's (AWS/IVSChat, chat.go),
// the node's own health metrics (API calls, ffmpeg processes, the event
// outbox), and the 1-second ingest samples of recent stream sessions
// (history.go). docs/metrics.md maps every name to its IVS metric.
//
// Label values: channel is always the channel ARN (IVS uses the ARN for
// ConcurrentViews and the resource id for the others; one form for all of
// them keeps joins simple and is unambiguous across the accounts one node
// serves). track is "video" or "audio" for the first track of that kind
// and "video2", "audio2", … for further ones (multitrack ingest).
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names. The IVS ones carry their CloudWatch name in the comment.
const (
	ConcurrentViews    = "openivs_concurrent_views"                     // ConcurrentViews{Channel}
	ConcurrentStreams  = "openivs_concurrent_streams"                   // ConcurrentStreams{Health}
	IngestAudioBitrate = "openivs_ingest_audio_bitrate_bits_per_second" // IngestAudioBitrate{Channel, Track}
	IngestBitrate      = "openivs_ingest_bitrate_bits_per_second"       // IngestBitrate{Channel}
	IngestFramerate    = "openivs_ingest_framerate_frames_per_second"   // IngestFramerate{Channel, Track}
	IngestVideoBitrate = "openivs_ingest_video_bitrate_bits_per_second" // IngestVideoBitrate{Channel, Track}
	KeyframeInterval   = "openivs_keyframe_interval_seconds"            // KeyframeInterval{Channel, Track}
	LiveDeliveredTime  = "openivs_live_delivered_time_seconds_total"    // LiveDeliveredTime{Channel, ViewerCountryCode}
	LiveInputTime      = "openivs_live_input_time_seconds_total"        // LiveInputTime{Channel}
	RecordedTime       = "openivs_recorded_time_seconds_total"          // RecordedTime{Channel}
	APIRequests        = "openivs_api_requests_total"                   // node health
	APIErrors          = "openivs_api_errors_total"                     // node health
	APIRequestDuration = "openivs_api_request_duration_seconds"         // node health
	TranscodeProcesses = "openivs_transcode_processes"                  // node health
	EventOutboxDepth   = "openivs_event_outbox_depth"                   // node health
	EventSinkFailures  = "openivs_event_sink_failures_total"            // node health
)

// Health values of ConcurrentStreams, as IVS spells them.
var healthValues = []string{"HEALTHY", "STARVING", "UNKNOWN"}

// UnknownCountry is LiveDeliveredTime's country when the viewer's cannot
// be told (IVS's ViewerCountryCode "UNKNOWN"); every viewer's, until GeoIP.
const UnknownCountry = "UNKNOWN"

// apiBuckets spans API latencies from a cached read (~100 µs) to a slow
// store write.
var apiBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Registry holds every metric of a node. It is safe for concurrent use.
type Registry struct {
	reg *prometheus.Registry
	now func() time.Time

	concurrentViews    *prometheus.GaugeVec
	ingestAudioBitrate *prometheus.GaugeVec
	ingestBitrate      *prometheus.GaugeVec
	ingestFramerate    *prometheus.GaugeVec
	ingestVideoBitrate *prometheus.GaugeVec
	keyframeInterval   *prometheus.GaugeVec
	liveDeliveredTime  *prometheus.CounterVec
	liveInputTime      *prometheus.CounterVec
	recordedTime       *prometheus.CounterVec

	apiRequests  *prometheus.CounterVec
	apiErrors    *prometheus.CounterVec
	apiDuration  *prometheus.HistogramVec
	sinkFailures *prometheus.CounterVec

	streamHealth funcSource[map[string]int]
	transcodes   funcSource[int]
	outboxDepth  funcSource[int]

	history *History

	chat chatMetrics

	mu sync.Mutex
	// live is the stream whose ingest series a channel exports, by
	// channel ARN: the channel is live for ConcurrentViews.
	live map[string]string
	// counted is when each channel's counters last moved, so that those of
	// channels gone for good are dropped (sweep).
	counted map[string]time.Time
}

// Options tune a Registry; the zero value is the production setting.
type Options struct {
	// Now is the clock (tests).
	Now func() time.Time
	// NoRuntimeMetrics leaves out the Go runtime and process collectors
	// (go_*, process_*).
	NoRuntimeMetrics bool
}

// New returns a registry with every metric registered.
func New(opts Options) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Registry{
		reg: prometheus.NewRegistry(), now: opts.Now, history: NewHistory(HistoryOptions{Now: opts.Now}),
		live: map[string]string{}, counted: map[string]time.Time{},
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		r.reg.MustRegister(g)
		return g
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		r.reg.MustRegister(c)
		return c
	}
	r.concurrentViews = gauge(ConcurrentViews,
		"IVS ConcurrentViews: viewer sessions of a live channel that fetched a playlist within the last 10 s (no series while the channel is not live).", "channel")
	r.ingestAudioBitrate = gauge(IngestAudioBitrate, "IVS IngestAudioBitrate: audio received over the last second.", "channel", "track")
	r.ingestBitrate = gauge(IngestBitrate, "IVS IngestBitrate: video, audio and metadata received over the last second, all tracks summed.", "channel")
	r.ingestFramerate = gauge(IngestFramerate, "IVS IngestFramerate: video frames received over the last second.", "channel", "track")
	r.ingestVideoBitrate = gauge(IngestVideoBitrate, "IVS IngestVideoBitrate: video received over the last second.", "channel", "track")
	r.keyframeInterval = gauge(KeyframeInterval, "IVS KeyframeInterval: the latest observed interval between keyframes (media time).", "channel", "track")
	r.liveDeliveredTime = counter(LiveDeliveredTime,
		"IVS LiveDeliveredTime: viewer-seconds of live video served (time between a viewer session's consecutive playlist fetches, gaps over 10 s excluded).", "channel", "country")
	r.liveInputTime = counter(LiveInputTime, "IVS LiveInputTime: seconds of stream ingested.", "channel")
	r.recordedTime = counter(RecordedTime, "IVS RecordedTime: seconds of video recorded.", "channel")
	r.apiRequests = counter(APIRequests, "Authenticated API calls by operation.", "service", "operation")
	r.apiErrors = counter(APIErrors, "Authenticated API calls answered with an error, by operation and error code.", "service", "operation", "code")
	r.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: APIRequestDuration, Help: "Time to answer an authenticated API call, by operation.", Buckets: apiBuckets,
	}, []string{"service", "operation"})
	r.reg.MustRegister(r.apiDuration)
	r.sinkFailures = counter(EventSinkFailures, "Event deliveries that failed, by sink.", "sink")

	r.reg.MustRegister(
		&healthCollector{desc: prometheus.NewDesc(ConcurrentStreams,
			"IVS ConcurrentStreams: live streams by health (no series while nothing is live).", []string{"health"}, nil),
			src: &r.streamHealth},
		&gaugeFuncCollector{desc: prometheus.NewDesc(TranscodeProcesses,
			"ffmpeg transcode processes running on this node.", nil, nil), src: &r.transcodes},
		&gaugeFuncCollector{desc: prometheus.NewDesc(EventOutboxDepth,
			"Events in the durable outbox not yet delivered to every sink.", nil, nil), src: &r.outboxDepth},
	)
	r.registerChat()
	if !opts.NoRuntimeMetrics {
		r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return r
}

// Handler serves the registry in the Prometheus text format (GET /metrics).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the underlying registry, for tests and embedding.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// History is the per-session sample history served by
// /v1/sessions/<streamId>/metrics.
func (r *Registry) History() *History { return r.history }

// ObserveStreamHealth sets where ConcurrentStreams comes from: the number
// of live streams by health (HEALTHY, STARVING, UNKNOWN). Unset or all
// zero, the metric has no series, as IVS has no data points then.
func (r *Registry) ObserveStreamHealth(fn func() map[string]int) { r.streamHealth.set(fn) }

// ObserveTranscodes sets where openivs_transcode_processes comes from.
func (r *Registry) ObserveTranscodes(fn func() int) { r.transcodes.set(fn) }

// ObserveOutboxDepth sets where openivs_event_outbox_depth comes from: the
// events outbox's count of undelivered events, read at every scrape (so
// it must be cheap). Unset, the metric has no series.
func (r *Registry) ObserveOutboxDepth(fn func() int) { r.outboxDepth.set(fn) }

// SinkFailure counts one failed delivery of an event to sink (e.g.
// "webhook", "nats", "log"): openivs_event_sink_failures_total{sink}.
func (r *Registry) SinkFailure(sink string) { r.sinkFailures.WithLabelValues(sink).Inc() }

// APICall records one finished, authenticated API call: its count, its
// error code if it failed, and its latency. It has the shape of an
// awsapi.CallRecord's fields so the app's call hook passes them straight.
func (r *Registry) APICall(service, operation string, status int, errorCode string, d time.Duration) {
	if operation == "" {
		// Not routed: the service is whatever the signature named, so keep
		// client-chosen strings out of the label values.
		service, operation = "unknown", "unknown"
	}
	r.apiRequests.WithLabelValues(service, operation).Inc()
	if status >= 400 || errorCode != "" {
		if errorCode == "" {
			errorCode = "unknown"
		}
		r.apiErrors.WithLabelValues(service, operation, errorCode).Inc()
	}
	r.apiDuration.WithLabelValues(service, operation).Observe(d.Seconds())
}

// AddRecordedTime adds d of recorded video to the channel's RecordedTime;
// the recorder calls it as it writes segments.
func (r *Registry) AddRecordedTime(channelARN string, d time.Duration) {
	if d <= 0 {
		return
	}
	r.recordedTime.WithLabelValues(channelARN).Add(d.Seconds())
	r.touchCounters(channelARN)
}

// AddDeliveredTime adds d of live video served to viewers of the channel
// in country (ISO 3166-1 alpha-2, or UnknownCountry).
func (r *Registry) AddDeliveredTime(channelARN, country string, d time.Duration) {
	if d <= 0 {
		return
	}
	if country == "" {
		country = UnknownCountry
	}
	r.liveDeliveredTime.WithLabelValues(channelARN, country).Add(d.Seconds())
	r.touchCounters(channelARN)
}

func (r *Registry) touchCounters(channelARN string) {
	r.mu.Lock()
	r.counted[channelARN] = r.now()
	r.mu.Unlock()
}

// counterRetention is how long the counters of a channel that is no longer
// live stay exported after they last moved: long enough for every scraper
// to see their final values, short enough that channels that come and go
// do not pile up series.
const counterRetention = time.Hour

// sweep drops the counters of channels not live whose counters have not
// moved for counterRetention, and history past its retention.
func (r *Registry) sweep() {
	now := r.now()
	r.mu.Lock()
	var gone []string
	for ch, at := range r.counted {
		if _, live := r.live[ch]; !live && now.Sub(at) > counterRetention {
			gone = append(gone, ch)
			delete(r.counted, ch)
		}
	}
	r.mu.Unlock()
	for _, ch := range gone {
		match := prometheus.Labels{"channel": ch}
		r.liveDeliveredTime.DeletePartialMatch(match)
		r.liveInputTime.DeletePartialMatch(match)
		r.recordedTime.DeletePartialMatch(match)
	}
	r.history.sweep()
}

// funcSource is a callback set once the thing it reads exists.
type funcSource[T any] struct{ fn atomic.Pointer[func() T] }

func (s *funcSource[T]) set(fn func() T) {
	if fn == nil {
		s.fn.Store(nil)
		return
	}
	s.fn.Store(&fn)
}

func (s *funcSource[T]) get() (T, bool) {
	if fn := s.fn.Load(); fn != nil {
		return (*fn)(), true
	}
	var zero T
	return zero, false
}

// gaugeFuncCollector is a gauge read from a callback at scrape time; no
// series until the callback is set.
type gaugeFuncCollector struct {
	desc *prometheus.Desc
	src  *funcSource[int]
}

func (c *gaugeFuncCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *gaugeFuncCollector) Collect(ch chan<- prometheus.Metric) {
	if v, ok := c.src.get(); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v))
	}
}

// healthCollector is ConcurrentStreams{health}: every health value while
// any stream is live, nothing otherwise.
type healthCollector struct {
	desc *prometheus.Desc
	src  *funcSource[map[string]int]
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	counts, ok := c.src.get()
	total := 0
	for _, n := range counts {
		total += n
	}
	if !ok || total == 0 {
		return
	}
	for _, h := range healthValues {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[h]), h)
	}
}
