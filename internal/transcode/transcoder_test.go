package transcode

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// collected is what a rung hub delivered.
type collected struct {
	frames []*media.Frame
}

func collect(t *testing.T, h *media.Hub) <-chan collected {
	t.Helper()
	sub := h.Subscribe("test")
	out := make(chan collected, 1)
	go func() {
		defer sub.Close()
		var c collected
		for {
			f, err := sub.Next(context.Background())
			if err != nil {
				out <- c
				return
			}
			c.frames = append(c.frames, f)
		}
	}()
	return out
}

// play writes frames into hub in real time (by DTS), re-dating Wall to
// when each is written, as ingest would; it calls at(i) before frame i.
func play(hub *media.Hub, frames []*media.Frame, at func(i int)) {
	start := time.Now()
	for i, f := range frames {
		if at != nil {
			at(i)
		}
		if d := time.Until(start.Add(f.DTS)); d > 0 {
			time.Sleep(d)
		}
		g := *f
		g.Wall = time.Now()
		hub.Write(&g)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Logf("%s", b); return len(b), nil }

// transcodeAll runs a transcoder of the channel type's ladder over a
// real-time replay of es and returns what each rung's hub delivered, by
// rung index, once the source ended and the transcoder stopped.
func transcodeAll(t *testing.T, es mediatest.Encoded, typ string, in Input) ([]Rung, map[int]collected, *Transcoder) {
	t.Helper()
	src := media.NewHub(es.Tracks, media.HubOptions{})
	rungs := Ladder(typ, "", in)
	// ffmpeg drains every frame however long a loaded machine takes: the
	// tests count frames, not how soon an ended stream frees the CPU.
	tc, err := New(Config{Source: src, Rungs: rungs, Input: in, Logger: testLogger(t), StopGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	outs := map[int]<-chan collected{}
	for i := range rungs {
		if h := tc.Hub(i); h != nil {
			outs[i] = collect(t, h)
		}
	}
	if len(outs) != len(rungs) {
		t.Fatalf("%d rung hubs for %d rungs", len(outs), len(rungs))
	}
	done := make(chan struct{})
	go func() { tc.Run(context.Background()); close(done) }()
	play(src, es.Frames, nil)
	src.Close()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("transcoder did not end after its source closed")
	}
	got := map[int]collected{}
	for i, ch := range outs {
		got[i] = <-ch
	}
	return rungs, got, tc
}

func TestTranscoderRungsFollowTheSource(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 1280, Height: 720, FPS: 60, Seconds: 5})
	rungs, outs, tc := transcodeAll(t, es, TypeAdvancedHD, Input{Width: 1280, Height: 720, FPS: 60})
	if pid := tc.PID(); pid != 0 {
		t.Fatalf("ffmpeg pid %d still recorded after Run returned", pid)
	}

	// Source keyframe PTS and wall clock by PTS.
	srcKeys := map[time.Duration]bool{}
	srcVideo := map[time.Duration]bool{}
	for _, f := range es.Frames {
		if f.Track == 0 {
			srcVideo[f.PTS] = true
			if f.Key {
				srcKeys[f.PTS] = true
			}
		}
	}
	for i, c := range outs {
		r := rungs[i]
		var video, audio, keys int
		for _, f := range c.frames {
			isVideo := !r.AudioOnly && f.Track == 0
			if !isVideo {
				audio++
				continue
			}
			video++
			if !srcVideo[f.PTS] {
				t.Errorf("%s: frame at %v is not at a source frame's time", r.Name, f.PTS)
				break
			}
			if f.Key != srcKeys[f.PTS] {
				t.Errorf("%s: frame at %v key=%v, source key=%v", r.Name, f.PTS, f.Key, srcKeys[f.PTS])
			}
			if f.Key {
				keys++
			}
			if f.Wall.IsZero() {
				t.Errorf("%s: frame without ingest time", r.Name)
			}
		}
		wantVideo := es.VideoFrames
		if r.MaxFPS == 30 {
			wantVideo /= 2
		}
		if r.AudioOnly {
			wantVideo = 0
		}
		t.Logf("%s: %d video frames (%d keyframes), %d audio frames", r.Name, video, keys, audio)
		if video < wantVideo-2 || video > wantVideo+2 {
			t.Errorf("%s: %d video frames, want about %d", r.Name, video, wantVideo)
		}
		if !r.AudioOnly && keys != len(srcKeys) {
			t.Errorf("%s: %d keyframes, source has %d", r.Name, keys, len(srcKeys))
		}
		if audio < es.AudioFrames-5 {
			t.Errorf("%s: %d audio frames, source has %d", r.Name, audio, es.AudioFrames)
		}
	}
}

