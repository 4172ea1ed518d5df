package app

import (
	"context"
	"path/filepath"

	"github.com/openivs/openivs/internal/live"
	"github.com/openivs/openivs/internal/record"
)

// recordingSpool is where recordings spool before they are uploaded.
func (a *App) recordingSpool() string { return filepath.Join(a.cfg.DataDir, "spool", "recordings") }

// recordingConfig is how the live manager records streams.
func (a *App) recordingConfig() *live.RecordingConfig {
	rc := &live.RecordingConfig{
		Store: a.recordings, SpoolDir: a.recordingSpool(),
		Thumbnails: &record.Thumbnailer{FFmpeg: a.cfg.FFmpeg},
	}
	if a.metrics != nil {
		rc.OnRecorded = a.metrics.AddRecordedTime
	}
	return rc
}

// recoverRecordings closes, in the background, the recordings an earlier
// run left in the spool (killed, crashed, or stopped mid-upload).
func (a *App) recoverRecordings(ctx context.Context) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		n, err := record.Recover(ctx, a.recordings, a.recordingSpool(), a.outbox, a.log)
		if err != nil && ctx.Err() == nil {
			a.log.Error("closing recordings left by an earlier run", "err", err)
		} else if n > 0 {
			a.log.Info("closed recordings left by an earlier run", "recordings", n)
		}
	}()
}
