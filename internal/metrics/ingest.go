package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// IngestSample is one period (about a second) of a live stream's ingest.
type IngestSample struct {
	ChannelARN  string
	StreamID    string
	StreamStart time.Time // the stream session's startTime
	// Start is when the period began (CloudWatch dates a data point by the
	// start of its period); Duration is how long it ran.
	Start    time.Time
	Duration time.Duration
	// Input is the ingested stream time the period adds to LiveInputTime:
	// Duration when media arrived in it, else 0.
	Input time.Duration
	// Bitrate is every track (video, audio, metadata) summed, bits/s.
	Bitrate float64
	Video   []TrackSample
	Audio   []TrackSample
}

// TrackSample is one track's figures in an IngestSample.
type TrackSample struct {
	Track     string  // the track label ("video", "audio", "video2", …)
	Bitrate   float64 // bits/s
	Framerate float64 // video: frames/s
	// KeyframeInterval is the latest observed interval between two
	// keyframes of a video track; 0 until two were seen.
	KeyframeInterval time.Duration
}

// ObserveIngest records a live stream's ingest sample: the high-resolution
// ingest gauges of its channel, LiveInputTime and the session's history.
func (r *Registry) ObserveIngest(s IngestSample) {
	ch := s.ChannelARN
	r.mu.Lock()
	prev, known := r.live[ch]
	r.live[ch] = s.StreamID
	r.counted[ch] = r.now()
	r.mu.Unlock()
	if !known || prev != s.StreamID {
		// A new stream: its counters exist from the start, at 0, so a
		// scraper's first increase() over them counts everything; series
		// of a previous stream's extra tracks go.
		r.deleteIngestSeries(ch)
		r.liveDeliveredTime.WithLabelValues(ch, UnknownCountry)
	}
	r.liveInputTime.WithLabelValues(ch).Add(s.Input.Seconds())
	r.ingestBitrate.WithLabelValues(ch).Set(s.Bitrate)
	for _, t := range s.Video {
		r.ingestVideoBitrate.WithLabelValues(ch, t.Track).Set(t.Bitrate)
		r.ingestFramerate.WithLabelValues(ch, t.Track).Set(t.Framerate)
		if t.KeyframeInterval > 0 {
			r.keyframeInterval.WithLabelValues(ch, t.Track).Set(t.KeyframeInterval.Seconds())
		}
	}
	for _, t := range s.Audio {
		r.ingestAudioBitrate.WithLabelValues(ch, t.Track).Set(t.Bitrate)
	}
	r.history.add(s)
}

// IngestEnded removes the ingest gauges and ConcurrentViews of the
// stream's channel (IVS has no data points for a channel that is not
// live) and closes the stream's history at the given time. The counters
// stay (see counterRetention).
func (r *Registry) IngestEnded(channelARN, streamID string, at time.Time) {
	r.mu.Lock()
	current := r.live[channelARN] == streamID
	if current {
		delete(r.live, channelARN)
	}
	r.mu.Unlock()
	if current {
		// A newer stream of the channel keeps its series.
		r.deleteIngestSeries(channelARN)
		r.concurrentViews.DeleteLabelValues(channelARN)
	}
	r.history.end(streamID, at)
}

func (r *Registry) deleteIngestSeries(channelARN string) {
	match := prometheus.Labels{"channel": channelARN}
	r.ingestBitrate.DeletePartialMatch(match)
	r.ingestVideoBitrate.DeletePartialMatch(match)
	r.ingestAudioBitrate.DeletePartialMatch(match)
	r.ingestFramerate.DeletePartialMatch(match)
	r.keyframeInterval.DeletePartialMatch(match)
}

// ViewerSource is where viewer figures come from (playback.Viewers).
type ViewerSource interface {
	// Count is a channel's viewer sessions (ConcurrentViews).
	Count(channelARN string) int
	// DrainDelivered hands over, per channel and viewer country ("" when
	// unknown), the viewer time served since the last drain
	// (LiveDeliveredTime).
	DrainDelivered(fn func(channelARN, country string, d time.Duration))
}

// viewerPeriod is how often RunViewers samples viewers.
const viewerPeriod = time.Second

// RunViewers samples viewers once a second until ctx ends: ConcurrentViews
// of every live channel, LiveDeliveredTime of every channel, and sweeps
// series and history past their retention.
func (r *Registry) RunViewers(ctx context.Context, v ViewerSource) {
	tick := time.NewTicker(viewerPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.SampleViewers(v)
		}
	}
}

// SampleViewers takes one sample of v (what RunViewers does each second).
func (r *Registry) SampleViewers(v ViewerSource) {
	v.DrainDelivered(func(channelARN, country string, d time.Duration) {
		r.AddDeliveredTime(channelARN, country, d)
	})
	r.mu.Lock()
	live := make([]string, 0, len(r.live))
	for ch := range r.live {
		live = append(live, ch)
	}
	r.mu.Unlock()
	counts := make([]int, len(live))
	for i, ch := range live {
		counts[i] = v.Count(ch)
	}
	r.mu.Lock()
	for i, ch := range live {
		// Checked under the lock IngestEnded deletes under, so a stream
		// that ended meanwhile gets no series back.
		if _, ok := r.live[ch]; ok {
			r.concurrentViews.WithLabelValues(ch).Set(float64(counts[i]))
		}
	}
	r.mu.Unlock()
	r.sweep()
}