func TestTranscoderRestartsAKilledFFmpeg(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 640, Height: 360, FPS: 30, Seconds: 8})
	src := media.NewHub(es.Tracks, media.HubOptions{})
	in := Input{Width: 640, Height: 360, FPS: 30}
	rungs := Ladder(TypeStandard, "", in)
	tc, err := New(Config{Source: src, Rungs: rungs, Input: in, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	out := collect(t, tc.Hub(0))
	done := make(chan struct{})
	go func() { tc.Run(context.Background()); close(done) }()
	var killed int
	play(src, es.Frames, func(i int) {
		if killed == 0 && es.Frames[i].DTS > 3*time.Second {
			killed = tc.PID()
			if killed == 0 {
				t.Error("no ffmpeg running 3 s into the stream")
				return
			}
			if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		}
	})
	src.Close()
	<-done
	if tc.Restarts() < 1 {
		t.Fatalf("restarts = %d after killing ffmpeg", tc.Restarts())
	}
	// The killed process is gone (reaped, not a zombie).
	if err := syscall.Kill(killed, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("killed ffmpeg %d still exists: %v", killed, err)
	}
	c := <-out
	var disc, afterDisc int
	var last time.Duration
	for _, f := range c.frames {
		if f.Track != 0 {
			continue
		}
		if f.Discontinuity {
			disc++
			if !f.Key {
				t.Error("resumed on a non-keyframe")
			}
			if f.PTS <= last {
				t.Errorf("resumed at %v, not after the last delivered frame %v", f.PTS, last)
			}
		}
		if disc > 0 {
			afterDisc++
		}
		last = f.PTS
	}
	if disc != 1 || afterDisc < 30 {
		t.Fatalf("%d discontinuities, %d video frames after it; want 1 and the stream's rest", disc, afterDisc)
	}
}

func TestTranscoderRestartsArePaced(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Seconds: 1})
	src := media.NewHub(es.Tracks, media.HubOptions{})
	in := Input{Width: 640, Height: 360, FPS: 30}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := New(Config{Source: src, Rungs: Ladder(TypeStandard, "", in), Input: in, FFmpeg: "/nonexistent/ffmpeg", Logger: quiet}); err == nil {
		t.Fatal("a transcoder without an ffmpeg binary")
	}
	// An "ffmpeg" that dies at once, again and again.
	tc, err := New(Config{Source: src, Rungs: Ladder(TypeStandard, "", in), Input: in, FFmpeg: "false", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	tc.Run(ctx)
	if tc.Restarts() < 2 {
		t.Fatalf("restarts = %d; want it to keep trying", tc.Restarts())
	}
	if tc.Restarts() > 4 {
		t.Fatalf("restarts = %d in 1.2 s: not paced", tc.Restarts())
	}
}

// TestTranscoderKeepsColour: the rungs' SPS carry the source's colour
// description (primaries, transfer, matrix) and range, here BT.709 full
// range, which IVS passes through.
func TestTranscoderKeepsColour(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 640, Height: 360, FPS: 30, Seconds: 2, VideoArgs: []string{
		"-pix_fmt", "yuvj420p", "-color_range", "pc", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"}})
	want := spsVUI(t, es.Tracks[0].SPS)
	if want == nil || !want.VideoFullRangeFlag || want.ColourPrimaries != 1 {
		t.Fatalf("the source does not carry BT.709 full range: %+v", want)
	}
	rungs, out, _ := transcodeAll(t, es, TypeStandard, Input{Width: 640, Height: 360, FPS: 30})
	for i, c := range out {
		var sps []byte
		for _, f := range c.frames {
			for _, n := range f.NALUs {
				if len(n) > 0 && n[0]&0x1f == 7 && sps == nil {
					sps = n
				}
			}
		}
		got := spsVUI(t, sps)
		if got == nil || got.VideoFullRangeFlag != want.VideoFullRangeFlag || got.ColourPrimaries != want.ColourPrimaries ||
			got.TransferCharacteristics != want.TransferCharacteristics || got.MatrixCoefficients != want.MatrixCoefficients {
			t.Errorf("%s: colour %+v, source %+v", rungs[i].Name, got, want)
		}
	}
}

func spsVUI(t *testing.T, b []byte) *h264.SPS_VUI {
	t.Helper()
	var s h264.SPS
	if len(b) == 0 || s.Unmarshal(b) != nil {
		t.Fatalf("no parsable SPS")
	}
	if s.VUI == nil || !s.VUI.ColourDescriptionPresentFlag {
		return &h264.SPS_VUI{VideoFullRangeFlag: s.VUI != nil && s.VUI.VideoFullRangeFlag}
	}
	return s.VUI
}

// TestTranscoderKeepsCaptions: caption SEI in the source reaches every
// encoded rung, every cc triplet exactly once and in presentation order,
// also on rungs at half the source's frame rate (whose dropped frames'
// captions ride on the frames kept).
func TestTranscoderKeepsCaptions(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 1280, Height: 720, FPS: 60, Seconds: 3})
	// Number the pictures in presentation order (the encode has B-frames)
	// and give each one cc triplet carrying its number.
	var video []*media.Frame
	for _, f := range es.Frames {
		if f.Track == 0 {
			video = append(video, f)
		}
	}
	byPTS := slices.Clone(video)
	slices.SortFunc(byPTS, func(a, b *media.Frame) int { return cmp.Compare(a.PTS, b.PTS) })
	for k, f := range byPTS {
		f.NALUs = media.WithCaptions(f.NALUs, media.CaptionSEI([]media.CCTriplet{{0xfc, byte(k >> 8), byte(k)}}))
	}
	rungs, out, _ := transcodeAll(t, es, TypeStandard, Input{Width: 1280, Height: 720, FPS: 60})
	halved := 0
	for i, c := range out {
		if rungs[i].AudioOnly {
			continue
		}
		if rungs[i].FPS < 60 {
			halved++
		}
		var seq []int
		for _, f := range c.frames {
			if f.Track != 0 {
				continue
			}
			for _, cc := range media.CaptionsInAccessUnit(f.NALUs) {
				seq = append(seq, int(cc[1])<<8|int(cc[2]))
			}
		}
		if len(seq) < len(video)*9/10 {
			t.Errorf("%s: %d of %d captions delivered", rungs[i].Name, len(seq), len(video))
			continue
		}
		for j := 1; j < len(seq); j++ {
			if seq[j] != seq[j-1]+1 {
				t.Errorf("%s: caption %d follows %d (lost, doubled or out of order)", rungs[i].Name, seq[j], seq[j-1])
				break
			}
		}
	}
	if halved == 0 {
		t.Fatalf("no rung at a lower frame rate than the 60 fps source: %+v", rungs)
	}
}

