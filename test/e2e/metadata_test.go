package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/aws/smithy-go"
)

// TestBrowserReceivesTimedMetadata: PutMetadata (AWS SDK) during a live
// ffmpeg stream reaches our player in headless Chromium as
// TEXT_METADATA_CUE with the exact text and the API's owner: 20 calls in a
// row arrive in order, none lost, none duplicated — on a BASIC channel
// (the source rendition) and a STANDARD one (transcoded renditions) in
// fMP4 (emsg), and a BASIC TS channel (timed-ID3 stream). Over-size,
// offline and throttled calls get IVS's errors.
func TestBrowserReceivesTimedMetadata(t *testing.T) {
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{RateLimits: true})
	c := ivsClient(t, srv)

	offline := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	_, err := c.PutMetadata(ctx(t), &ivs.PutMetadataInput{ChannelArn: offline.Channel.Arn, Metadata: aws.String("nobody")})
	var nb *types.ChannelNotBroadcasting
	if !errors.As(err, &nb) {
		t.Fatalf("PutMetadata on an offline channel: %v, want ChannelNotBroadcasting", err)
	}

	for _, tc := range []struct {
		name   string
		typ    types.ChannelType
		format types.ContainerFormat
	}{
		{"BASIC_FMP4", types.ChannelTypeBasicChannelType, types.ContainerFormatFragmentedMP4},
		{"STANDARD_FMP4", types.ChannelTypeStandardChannelType, types.ContainerFormatFragmentedMP4},
		{"BASIC_TS", types.ChannelTypeBasicChannelType, types.ContainerFormatTs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := createChannel(t, c, &ivs.CreateChannelInput{Type: tc.typ, ContainerFormat: tc.format,
				LatencyMode: types.ChannelLatencyModeLowLatency})
			// Chromium first (it takes the browser lock), then the stream:
			// the encoder and STANDARD's transcode must not run next to
			// another test's browser.
			live := make(chan struct{})
			id := aws.ToString(ch.Channel.Arn)[strings.LastIndex(aws.ToString(ch.Channel.Arn), "/")+1:]
			snapshot, output := startBrowser(t, srv, chromium, id, liveGate(live))
			enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: 600})
			waitLive(t, c, ch.Channel.Arn, enc)
			waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)
			close(live)
			fail := func(format string, args ...any) {
				t.Helper()
				rep, n := snapshot()
				t.Fatalf("%s\n%d reports; last: %+v\nchromium:\n%s", fmt.Sprintf(format, args...), n, rep, logTail(chromiumLog(output()), 100))
			}
			deadline := time.Now().Add(45 * time.Second)
			for rep, _ := snapshot(); rep.PlayedMs < 3000; rep, _ = snapshot() {
				if time.Now().After(deadline) {
					fail("the player did not play 3 s")
				}
				time.Sleep(200 * time.Millisecond)
			}

			// 20 in a row, within the channel's 5 TPS.
			var want []string
			for i := range 20 {
				text := fmt.Sprintf(`{"question":%d,"answers":["ja","nein","vielleicht – ünïcödé"]}`, i)
				want = append(want, text)
				if _, err := c.PutMetadata(ctx(t), &ivs.PutMetadataInput{ChannelArn: ch.Channel.Arn, Metadata: aws.String(text)}); err != nil {
					t.Fatalf("PutMetadata %d: %v", i, err)
				}
				time.Sleep(250 * time.Millisecond)
			}
			waitMetaCues(t, snapshot, want, "metadata.live-video.net", 20*time.Second, func() string {
				rep, n := snapshot()
				return fmt.Sprintf("%d reports; last: %+v\nchromium:\n%s", n, rep, logTail(chromiumLog(output()), 100))
			})

			// Over 1 KB: ValidationException.
			_, err := c.PutMetadata(ctx(t), &ivs.PutMetadataInput{ChannelArn: ch.Channel.Arn, Metadata: aws.String(strings.Repeat("x", 1025))})
			var ve *types.ValidationException
			if !errors.As(err, &ve) {
				t.Errorf("1025-byte metadata: %v, want ValidationException", err)
			}
			// Past 5 per second on one channel: ThrottlingException.
			time.Sleep(1100 * time.Millisecond)
			throttled := 0
			for range 8 {
				_, err := c.PutMetadata(ctx(t), &ivs.PutMetadataInput{ChannelArn: ch.Channel.Arn, Metadata: aws.String("burst")})
				var ae smithy.APIError
				if errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException" {
					throttled++
				} else if err != nil {
					t.Errorf("burst: %v", err)
				}
			}
			if throttled == 0 {
				t.Error("8 PutMetadata calls at once on one channel were all accepted; want ThrottlingException past 5 per second")
			}
		})
	}
}

// TestBrowserReceivesInbandMetadata: timed text the encoder sends in-band
// (ffmpeg muxing a subtitle stream into FLV sends onTextData) reaches our
// player as TEXT_METADATA_CUE with the in-band owner, each cue in order.
func TestBrowserReceivesInbandMetadata(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType,
		ContainerFormat: types.ContainerFormatFragmentedMP4, LatencyMode: types.ChannelLatencyModeLowLatency})

	want := []string{"in-band one", `{"poll":"in-band two"}`, "in-band three – ünïcödé"}
	var srt strings.Builder
	for i, text := range want {
		at := 8 + 2*i // seconds: after the player has started
		fmt.Fprintf(&srt, "%d\n00:00:%02d,000 --> 00:00:%02d,500\n%s\n\n", i+1, at, at, text)
	}
	subs := filepath.Join(t.TempDir(), "cues.srt")
	must(t, os.WriteFile(subs, []byte(srt.String()), 0o644), "write subtitles")

	// Chromium first (holding the browser lock), its page released once
	// the stream is live (liveGate).
	live := make(chan struct{})
	arn := aws.ToString(ch.Channel.Arn)
	snapshot, output := startBrowser(t, srv, chromium, arn[strings.LastIndex(arn, "/")+1:], liveGate(live))
	enc := startFFmpegEncoder(t, "-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", subs, "-t", "20",
		"-map", "0:v", "-map", "1:a", "-map", "2:s",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-b:v", "800k", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2", "-c:s", "text",
		// A sparse subtitle stream must not hold the muxer: by default
		// ffmpeg buffers up to 10 s of media waiting for its next packet,
		// and the stream starves.
		"-max_interleave_delta", "200000",
		"-f", "flv", rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)))
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)
	close(live)

	waitMetaCues(t, snapshot, want, "inband.metadata.live-video.net", 40*time.Second, func() string {
		return "ffmpeg:\n" + enc.out.String() + "\nchromium:\n" + logTail(chromiumLog(output()), 60)
	})
}
