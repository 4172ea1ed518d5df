package hls

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/openivs/openivs/internal/media"
)

// TestFFmpegReadsLiveStream has ffmpeg read the playlist while it is still
// live (no ENDLIST): frames are fed at real-time pace, the way ingest does.
func TestFFmpegReadsLiveStream(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	ffmpeg := needFFmpeg(t, "ffmpeg")
	es := encode(t, 10)
	for _, container := range []string{ContainerTS, ContainerFMP4} {
		t.Run(container, func(t *testing.T) {
			t.Parallel()
			hub, p, done := started(t, Options{Container: container, LowLatency: true}, es.Tracks)
			srv := serve(t, p)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				start := time.Now()
				for _, f := range es.Frames {
					if d := time.Until(start.Add(f.DTS)); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
					g := *f
					g.Wall = time.Now()
					hub.Write(&g)
				}
				hub.Close()
			}()
			select {
			case <-p.Ready():
			case <-time.After(3 * time.Second):
				t.Fatal("not ready 3 s into a 1 s GOP stream")
			}
			// ffmpeg needs a few segments before the live edge; give it them.
			time.Sleep(3 * time.Second)
			cmd := exec.Command(ffmpeg, "-hide_banner", "-i", srv.URL+"/playlist.m3u8",
				"-t", "2", "-map", "0", "-c", "copy", "-f", "null", "-")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, stderr.Bytes())
			}
			log := stderr.String()
			if !strings.Contains(log, "Video: h264") || !strings.Contains(log, "Audio: aac") {
				t.Errorf("ffmpeg did not find h264 and aac:\n%s", log)
			}
			p.mu.Lock()
			ended := p.ended
			p.mu.Unlock()
			if ended {
				t.Error("stream ended before ffmpeg finished: it did not read a live playlist")
			}
			cancel()
			hub.Close()
			<-done
		})
	}
}

func TestAudioOnly(t *testing.T) {
	a := media.AACTrack(mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelConfig: 2})
	hub, p, done := started(t, Options{LowLatency: true}, []media.Track{a})
	base := time.Now()
	dur := time.Duration(1024) * time.Second / 48000
	n := 0
	for at := time.Duration(0); at < 5*time.Second; at += dur {
		hub.Write(&media.Frame{Track: 0, PTS: at, DTS: at, Wall: base.Add(at), Key: true, NALUs: [][]byte{make([]byte, 200)}})
		n++
	}
	hub.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	srv := serve(t, p)
	_, body := get(t, srv.URL+"/playlist.m3u8")
	m := parseMedia(t, body)
	var total time.Duration
	for _, s := range m.Segments {
		total += s.Duration
		if s.Duration > time.Second+50*time.Millisecond {
			t.Errorf("audio segment of %v", s.Duration)
		}
	}
	if want := time.Duration(n) * dur; total < want-50*time.Millisecond || total > want+50*time.Millisecond {
		t.Errorf("total %v, fed %v", total, want)
	}
	if info := p.Info(); info.Codecs != "mp4a.40.2" || info.Width != 0 {
		t.Errorf("%+v", info)
	}
}
