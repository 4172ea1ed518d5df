package live

import (
	"strconv"
	"time"

	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/metrics"
)

// IngestReporter receives what the IVS high-resolution ingest metrics are
// made of: each live stream's ingest, second by second, and the stream's
// end (*metrics.Registry). Calls come from the stream's monitor goroutine,
// in order, never under the session's lock.
type IngestReporter interface {
	ObserveIngest(IngestSample)
	// IngestEnded follows a stream's last sample.
	IngestEnded(channelARN, streamID string, at time.Time)
}

// The samples are the metrics package's own types: one definition for
// the producer and the consumer. Track labels are "video"/"audio" for the
// first track of a kind, then "video2", "audio2", ….
type (
	IngestSample = metrics.IngestSample
	TrackSample  = metrics.TrackSample
)

// samplePeriod is the period of the ingest samples (CloudWatch's
// high-resolution metrics are 1-second data points). The monitor ticks
// every 250 ms; a period closes at the first tick at least
// samplePeriod-sampleSlack after it opened, so scheduling jitter does not
// stretch every fourth period to 1.25 s. Rates divide by the period's
// actual length.
const (
	samplePeriod = time.Second
	sampleSlack  = 100 * time.Millisecond
	// finalMinPeriod is the shortest final period (at the stream's end)
	// reported: a few frames over a few milliseconds make no rate.
	finalMinPeriod = 500 * time.Millisecond
)

// ingestMeter accumulates a session's ingest between samples. It lives
// in the session and is used under s.mu.
type ingestMeter struct {
	started     bool
	periodStart time.Time
	labels      []string // per ingest track
	kinds       []media.Kind
	bytes       []int64 // per ingest track, this period
	frames      []int64
	metaBytes   int64 // in-band metadata, this period
	received    bool  // any media this period
	lastKeyDTS  []time.Duration
	haveKey     []bool
	keyInterval []time.Duration
}

// trackLabels names tracks for the Track label: the kind for the first
// track of a kind, the kind and its ordinal from 2 for the others.
func trackLabels(tracks []media.Track) []string {
	labels := make([]string, len(tracks))
	seen := map[media.Kind]int{}
	for i, t := range tracks {
		name := "data"
		switch t.Kind {
		case media.Video:
			name = "video"
		case media.Audio:
			name = "audio"
		}
		seen[t.Kind]++
		if n := seen[t.Kind]; n > 1 {
			name += strconv.Itoa(n)
		}
		labels[i] = name
	}
	return labels
}

func (m *ingestMeter) init(tracks []media.Track, now time.Time) {
	n := len(tracks)
	m.started, m.periodStart = true, now
	m.labels = trackLabels(tracks)
	m.kinds = make([]media.Kind, n)
	for i, t := range tracks {
		m.kinds[i] = t.Kind
	}
	m.bytes, m.frames = make([]int64, n), make([]int64, n)
	m.lastKeyDTS, m.haveKey, m.keyInterval = make([]time.Duration, n), make([]bool, n), make([]time.Duration, n)
}

// frame accounts one ingest frame as it arrives. Periods run on the
// monitor's clock, not the frames' ingest times (which an encoder's
// buffering may hold back), so the first opens now.
func (m *ingestMeter) frame(tracks []media.Track, f *media.Frame) {
	if !m.started {
		m.init(tracks, time.Now())
	}
	i := f.Track
	if i < 0 || i >= len(m.bytes) {
		return
	}
	m.bytes[i] += int64(f.Size())
	m.frames[i]++
	m.received = true
	if m.kinds[i] != media.Video {
		return
	}
	if f.Discontinuity {
		m.haveKey[i] = false // a takeover: the new encoder's timeline
	}
	if f.Key {
		if m.haveKey[i] && f.DTS > m.lastKeyDTS[i] {
			m.keyInterval[i] = f.DTS - m.lastKeyDTS[i]
		}
		m.lastKeyDTS[i], m.haveKey[i] = f.DTS, true
	}
}

// metadata accounts in-band metadata (text) from the encoder.
func (m *ingestMeter) metadata(n int) {
	if m.started {
		m.metaBytes += int64(n)
		m.received = true
	}
}

// sample closes the period when it is due (or, final, at the stream's
// end) and returns it.
func (m *ingestMeter) sample(now time.Time, final bool) (IngestSample, bool) {
	if !m.started {
		return IngestSample{}, false
	}
	el := now.Sub(m.periodStart)
	if el < samplePeriod-sampleSlack && !(final && el >= finalMinPeriod) {
		return IngestSample{}, false
	}
	smp := IngestSample{Start: m.periodStart, Duration: el}
	if m.received {
		smp.Input = el
	}
	secs := el.Seconds()
	total := m.metaBytes
	for i, k := range m.kinds {
		total += m.bytes[i]
		ts := TrackSample{Track: m.labels[i], Bitrate: float64(m.bytes[i]*8) / secs}
		switch k {
		case media.Video:
			ts.Framerate = float64(m.frames[i]) / secs
			ts.KeyframeInterval = m.keyInterval[i]
			smp.Video = append(smp.Video, ts)
		case media.Audio:
			smp.Audio = append(smp.Audio, ts)
		}
		m.bytes[i], m.frames[i] = 0, 0
	}
	smp.Bitrate = float64(total*8) / secs
	m.metaBytes, m.received, m.periodStart = 0, false, now
	return smp, true
}

// ingestSample closes the session's sample period when due. Called with
// s.mu held; the sample goes to reportIngest after the lock is released.
func (s *session) ingestSample(now time.Time, final bool) (IngestSample, bool) {
	if s.m.cfg.Ingest == nil {
		return IngestSample{}, false
	}
	smp, ok := s.meter.sample(now, final)
	if ok {
		smp.ChannelARN, smp.StreamID, smp.StreamStart = s.ch.ARN, s.st.StreamID, s.st.StartTime
	}
	return smp, ok
}

// reportIngest hands a sample to the reporter, off the session's lock.
func (s *session) reportIngest(smp IngestSample, ok bool) {
	if ok {
		s.m.cfg.Ingest.ObserveIngest(smp)
	}
}

// ingestEnded reports the stream's last, partial period and its end. The
// session's monitor has returned: the session is over.
func (s *session) ingestEnded() {
	if s.m.cfg.Ingest == nil {
		return
	}
	s.mu.Lock()
	end := time.Now()
	if s.sess.EndTime != nil {
		end = *s.sess.EndTime
	}
	smp, ok := s.ingestSample(end, true)
	s.mu.Unlock()
	s.reportIngest(smp, ok)
	s.m.cfg.Ingest.IngestEnded(s.ch.ARN, s.st.StreamID, end)
}

// StreamHealth counts the node's live streams by health (HEALTHY,
// STARVING): ConcurrentStreams{Health}.
func (m *Manager) StreamHealth() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, s := range m.live {
		s.mu.Lock()
		if !s.ended {
			health := s.st.Health
			if health == "" {
				health = "UNKNOWN"
			}
			out[health]++
		}
		s.mu.Unlock()
	}
	return out
}

// TranscodeProcesses counts the ffmpeg processes transcoding streams of
// this node, including those still finishing an ended stream.
func (m *Manager) TranscodeProcesses() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	count := func(s *session) {
		s.mu.Lock()
		if s.transcoder != nil && s.transcoder.PID() != 0 {
			n++
		}
		s.mu.Unlock()
	}
	for _, s := range m.live {
		count(s)
	}
	for _, e := range m.ended {
		count(e.session)
	}
	return n
}
