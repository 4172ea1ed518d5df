package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/testutil/browserlock"
)

// TestBenchMetadata: `openivs bench metadata` calls PutMetadata (AWS SDK)
// on a live channel while our player plays it in headless Chromium, and
// reports each call's delay to the player's cue; every call is delivered
// once, in order. (The figures themselves go to docs/benchmarks.md.)
func TestBenchMetadata(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	browserlock.Acquire(t) // the bench runs Chromium
	run, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType,
		ContainerFormat: types.ContainerFormatFragmentedMP4, LatencyMode: types.ChannelLatencyModeLowLatency})
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: 180})
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)

	bench := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(run, binPath, append([]string{"bench", "metadata"}, args...)...)
		cmd.Env = childEnv("AWS_ACCESS_KEY_ID="+testAccessKeyID, "AWS_SECRET_ACCESS_KEY="+testSecretAccessKey)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), out.String(), errOut.String()
		}
		must(t, err, "openivs bench metadata")
		return 0, out.String(), errOut.String()
	}
	if code, _, stderr := bench("--url", playbackURL(srv, ch)); code != 2 || !strings.Contains(stderr, "--channel-arn") {
		t.Errorf("missing flags: exit %d\n%s", code, stderr)
	}

	const calls = 12
	code, stdout, stderr := bench("--url", playbackURL(srv, ch), "--channel-arn", aws.ToString(ch.Channel.Arn),
		"--endpoint-url", srv.Endpoint, "--calls", "12", "--warmup", "2s", "--chromium", chromium, "--json")
	t.Logf("bench metadata exit %d; stderr:\n%s", code, stderr)
	if code != 0 {
		t.Fatalf("exit %d, stdout:\n%s", code, stdout)
	}
	var res struct {
		OK                             bool
		Summary                        string
		Calls, Failed, Delivered, Lost int
		Duplicates, OutOfOrder         int
		Delay, Excess, CallTime        struct{ P50, P95, Min, Max float64 }
		Bound, WithinBound             float64
		Player                         struct{ Latency struct{ P50 float64 } }
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, stdout)
	}
	t.Logf("%s", res.Summary)
	if !res.OK || res.Calls != calls || res.Delivered != calls || res.Lost != 0 || res.Failed != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 {
		t.Fatalf("want all %d calls delivered once, in order:\n%s", calls, stdout)
	}
	if !(res.Delay.Min > 0 && res.Delay.Min <= res.Delay.P50 && res.Delay.P50 <= res.Delay.P95 && res.Delay.P95 <= res.Delay.Max) ||
		!(res.Player.Latency.P50 > 0) || !(res.Bound > res.Player.Latency.P50) || !(res.CallTime.P50 > 0) {
		t.Errorf("implausible figures:\n%s", stdout)
	}
}
