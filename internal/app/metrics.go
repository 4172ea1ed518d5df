package app

import (
	"context"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/live"
	"github.com/openivs/openivs/internal/metrics"
)

// Metrics is the node's metric registry (GET /metrics), for the services
// that report into it (event outbox and sinks, recorder).
func (a *App) Metrics() *metrics.Registry { return a.metrics }

// initMetrics creates the registry and hooks it into API calls. Called by
// New, before the API server takes calls.
func (a *App) initMetrics() {
	a.metrics = metrics.New(metrics.Options{})
	a.callHooks = append(a.callHooks, func(rec awsapi.CallRecord) {
		a.metrics.APICall(rec.Service, rec.Operation, rec.Status, rec.ErrorCode, rec.Duration)
	})
}

// startMetrics points the registry at the live manager and viewers and
// samples viewers every second until ctx ends. Called by Start once both
// exist.
func (a *App) startMetrics(ctx context.Context) {
	a.metrics.ObserveStreamHealth(a.live.StreamHealth)
	a.metrics.ObserveTranscodes(a.live.TranscodeProcesses)
	a.bg.Add(1)
	go func() { defer a.bg.Done(); a.metrics.RunViewers(ctx, a.viewers) }()
}

// ingestMetrics passes the live manager's ingest samples to the registry
// (live declares what it reports; metrics does not know live).
type ingestMetrics struct{ reg *metrics.Registry }

func (m ingestMetrics) IngestSample(s live.IngestSample) {
	m.reg.ObserveIngest(metrics.IngestSample{
		ChannelARN: s.ChannelARN, StreamID: s.StreamID, StreamStart: s.StreamStart,
		Start: s.Start, Duration: s.Duration, Input: s.Input, Bitrate: s.Bitrate,
		Video: trackSamples(s.Video), Audio: trackSamples(s.Audio),
	})
}

func (m ingestMetrics) IngestEnded(channelARN, streamID string, at time.Time) {
	m.reg.IngestEnded(channelARN, streamID, at)
}

func trackSamples(in []live.TrackSample) []metrics.TrackSample {
	out := make([]metrics.TrackSample, len(in))
	for i, t := range in {
		out[i] = metrics.TrackSample{Track: t.Track, Bitrate: t.Bitrate, Framerate: t.Framerate, KeyframeInterval: t.KeyframeInterval}
	}
	return out
}
