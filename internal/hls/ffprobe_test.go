package hls

import (
	"bytes"
	"encoding/json"
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

// needFFmpeg returns the path of tool, failing the test when it is missing
// unless OPENIVS_NO_FFMPEG=1 says this machine has none.
func needFFmpeg(t testing.TB, tool string) string {
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

// encodedStream is a real ffmpeg encode demuxed into hub frames.
type encodedStream struct {
	tracks      []media.Track
	frames      []*media.Frame
	videoFrames int
	audioFrames int
}

// encode makes seconds of H.264 (with B-frames, 1 s GOP) + AAC with
// ffmpeg and demuxes it with mediacommon's MPEG-TS reader.
func encode(t testing.TB, seconds int) encodedStream {
	t.Helper()
	ffmpeg := needFFmpeg(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "in.ts")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "96k", "-f", "mpegts", out)
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
	var es encodedStream
	video := media.Track{ID: 0, Kind: media.Video, Codec: media.CodecH264}
	var audio media.Track
	var firstDTS int64 = -1
	rel := func(ts int64) time.Duration {
		return time.Duration(ts-firstDTS) * time.Second / 90000
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
				es.frames = append(es.frames, &media.Frame{Track: 0, PTS: rel(pts), DTS: rel(dts), Key: h264.IsRandomAccess(au), NALUs: au})
				es.videoFrames++
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
					es.frames = append(es.frames, &media.Frame{Track: 1, PTS: rel(ts), DTS: rel(ts), Key: true, NALUs: [][]byte{au}})
					es.audioFrames++
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
	sort.SliceStable(es.frames, func(i, j int) bool { return es.frames[i].DTS < es.frames[j].DTS })
	wall := time.Now()
	for _, f := range es.frames {
		f.Wall = wall.Add(f.DTS)
	}
	es.tracks = []media.Track{video, audio}
	return es
}

type probeResult struct {
	Streams []struct {
		CodecName     string `json:"codec_name"`
		CodecType     string `json:"codec_type"`
		NbReadPackets string `json:"nb_read_packets"`
		NbReadFrames  string `json:"nb_read_frames"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func TestFFprobeReadsPackagedStream(t *testing.T) {
	ffprobe := needFFmpeg(t, "ffprobe")
	const seconds = 6
	es := encode(t, seconds)
	for _, container := range []string{ContainerTS, ContainerFMP4} {
		t.Run(container, func(t *testing.T) {
			hub, p, done := started(t, Options{Container: container, LowLatency: true}, es.tracks)
			for _, f := range es.frames {
				hub.Write(f)
			}
			hub.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			srv := serve(t, p)
			cmd := exec.Command(ffprobe, "-v", "error", "-count_packets", "-count_frames",
				"-show_entries", "stream=codec_name,codec_type,nb_read_packets,nb_read_frames,width,height:format=duration",
				"-of", "json", srv.URL+"/playlist.m3u8")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, stderr.Bytes())
			}
			// -v error prints demux and decode errors; a clean stream has none.
			if stderr.Len() > 0 {
				t.Errorf("ffprobe reported errors:\n%s", stderr.Bytes())
			}
			var pr probeResult
			if err := json.Unmarshal(out, &pr); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			t.Logf("ffprobe: %s", out)
			seen := map[string]bool{}
			for _, s := range pr.Streams {
				seen[s.CodecName] = true
				n, _ := strconv.Atoi(s.NbReadPackets)
				switch s.CodecName {
				case "h264":
					frames, _ := strconv.Atoi(s.NbReadFrames)
					if n != es.videoFrames || frames != es.videoFrames {
						t.Errorf("h264: %d packets, %d decoded frames; fed %d", n, frames, es.videoFrames)
					}
					if s.Width != 640 || s.Height != 360 {
						t.Errorf("h264 %dx%d", s.Width, s.Height)
					}
				case "aac":
					if n != es.audioFrames {
						t.Errorf("aac: %d packets, fed %d", n, es.audioFrames)
					}
				}
			}
			if !seen["h264"] || !seen["aac"] {
				t.Errorf("streams %v, want h264 and aac", seen)
			}
			d, _ := strconv.ParseFloat(pr.Format.Duration, 64)
			if d < seconds-0.3 || d > seconds+0.3 {
				t.Errorf("duration %.3f s, fed %d s", d, seconds)
			}
		})
	}
}
