package e2e

import (
	"errors"
	"fmt"
	"net/http"
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
// (the source rendition) and a STANDARD one (transcoded renditions), both
// fMP4 (emsg). Over-size, offline and throttled calls get IVS's errors;
// TS channels refuse metadata with StreamUnavailable for now.
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
			enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: 600})
			waitLive(t, c, ch.Channel.Arn, enc)
			waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)
			if tc.format == types.ContainerFormatTs {
				// Not yet on TS (docs/decisions/0006): a clear error.
				_, err := c.PutMetadata(ctx(t), &ivs.PutMetadataInput{ChannelArn: ch.Channel.Arn, Metadata: aws.String("ts")})
				var ae smithy.APIError // not one of PutMetadata's modelled errors
				if !errors.As(err, &ae) || ae.ErrorCode() != "StreamUnavailable" {
					t.Fatalf("PutMetadata on a live TS channel: %v, want StreamUnavailable", err)
				}
				return
			}
			id := aws.ToString(ch.Channel.Arn)[strings.LastIndex(aws.ToString(ch.Channel.Arn), "/")+1:]
			snapshot, output := startBrowser(t, srv, chromium, id)
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
			deadline = time.Now().Add(20 * time.Second)
			for {
				rep, _ := snapshot()
				if len(rep.MetaCues) >= len(want) {
					time.Sleep(time.Second) // a duplicate would show up now
					rep, _ = snapshot()
					var got []string
					for _, cue := range rep.MetaCues {
						got = append(got, cue.Text)
						if cue.Owner != "metadata.live-video.net" || cue.Type != "TextMetadataCue" {
							t.Errorf("cue %+v: want type TextMetadataCue, owner metadata.live-video.net", cue)
						}
					}
					if strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Fatalf("cues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
					}
					break
				}
				if time.Now().After(deadline) {
					var got []string
					for _, cue := range rep.MetaCues {
						got = append(got, fmt.Sprintf("%.3f %s", cue.StartTime, cue.Text))
					}
					fail("%d of %d cues arrived:\n%s", len(rep.MetaCues), len(want), strings.Join(got, "\n"))
				}
				time.Sleep(250 * time.Millisecond)
			}

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
	// the stream is live.
	live := make(chan struct{})
	gate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/play/") {
				select {
				case <-live:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	arn := aws.ToString(ch.Channel.Arn)
	snapshot, output := startBrowser(t, srv, chromium, arn[strings.LastIndex(arn, "/")+1:], gate)
	enc := startFFmpegEncoder(t, "-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", subs, "-t", "20",
		"-map", "0:v", "-map", "1:a", "-map", "2:s",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-b:v", "800k", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2", "-c:s", "text",
		"-f", "flv", rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)))
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)
	close(live)

	deadline := time.Now().Add(40 * time.Second)
	for {
		rep, _ := snapshot()
		if len(rep.MetaCues) >= len(want) {
			time.Sleep(time.Second) // a duplicate would show up now
			rep, _ = snapshot()
			var got []string
			for _, cue := range rep.MetaCues {
				got = append(got, cue.Text)
				if cue.Owner != "inband.metadata.live-video.net" || cue.Type != "TextMetadataCue" {
					t.Errorf("cue %+v: want type TextMetadataCue, owner inband.metadata.live-video.net", cue)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("cues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d in-band cues arrived: %+v\nffmpeg:\n%s\nchromium:\n%s", len(rep.MetaCues), len(want), rep.MetaCues,
				enc.out.String(), logTail(chromiumLog(output()), 60))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
