package hls

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"

	"github.com/openivs/openivs/internal/testutil/mediatest"
)

func needFFmpeg(t testing.TB, tool string) string {
	t.Helper()
	return mediatest.NeedFFmpeg(t, tool)
}

// encode makes seconds of 640x360 30 fps H.264 (B-frames, 1 s GOP) + AAC.
func encode(t testing.TB, seconds int) mediatest.Encoded {
	t.Helper()
	return mediatest.Encode(t, mediatest.EncodeOptions{Seconds: seconds})
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
			hub, p, done := started(t, Options{Container: container, LowLatency: true}, es.Tracks)
			for _, f := range es.Frames {
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
					if n != es.VideoFrames || frames != es.VideoFrames {
						t.Errorf("h264: %d packets, %d decoded frames; fed %d", n, frames, es.VideoFrames)
					}
					if s.Width != 640 || s.Height != 360 {
						t.Errorf("h264 %dx%d", s.Width, s.Height)
					}
				case "aac":
					if n != es.AudioFrames {
						t.Errorf("aac: %d packets, fed %d", n, es.AudioFrames)
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
