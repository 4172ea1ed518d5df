package rtmp

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// guideCaptionInfo is the onCaptionInfo example of the IVS user guide
// (spec/05 §7.8): the 608 pop-on caption "Hello, Twitch".
var guideCaptionInfo = amf0.Data{"onCaptionInfo", amf0.ECMAArray{
	{Key: "type", Value: "708"},
	{Key: "data", Value: "tQAxR0E5NANLAPyUrvyUIPyRQPzI5fzs7PzvLPwgVPz36fz04/xogPyUL/8="},
}}

func TestParseInband(t *testing.T) {
	in, ok := parseInband(guideCaptionInfo)
	if !ok || len(in.captions) != 11 || in.hasText {
		t.Fatalf("onCaptionInfo: %+v %v", in, ok)
	}
	in, ok = parseInband(amf0.Data{"@setDataFrame", "onTextData", amf0.Object{{Key: "type", Value: "Text"}, {Key: "text", Value: "poll #1"}}})
	if !ok || in.text != "poll #1" || !in.hasText {
		t.Fatalf("onTextData: %+v %v", in, ok)
	}
	long := make([]byte, maxInbandText+1)
	for i := range long {
		long[i] = 'a'
	}
	for name, d := range map[string]amf0.Data{
		"608 type":      {"onCaptionInfo", amf0.ECMAArray{{Key: "type", Value: "608"}, {Key: "data", Value: "tQAx"}}},
		"bad base64":    {"onCaptionInfo", amf0.ECMAArray{{Key: "type", Value: "708"}, {Key: "data", Value: "!!"}}},
		"not A/53":      {"onCaptionInfo", amf0.ECMAArray{{Key: "type", Value: "708"}, {Key: "data", Value: "aGVsbG8gd29ybGQ="}}},
		"no text":       {"onTextData", amf0.Object{{Key: "type", Value: "Text"}}},
		"text too long": {"onTextData", amf0.Object{{Key: "text", Value: string(long)}}},
		"bad UTF-8":     {"onTextData", amf0.Object{{Key: "text", Value: "\xff\xfe"}}},
		"onMetaData":    {"onMetaData", amf0.Object{{Key: "text", Value: "x"}}},
		"no body":       {"onTextData"},
	} {
		if in, ok := parseInband(d); ok {
			t.Errorf("%s: parsed as %+v", name, in)
		}
	}
}

func FuzzInbandData(f *testing.F) {
	for _, d := range []amf0.Data{
		guideCaptionInfo,
		{"onTextData", amf0.Object{{Key: "text", Value: "hello"}}},
		{"@setDataFrame", "onTextData", amf0.ECMAArray{{Key: "text", Value: "x"}}},
	} {
		b, err := d.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := amf0.Unmarshal(b)
		if err != nil {
			return
		}
		in, ok := parseInband(d)
		if ok && len(in.text) > maxInbandText {
			t.Fatalf("%d bytes of in-band text accepted", len(in.text))
		}
		if ok && len(in.captions) > 31 {
			t.Fatalf("%d cc triplets from one message; cc_count allows 31", len(in.captions))
		}
	})
}

// TestOnTextDataBecomesInbandMetadata: a real encoder (ffmpeg muxing a text
// subtitle stream into FLV sends onTextData) delivers timed text; each
// piece reaches the stream right after the video frame it is timed with.
func TestOnTextDataBecomesInbandMetadata(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	subs := filepath.Join(t.TempDir(), "cues.srt")
	if err := os.WriteFile(subs, []byte("1\n00:00:00,500 --> 00:00:01,000\nfirst cue\n\n"+
		"2\n00:00:01,500 --> 00:00:02,000\nsecond cue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The reference encode plus the subtitle file as a third input.
	args := ffmpegArgs("rtmp://"+srv.addr+"/app/"+key, encodeOpts{seconds: 3,
		extra: []string{"-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:s", "text", "-max_interleave_delta", "200000"}})
	at := slices.Index(args, "-t")
	args = slices.Insert(args, at, "-i", subs)
	res := runFFmpeg(t, 30*time.Second, args)
	if res.err != nil {
		t.Fatalf("ffmpeg failed: %v\n%s", res.err, res.stderr)
	}
	st := waitClosed(t, pub, 5*time.Second)
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.metadata) != 2 || st.metadata[0] != "first cue" || st.metadata[1] != "second cue" {
		t.Fatalf("in-band metadata %q, want the two cues in order", st.metadata)
	}
	for i, want := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond} {
		var last *media.Frame
		for j := st.metaAfter[i] - 1; j >= 0; j-- {
			if st.frames[j].Track == 0 {
				last = &st.frames[j]
				break
			}
		}
		if last == nil {
			t.Fatalf("cue %d arrived before any video", i)
		}
		if d := last.PTS - want; d < -100*time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("cue %d dated with the frame at %v, want about %v", i, last.PTS, want)
		}
	}
}

// TestOnCaptionInfoBecomesCaptionSEI: onCaptionInfo captions enter the
// video as A/53 caption SEI on the next picture after the message, once.
func TestOnCaptionInfoBecomesCaptionSEI(t *testing.T) {
	t.Parallel()
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 320, Height: 240, FPS: 30, Seconds: 2})
	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	v := es.Tracks[0]
	track := &gortmplib.Track{Codec: &codecs.H264{SPS: v.SPS, PPS: v.PPS}}
	c, w := publishWriter(t, srv, key, track)
	const captionAt = 20 // video frame index the caption precedes
	n := 0
	for _, f := range es.Frames {
		if f.Track != 0 {
			continue
		}
		if n == captionAt {
			for _, d := range []amf0.Data{
				{"onCaptionInfo", amf0.ECMAArray{{Key: "type", Value: "708"}, {Key: "data", Value: "%%%"}}}, // ignored
				guideCaptionInfo,
			} {
				if err := c.Write(&message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: d}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.WriteH264(track, f.PTS, f.DTS, f.NALUs); err != nil {
			t.Fatal(err)
		}
		n++
	}
	c.Close()
	st := waitClosed(t, pub, 10*time.Second)
	var captioned []int
	for i, f := range st.snapshot() {
		if cc := media.CaptionsInAccessUnit(f.NALUs); len(cc) > 0 {
			if len(cc) != 11 {
				t.Errorf("frame %d: %d cc triplets, want the message's 11", i, len(cc))
			}
			captioned = append(captioned, i)
		}
	}
	if len(captioned) != 1 || captioned[0] != captionAt {
		t.Fatalf("caption SEI on frames %v, want only frame %d", captioned, captionAt)
	}
}

// waitClosed waits for the one stream of pub to start and be closed.
func waitClosed(t *testing.T, pub *testPublisher, within time.Duration) *testStream {
	t.Helper()
	var st *testStream
	waitFor(t, within, "stream end", func() bool {
		if _, starts, _ := pub.snapshot(); len(starts) == 1 {
			st = starts[0]
			select {
			case <-st.closed:
				return true
			default:
			}
		}
		return false
	})
	return st
}
