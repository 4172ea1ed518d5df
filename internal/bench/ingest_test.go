package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
)

// recordingOrSkip returns the bench recording. Without ffmpeg the test
// fails unless OPENIVS_NO_FFMPEG=1 says the machine has none on purpose.
func recordingOrSkip(t testing.TB) string {
	path, err := EnsureRecording(t.Context(), DefaultBitrate)
	if errors.Is(err, ErrNoFFmpeg) && os.Getenv("OPENIVS_NO_FFMPEG") == "1" {
		t.Skipf("\n!!!!!!!! SKIPPED: no ffmpeg (OPENIVS_NO_FFMPEG=1); the ingest benchmark is NOT tested !!!!!!!!")
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunIngest runs the benchmark small: three publishers for three
// seconds must all go live, stay live and lose nothing.
func TestRunIngest(t *testing.T) {
	path := recordingOrSkip(t)
	var progress strings.Builder
	res, err := RunIngest(t.Context(), IngestOptions{
		Streams: 3, Duration: 3 * time.Second, Warmup: 500 * time.Millisecond, File: path,
		Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var report strings.Builder
	res.Report(&report)
	t.Log("\n" + report.String())
	if !res.OK() {
		t.Fatalf("benchmark failed:\n%s", report.String())
	}
	if res.Admitted != 3 || res.WentLive != 3 || res.StayedLive != 3 {
		t.Errorf("streams: %d admitted, %d live, %d stayed", res.Admitted, res.WentLive, res.StayedLive)
	}
	// 3 s of ~77 frames/s per stream at least; the window follows ~2 s of
	// track discovery and the warmup.
	if res.FramesSent < 3*3*70 || res.FramesWritten != res.FramesSent || res.FramesReceived < res.FramesSent/2 {
		t.Errorf("frames: %d sent, %d written, %d received", res.FramesSent, res.FramesWritten, res.FramesReceived)
	}
	if res.AdmissionP50 <= 0 || res.AdmissionMax > 5*time.Second || res.LiveP50 < res.AdmissionP50 {
		t.Errorf("admission %v..%v, live %v", res.AdmissionP50, res.AdmissionMax, res.LiveP50)
	}
	if res.CPUPercentOfCore <= 0 || res.RSSSteady <= 0 || res.GOPFramesAvg <= 0 || res.RecordingBPS < 2_000_000 {
		t.Errorf("figures missing: %+v", res)
	}
}

// BenchmarkAdmission measures connect -> publish accepted (the server's
// Authorize returned and the session was created) on loopback, one RTMP
// publisher per iteration, each on its own channel so none waits for the
// previous session to end.
func BenchmarkAdmission(b *testing.B) {
	ctx := context.Background()
	node, cfg, stop, err := startNode(ctx, 1_000_000, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	port := node.Ports()["rtmp"]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_, key, err := node.IVS().CreateChannel(ctx, cfg.AccountID, "adm-"+strconv.Itoa(i), "STANDARD", true)
		if err != nil {
			b.Fatal(err)
		}
		u, _ := url.Parse(fmt.Sprintf("rtmp://127.0.0.1:%d/app#%s", port, key))
		c := &gortmplib.Client{URL: u, Publish: true}
		b.StartTimer()
		if err := c.Initialize(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}
