package app

import (
	"context"

	"github.com/openivs/openivs/internal/awsapi"
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
