package metrics

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// History keeps the 1-second ingest samples of stream sessions, as
// CloudWatch keeps 1-second data points of the high-resolution metrics:
// the last 3 hours of each live session in a ring buffer, and an ended
// session's samples until 3 hours after its last one (at most
// maxEnded sessions), so the console can chart a finished session. It
// serves them as JSON. Memory: 32 bytes a sample, at most ~345 KB a
// session.
type History struct {
	now      func() time.Time
	retain   time.Duration
	capacity int
	maxEnded int

	mu       sync.Mutex
	sessions map[string]*sessionSamples // by stream id
	ended    int
}

// HistoryOptions tune a History; zero values take the defaults.
type HistoryOptions struct {
	Now func() time.Time
	// Retain is how long samples are kept (3 h, CloudWatch's retention of
	// 1-second data points); a live session keeps Retain seconds of them.
	Retain time.Duration
	// MaxEnded bounds the ended sessions kept (200, ~70 MB at most); the
	// oldest-ended go first.
	MaxEnded int
}

// NewHistory returns an empty history.
func NewHistory(opts HistoryOptions) *History {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retain <= 0 {
		opts.Retain = 3 * time.Hour
	}
	if opts.MaxEnded <= 0 {
		opts.MaxEnded = 200
	}
	return &History{now: opts.Now, retain: opts.Retain, capacity: int(opts.Retain / time.Second), maxEnded: opts.MaxEnded,
		sessions: map[string]*sessionSamples{}}
}

// point is one stored sample, compact: float32 keeps 7 significant digits,
// plenty for bits/s and frames/s.
type point struct {
	at                   int64 // period start, Unix ms
	bitrate, video, aud  float32
	framerate, keyframes float32 // keyframes: interval in seconds, NaN when unknown
}

type sessionSamples struct {
	streamID, channelARN string
	start                time.Time
	endTime              time.Time // zero while live
	ring                 []point   // grows to capacity, then wraps at next
	next                 int
	last                 time.Time // newest sample's period start
}

func (s *sessionSamples) push(p point, capacity int) {
	if len(s.ring) < capacity {
		s.ring = append(s.ring, p)
		return
	}
	s.ring[s.next] = p
	s.next = (s.next + 1) % capacity
}

// ordered returns the samples oldest first.
func (s *sessionSamples) ordered() []point {
	out := make([]point, 0, len(s.ring))
	out = append(out, s.ring[s.next:]...)
	return append(out, s.ring[:s.next]...)
}

func (h *History) add(smp IngestSample) {
	p := point{at: smp.Start.UnixMilli(), bitrate: float32(smp.Bitrate), keyframes: float32(math.NaN())}
	for i, t := range smp.Video {
		p.video += float32(t.Bitrate)
		if i == 0 {
			p.framerate = float32(t.Framerate)
			if t.KeyframeInterval > 0 {
				p.keyframes = float32(t.KeyframeInterval.Seconds())
			}
		}
	}
	for _, t := range smp.Audio {
		p.aud += float32(t.Bitrate)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessions[smp.StreamID]
	if s == nil {
		s = &sessionSamples{streamID: smp.StreamID, channelARN: smp.ChannelARN, start: smp.StreamStart}
		h.sessions[smp.StreamID] = s
	}
	if !s.endTime.IsZero() {
		return // a late sample of an ended session
	}
	s.push(p, h.capacity)
	s.last = smp.Start
}

func (h *History) end(streamID string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessions[streamID]
	if s == nil || !s.endTime.IsZero() {
		return
	}
	s.endTime = at.UTC()
	s.ring, s.next = s.ordered(), 0 // trimmed to its length: the ring stops growing
	h.ended++
	h.sweepLocked()
}

func (h *History) sweep() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked()
}

// sweepLocked drops ended sessions whose newest sample is older than the
// retention, then the oldest-ended past maxEnded.
func (h *History) sweepLocked() {
	if h.ended == 0 {
		return
	}
	cutoff := h.now().Add(-h.retain)
	var ended []*sessionSamples
	for id, s := range h.sessions {
		if s.endTime.IsZero() {
			continue
		}
		if s.last.Before(cutoff) {
			delete(h.sessions, id)
			h.ended--
			continue
		}
		ended = append(ended, s)
	}
	if len(ended) <= h.maxEnded {
		return
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].endTime.Before(ended[j].endTime) })
	for _, s := range ended[:len(ended)-h.maxEnded] {
		delete(h.sessions, s.streamID)
		h.ended--
	}
}

// SessionMetrics is the JSON of GET /v1/sessions/<streamId>/metrics.
type SessionMetrics struct {
	StreamID   string     `json:"streamId"`
	ChannelARN string     `json:"channelArn"`
	StartTime  time.Time  `json:"startTime"`
	EndTime    *time.Time `json:"endTime,omitempty"` // absent while live
	Samples    []Sample   `json:"samples"`
}

// Sample is one second of a session's ingest. Bitrates are bits/s;
// keyframeInterval (seconds) is absent until two keyframes were seen.
type Sample struct {
	Time               time.Time `json:"time"` // the start of the second
	IngestBitrate      int64     `json:"ingestBitrate"`
	IngestVideoBitrate int64     `json:"ingestVideoBitrate"`
	IngestAudioBitrate int64     `json:"ingestAudioBitrate"`
	IngestFramerate    float64   `json:"ingestFramerate"`
	KeyframeInterval   *float64  `json:"keyframeInterval,omitempty"`
}

// Session returns a stream session's samples, oldest first.
func (h *History) Session(streamID string) (SessionMetrics, bool) {
	h.mu.Lock()
	s := h.sessions[streamID]
	if s == nil {
		h.mu.Unlock()
		return SessionMetrics{}, false
	}
	out := SessionMetrics{StreamID: s.streamID, ChannelARN: s.channelARN, StartTime: s.start.UTC()}
	if !s.endTime.IsZero() {
		end := s.endTime
		out.EndTime = &end
	}
	points := s.ordered()
	h.mu.Unlock()
	out.Samples = make([]Sample, len(points))
	for i, p := range points {
		smp := Sample{
			Time:          time.UnixMilli(p.at).UTC(),
			IngestBitrate: int64(p.bitrate), IngestVideoBitrate: int64(p.video), IngestAudioBitrate: int64(p.aud),
			IngestFramerate: math.Round(float64(p.framerate)*100) / 100,
		}
		if !math.IsNaN(float64(p.keyframes)) {
			k := math.Round(float64(p.keyframes)*1000) / 1000
			smp.KeyframeInterval = &k
		}
		out.Samples[i] = smp
	}
	return out, true
}

// ServeHTTP serves GET /v1/sessions/<streamId>/metrics; an unknown stream
// (or one whose samples are gone) is a JSON 404.
func (h *History) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	id := r.PathValue("streamId")
	if id == "" {
		rest, _ := strings.CutPrefix(r.URL.Path, "/v1/sessions/")
		id, _ = strings.CutSuffix(rest, "/metrics")
	}
	sm, ok := h.Session(id)
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "No metrics for this stream session."})
		return
	}
	_ = json.NewEncoder(w).Encode(sm)
}
