package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// benchViewersResult is the part of `openivs bench viewers --json` the
// test reads (durations in nanoseconds).
type benchViewersResult struct {
	OK               bool
	Viewers          int
	Started, Failed  int
	Ended, Gone      int
	Protocol         string
	HasPDT           bool
	PlaylistRequests int64
	PartRequests     int64
	Errors           int64
	ErrorKinds       map[string]int64
	PartsReceived    int64
	PartBytes        int64
	BitsPerSecond    float64
	KeepUp           float64
	MediaSeconds     float64
	PartDelay        struct {
		N                        int
		P50, P90, P99, P999, Max time.Duration
	}
	AnnounceDelay    struct{ N int }
	CPUPercentOfCore float64
}

// runBenchViewers runs `openivs bench viewers` with args.
func runBenchViewers(t *testing.T, args ...string) (int, []byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	code, stdout, stderr := runOpenivs(ctx, t, append([]string{"bench", "viewers"}, args...)...)
	return code, []byte(stdout), stderr
}

// TestBenchViewers runs `openivs bench viewers` against a live BASIC
// low-latency channel fed by ffmpeg: its viewers must receive parts and
// the figures must be consistent. How fast is the benchmark's business,
// not the test's.
func TestBenchViewers(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{
		Type: types.ChannelTypeBasicChannelType, LatencyMode: types.ChannelLatencyModeLowLatency,
	})
	url := playbackURL(srv, ch)

	if code, _, stderr := runBenchViewers(t); code != 2 || !strings.Contains(stderr, "--url") {
		t.Errorf("without --url: exit %d, %q", code, stderr)
	}
	// Offline: the playback URL answers 404, which the bench reports.
	if code, _, stderr := runBenchViewers(t, "--url", url, "--viewers", "1", "--duration", "1s"); code != 1 || !strings.Contains(stderr, "404") {
		t.Errorf("offline channel: exit %d, %q", code, stderr)
	}

	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{})
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)

	// --min-keep-up 0: whether the viewers keep up is the benchmark's
	// finding, not a condition of this test.
	code, stdout, stderr := runBenchViewers(t, "--url", url, "--viewers", "20", "--duration", "5s", "--min-keep-up", "0", "--json")
	var res benchViewersResult
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("exit %d; output is not JSON: %v\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	t.Logf("bench viewers (exit %d):\n%s\nprogress:\n%s", code, stdout, stderr)
	if code != 0 || !res.OK {
		t.Errorf("exit %d, ok %v", code, res.OK)
	}
	if res.Viewers != 20 || res.Started != 20 || res.Failed != 0 || res.Ended != 0 || res.Gone != 0 {
		t.Errorf("viewers %d: %d started, %d failed, %d ended, %d gone", res.Viewers, res.Started, res.Failed, res.Ended, res.Gone)
	}
	if res.PartsReceived == 0 || res.PartBytes == 0 || res.MediaSeconds <= 0 || res.PlaylistRequests == 0 || res.PartRequests == 0 {
		t.Errorf("parts %d (%d bytes, %.1f s of media), %d playlist and %d part requests",
			res.PartsReceived, res.PartBytes, res.MediaSeconds, res.PlaylistRequests, res.PartRequests)
	}
	if res.Errors != 0 {
		t.Errorf("errors: %v", res.ErrorKinds)
	}
	// openivs dates every segment and runs on this machine's clock, so
	// every received part has a part delay.
	d := res.PartDelay
	if !res.HasPDT || d.N == 0 || d.N != res.AnnounceDelay.N || !(d.P50 <= d.P99 && d.P99 <= d.Max) {
		t.Errorf("program-date-time %v, part delays %+v, announce delays %d", res.HasPDT, d, res.AnnounceDelay.N)
	}
	// The encoder sends ~0.4 Mbit/s (300k video, 96k audio, TS overhead):
	// what each viewer receives must be of that order.
	if perViewer := res.BitsPerSecond / 20; perViewer < 100e3 || perViewer > 5e6 {
		t.Errorf("%.0f bit/s per viewer", perViewer)
	}
	if res.KeepUp <= 0 || res.Protocol != "HTTP/1.1" || res.CPUPercentOfCore <= 0 {
		t.Errorf("keep-up %.2f, protocol %q, bench CPU %.1f%%", res.KeepUp, res.Protocol, res.CPUPercentOfCore)
	}

	// The human report of a short run says PASS and names the figures.
	code, stdout, stderr = runBenchViewers(t, "--url", url, "--viewers", "2", "--duration", "1s", "--warmup", "1s", "--ramp", "0", "--min-keep-up", "0")
	report := string(stdout)
	for _, want := range []string{"delivered", "part delay", "p99", "playlist/s", "part/s", "bench CPU", "PASS"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q (exit %d):\n%s\n%s", want, code, report, stderr)
			break
		}
	}
}
