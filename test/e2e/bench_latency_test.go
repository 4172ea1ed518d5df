package e2e

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/testutil/browserlock"
)

// TestBenchLatency: `openivs bench latency` plays a live ffmpeg stream
// from a real server in headless Chromium with our player and reports
// glass-to-glass latency samples.
func TestBenchLatency(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	browserlock.Acquire(t) // the bench runs Chromium
	run, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Usage: --help works, a missing --url is a usage error (2).
	if code, _, stderr := runOpenivs(run, t, "bench", "latency", "--help"); code != 0 || !strings.Contains(stderr, "glass-to-glass") {
		t.Errorf("--help: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runOpenivs(run, t, "bench", "latency", "--duration", "1s"); code != 2 || !strings.Contains(stderr, "--url is required") {
		t.Errorf("no --url: exit %d\n%s", code, stderr)
	}

	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, LatencyMode: types.ChannelLatencyModeLowLatency})
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: 180})
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)
	url := playbackURL(srv, ch)
	waitSegments(t, url, 1, 15*time.Second)

	code, stdout, stderr := runOpenivs(run, t, "bench", "latency", "--url", url, "--duration", "8s", "--warmup", "2s",
		"--chromium", chromium, "--json")
	t.Logf("bench latency exit %d; stderr:\n%s", code, stderr)
	if code != 0 {
		t.Fatalf("exit %d, stdout:\n%s", code, stdout)
	}
	var res struct {
		OK                       bool
		Summary                  string
		Samples                  int
		Window                   float64
		FirstFrame               float64
		LowLatency               bool
		Container                string
		State                    string
		Stalls                   int
		Latency                  struct{ P50, P95, Min, Max, Mean float64 }
		BehindEdge, EdgeAge      struct{ P50 float64 }
		PartTarget, PartHoldBack float64
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, stdout)
	}
	t.Logf("%s", res.Summary)
	if !res.OK || res.Samples <= 0 {
		t.Fatalf("no samples:\n%s", stdout)
	}
	l := res.Latency
	for name, v := range map[string]float64{"p50": l.P50, "p95": l.P95, "min": l.Min, "max": l.Max, "mean": l.Mean} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("latency %s = %v, want positive and finite", name, v)
		}
	}
	if !(l.Min <= l.P50 && l.P50 <= l.P95 && l.P95 <= l.Max) {
		t.Errorf("latency not ordered: %+v", l)
	}
	if !(res.Window > 0) || !(res.FirstFrame > 0) || res.State == "" {
		t.Errorf("window %v, first frame %v, state %q", res.Window, res.FirstFrame, res.State)
	}
	// A LOW-latency channel is LL-HLS: the player uses its parts.
	if !res.LowLatency || res.Container != "ts" || !(res.PartTarget > 0) || !(res.PartHoldBack > 0) {
		t.Errorf("low latency %v, container %q, part target %v, part hold-back %v", res.LowLatency, res.Container, res.PartTarget, res.PartHoldBack)
	}
	if !strings.HasPrefix(res.Summary, "latency p50 ") {
		t.Errorf("summary %q", res.Summary)
	}
}
