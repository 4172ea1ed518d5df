package mediatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/openivs/openivs/internal/media"
)

// NeedFFmpeg returns the path of tool (ffmpeg, ffprobe), failing the test
// when it is missing unless OPENIVS_NO_FFMPEG=1 says this machine has none.
func NeedFFmpeg(t testing.TB, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("OPENIVS_NO_FFMPEG") == "1" {
		t.Skipf("SKIPPING: %s not installed and OPENIVS_NO_FFMPEG=1", tool)
	}
	t.Fatalf("%s not found (install the Debian ffmpeg package, or set OPENIVS_NO_FFMPEG=1 to skip): %v", tool, err)
	return ""
}

// EncodeOptions describe the stream Encode makes. Zero values give 640x360
// at 30 fps with a 1 s GOP.
type EncodeOptions struct {
	Width, Height int
	FPS           int
	Seconds       int
	// GOP is the keyframe interval in frames (default: one second).
	GOP int
	// VideoArgs are extra ffmpeg output options for the video (colour
	// tags, pixel format, ...), placed after the defaults so they win.
	VideoArgs []string
}

// Encoded is a real ffmpeg encode demuxed into hub frames: video track 0,
// AAC track 1, frames in DTS order with Wall set as if ingest received
// them in real time from now.
type Encoded struct {
	Tracks      []media.Track
	Frames      []*media.Frame
	VideoFrames int
	AudioFrames int
}

// Encode makes H.264 (with B-frames) + AAC 48 kHz stereo with ffmpeg and
// demuxes it with mediacommon's MPEG-TS reader. Timestamps are whole
// milliseconds, as RTMP ingest gives them.
func Encode(t testing.TB, o EncodeOptions) Encoded {
	t.Helper()
	if o.Width == 0 {
		o.Width, o.Height = 640, 360
	}
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.GOP == 0 {
		o.GOP = o.FPS
	}
	ffmpeg := NeedFFmpeg(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "in.ts")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size="+strconv.Itoa(o.Width)+"x"+strconv.Itoa(o.Height)+":rate="+strconv.Itoa(o.FPS),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(o.Seconds), "-ac", "2",
		"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", strconv.Itoa(o.GOP), "-keyint_min", strconv.Itoa(o.GOP),
		"-sc_threshold", "0", "-pix_fmt", "yuv420p")
	cmd.Args = append(cmd.Args, o.VideoArgs...)
	cmd.Args = append(cmd.Args, "-c:a", "aac", "-b:a", "96k", "-f", "mpegts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var es Encoded
	video := media.Track{ID: 0, Kind: media.Video, Codec: media.CodecH264}
	var audio media.Track
	var firstDTS int64 = -1
	rel := func(ts int64) time.Duration {
		// Whole milliseconds, like RTMP timestamps.
		return time.Duration((ts-firstDTS)/90) * time.Millisecond
	}
	for _, tr := range r.Tracks() {
		switch c := tr.Codec.(type) {
		case *tscodecs.H264:
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				if firstDTS < 0 {
					firstDTS = dts
				}
				for _, n := range au {
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						if video.SPS == nil {
							video.SetH264SPS(n)
						}
					case h264.NALUTypePPS:
						if video.PPS == nil {
							video.PPS = append([]byte(nil), n...)
						}
					}
				}
				es.Frames = append(es.Frames, &media.Frame{Track: 0, PTS: rel(pts), DTS: rel(dts), Key: h264.IsRandomAccess(au), NALUs: au})
				es.VideoFrames++
				return nil
			})
		case *tscodecs.MPEG4Audio:
			audio = media.AACTrack(c.Config)
			audio.ID = 1
			sr := int64(c.Config.SampleRate)
			r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
				if firstDTS < 0 {
					return nil // keep audio from starting before video
				}
				for i, au := range aus {
					ts := pts + int64(i)*mpeg4audio.SamplesPerAccessUnit*90000/sr
					es.Frames = append(es.Frames, &media.Frame{Track: 1, PTS: rel(ts), DTS: rel(ts), Key: true, NALUs: [][]byte{au}})
					es.AudioFrames++
				}
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			break
		}
	}
	if video.SPS == nil || audio.AudioConfig == nil {
		t.Fatal("encode produced no H.264 SPS or AAC config")
	}
	sort.SliceStable(es.Frames, func(i, j int) bool { return es.Frames[i].DTS < es.Frames[j].DTS })
	wall := time.Now()
	for _, f := range es.Frames {
		f.Wall = wall.Add(f.DTS)
	}
	es.Tracks = []media.Track{video, audio}
	return es
}
