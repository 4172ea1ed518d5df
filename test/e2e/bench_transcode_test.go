package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestBenchTranscode runs `openivs bench transcode` on a small recording:
// it must find the node's ffmpeg, measure both sides and report the ladder
// of the input. The figures are the benchmark's business, not the test's;
// the test only checks they are consistent.
func TestBenchTranscode(t *testing.T) {
	ffmpegPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	code, stdout, stderr := runOpenivs(ctx, t, "bench", "transcode", "--json",
		"--width", "854", "--height", "480", "--bitrate", "1500k", "--duration", "3s", "--warmup", "3s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var res struct {
		Ladder         []string
		PipelineCores  float64
		NodeCores      float64
		FFmpegCores    float64
		PublisherCores float64
		BareCores      float64
		Ratio          float64
		FFmpegRestarts int
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	t.Logf("%s", stdout)
	if got := strings.Join(res.Ladder, " "); got != "480p30 360p30 160p30" {
		t.Errorf("ladder %q for an 854x480 STANDARD input", got)
	}
	if res.FFmpegCores <= 0 || res.BareCores <= 0 || res.PipelineCores < res.FFmpegCores ||
		res.Ratio <= 0 || res.FFmpegRestarts != 0 {
		t.Errorf("inconsistent figures: %+v", res)
	}
}
