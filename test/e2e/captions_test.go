package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// guideCaptionInfo is the base64 data of the onCaptionInfo example in the
// IVS user guide (spec/05 §7.8): the pop-on caption "Hello, Twitch".
const guideCaptionInfo = "tQAxR0E5NANLAPyUrvyUIPyRQPzI5fzs7PzvLPwgVPz36fz04/xogPyUL/8="

// captionStreamSeconds is how long each captioned stream runs; its
// captions all fall in the last ten seconds, inside the six-segment
// window the ended stream's playlists still list.
const captionStreamSeconds = 16

// TestCaptionsReachEveryRendition: CEA-608 captions sent either way IVS
// accepts them reach every rendition and decode from the delivered HLS
// with ffmpeg — on the passthrough of a BASIC channel and on a STANDARD
// channel's transcoded renditions:
//
//   - as A/53 caption SEI in the H.264 (a real ffmpeg encode with caption
//     SEI inserted, published by ffmpeg with -c copy);
//   - as RTMP onCaptionInfo messages (one of them the user guide's own
//     example), sent between the media by an RTMP client.
//
// Our player in Chromium, playing the BASIC channel with SEI captions,
// fires TEXT_CUE with each caption's text and lists a captions text track.
// (It watches the passthrough: under a fully loaded CI machine a
// transcoded rung's playlist once starved it into a fatal "No Segments
// found in Playlist" — see the issue 6 note; ffmpeg checks the rungs.)
func TestCaptionsReachEveryRendition(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)

	seiTexts := []string{"Caption one", "Caption two", "Caption three"}
	infoTexts := []string{"Info one", "Hello, Twitch", "Info three"}
	at := []time.Duration{7 * time.Second, 10 * time.Second, 13 * time.Second}

	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 640, Height: 360, FPS: 30, Seconds: captionStreamSeconds, GOP: 60})
	plain := mediatest.Encode(t, mediatest.EncodeOptions{Width: 640, Height: 360, FPS: 30, Seconds: captionStreamSeconds, GOP: 60})
	// Each caption shows for two seconds, then the screen is cleared (608
	// players end a cue when the screen changes).
	var seiCaptions []mediatest.Caption
	for i, text := range seiTexts {
		seiCaptions = append(seiCaptions, mediatest.Caption{At: at[i], Text: text}, mediatest.Caption{At: at[i] + 2*time.Second})
	}
	es.AddCaptions(t, seiCaptions)
	captioned := filepath.Join(t.TempDir(), "captioned.ts")
	es.WriteTS(t, captioned)

	type stream struct {
		name string
		ch   *ivs.CreateChannelOutput
		want []string
	}
	var streams []stream
	for _, via := range []string{"SEI", "onCaptionInfo"} {
		for _, typ := range []types.ChannelType{types.ChannelTypeBasicChannelType, types.ChannelTypeStandardChannelType} {
			ch := createChannel(t, c, &ivs.CreateChannelInput{Type: typ, InsecureIngest: true,
				LatencyMode: types.ChannelLatencyModeLowLatency})
			want := seiTexts
			if via == "onCaptionInfo" {
				want = infoTexts
			}
			streams = append(streams, stream{name: via + "/" + string(typ), ch: ch, want: want})
		}
	}

	// Chromium first (it holds the browser lock; its page waits for the
	// stream), so the encoders and transcodes run next to no other
	// test's browser.
	watched := streams[0].ch // SEI on BASIC
	live := make(chan struct{})
	arn := aws.ToString(watched.Channel.Arn)
	snapshot, output := startBrowser(t, srv, chromium, arn[strings.LastIndex(arn, "/")+1:], liveGate(live))

	// SEI: ffmpeg publishes the captioned encode as it is.
	var encoders []*encoder
	for _, s := range streams[:2] {
		e := startFileEncoder(t, captioned, rtmpURL(srv, aws.ToString(s.ch.StreamKey.Value)))
		encoders = append(encoders, e)
	}
	// onCaptionInfo: an RTMP client sends the captions as data messages.
	var info []captionInfo
	clear := base64.StdEncoding.EncodeToString(media.A53Payload(mediatest.PopOn608("")))
	for i, text := range infoTexts {
		data := base64.StdEncoding.EncodeToString(media.A53Payload(mediatest.PopOn608(text)))
		if text == "Hello, Twitch" {
			data = guideCaptionInfo
		}
		info = append(info, captionInfo{at: at[i], data: data}, captionInfo{at: at[i] + 2*time.Second, data: clear})
	}
	published := make(chan error, 2)
	for _, s := range streams[2:] {
		go func() {
			published <- publishWithCaptionInfo(t.Context(), rtmpURL(srv, aws.ToString(s.ch.StreamKey.Value)), plain, info)
		}()
	}
	// The page opens as soon as the watched stream starts: waiting for
	// the transcoded ones too once let a loaded CI machine open it after
	// the first caption (at 7 s) had gone by at the live edge.
	for i, s := range streams {
		var e *encoder
		if i < 2 {
			e = encoders[i]
		}
		waitLive(t, c, s.ch.Channel.Arn, e)
		waitEvent(t, c, s.ch.Channel.Arn, "Stream Start", 15*time.Second)
		if i == 0 {
			close(live)
		}
	}

	// The player shows each caption as it plays (TEXT_CUE).
	deadline := time.Now().Add(time.Duration(captionStreamSeconds)*time.Second + 20*time.Second)
	for {
		rep, _ := snapshot()
		var got []string
		for _, cue := range rep.TextCues {
			if len(got) == 0 || got[len(got)-1] != cue.Text {
				got = append(got, cue.Text)
			}
		}
		if hasInOrder(got, seiTexts...) {
			if rep.CaptionTracks == 0 {
				t.Errorf("TEXT_CUE fired but the video element lists no captions text track")
			}
			for _, cue := range rep.TextCues {
				if cue.Type != "TextCue" {
					t.Errorf("cue %+v: type, want TextCue", cue)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("TEXT_CUE texts %q, want %q in order\nreport: %+v\nchromium:\n%s",
				got, seiTexts, rep, logTail(chromiumLog(output()), 60))
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	// Every stream ends; its playlists (with EXT-X-ENDLIST) stay served a
	// while, and ffmpeg decodes the captions from each video rendition.
	for _, e := range encoders {
		if !e.waitExit(time.Duration(captionStreamSeconds)*time.Second + 30*time.Second) {
			t.Fatalf("the file encoder did not finish:\n%s", e.out.String())
		}
	}
	for range 2 {
		if err := <-published; err != nil {
			t.Fatalf("onCaptionInfo publisher: %v", err)
		}
	}
	for _, s := range streams {
		waitOffline(t, c, s.ch.Channel.Arn, 15*time.Second)
		renditions := multivariantRenditions(t, playbackURL(srv, s.ch))
		passthrough, transcoded := 0, 0
		for _, r := range renditions {
			got := mediatest.DecodeCaptions(t, r.url)
			if !slices.Equal(got, s.want) {
				t.Errorf("%s %s: captions %q, want %q", s.name, r.name, got, s.want)
			}
			if r.source {
				passthrough++
			} else {
				transcoded++
			}
		}
		if s.ch.Channel.Type == types.ChannelTypeStandardChannelType && transcoded < 2 || s.ch.Channel.Type == types.ChannelTypeBasicChannelType && passthrough != 1 {
			t.Errorf("%s: %d passthrough and %d transcoded renditions checked", s.name, passthrough, transcoded)
		}
	}
}

// startFileEncoder publishes a media file with ffmpeg in real time, as it is.
func startFileEncoder(t *testing.T, file, url string) *encoder {
	t.Helper()
	return startFFmpegEncoder(t, "-hide_banner", "-loglevel", "warning", "-re", "-i", file, "-c", "copy", "-f", "flv", url)
}

// captionInfo is an onCaptionInfo message to send at a media time.
type captionInfo struct {
	at   time.Duration
	data string // base64 A/53 payload
}

// publishWithCaptionInfo publishes an encode over RTMP in real time with
// gortmplib's client, sending each onCaptionInfo data message before the
// first video frame at or after its time, as encoders interleave them.
func publishWithCaptionInfo(ctx context.Context, rawURL string, es mediatest.Encoded, info []captionInfo) error {
	// gortmplib takes the stream key from the URL's fragment.
	i := strings.LastIndex(rawURL, "/")
	u, err := url.Parse(rawURL[:i] + "#" + rawURL[i+1:])
	if err != nil {
		return err
	}
	cl := &gortmplib.Client{URL: u, Publish: true}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Initialize(ictx); err != nil {
		return fmt.Errorf("RTMP connect: %w", err)
	}
	defer cl.Close()
	var conf mpeg4audio.AudioSpecificConfig
	if err := conf.Unmarshal(es.Tracks[1].AudioConfig); err != nil {
		return err
	}
	video := &gortmplib.Track{Codec: &codecs.H264{SPS: es.Tracks[0].SPS, PPS: es.Tracks[0].PPS}}
	audio := &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: &conf}}
	w := &gortmplib.Writer{Conn: cl, Tracks: []*gortmplib.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		return err
	}
	start := time.Now()
	for _, f := range es.Frames {
		if d := time.Until(start.Add(f.DTS)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if f.Track == 0 {
			for len(info) > 0 && f.PTS >= info[0].at {
				msg := &message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: amf0.Data{
					"onCaptionInfo", amf0.ECMAArray{{Key: "type", Value: "708"}, {Key: "data", Value: info[0].data}},
				}}
				if err := cl.Write(msg); err != nil {
					return err
				}
				info = info[1:]
			}
			err = w.WriteH264(video, f.PTS, f.DTS, f.NALUs)
		} else {
			err = w.WriteMPEG4Audio(audio, f.PTS, f.NALUs[0])
		}
		if err != nil {
			return err
		}
	}
	return nil
}