// TestTranscoderCarriesTimedMetadata: ID3 frames of the source reach every
// rung (audio-only included) once, with the source's timestamp, in order
// with the rung's media.
func TestTranscoderCarriesTimedMetadata(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 640, Height: 360, FPS: 30, Seconds: 3})
	metaID := len(es.Tracks)
	es.Tracks = append(es.Tracks, media.Track{ID: metaID, Kind: media.Data, Codec: media.CodecID3})
	var frames []*media.Frame
	var want []time.Duration
	for _, f := range es.Frames {
		frames = append(frames, f)
		if f.Track == 0 && len(want) < 4 && f.DTS >= time.Duration(len(want)+1)*500*time.Millisecond {
			want = append(want, f.PTS)
			frames = append(frames, &media.Frame{Track: metaID, PTS: f.PTS, DTS: f.PTS, Wall: f.Wall, Key: true,
				NALUs: [][]byte{media.TextID3(media.OwnerAPI, "meta")}})
		}
	}
	es.Frames = frames
	rungs, outs, _ := transcodeAll(t, es, TypeAdvancedSD, Input{Width: 640, Height: 360, FPS: 30})
	for i, c := range outs {
		var got []time.Duration
		var lastMedia time.Duration = -1
		for _, f := range c.frames {
			isMeta := len(f.NALUs) == 1 && bytes.HasPrefix(f.NALUs[0], []byte("ID3"))
			if !isMeta {
				lastMedia = f.PTS
				continue
			}
			got = append(got, f.PTS)
			if lastMedia > f.PTS+100*time.Millisecond {
				t.Errorf("%s: metadata at %v came after media at %v", rungs[i].Name, f.PTS, lastMedia)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: metadata at %v, want %v", rungs[i].Name, got, want)
		}
	}
}
