package hls

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/media"
)

// BenchmarkPackager measures frames per second through hub → packager
// (cutting, muxing, publishing) for each container, LL-HLS on. Each
// iteration packages 10 s of 30 fps video with AAC (about 770 frames).
func BenchmarkPackager(b *testing.B) {
	frames := synth{seconds: 10, gop: 30}.frames(time.Now())
	tracks := testTracks(b)
	for _, container := range []string{ContainerTS, ContainerFMP4} {
		b.Run(container, func(b *testing.B) {
			b.ReportAllocs()
			var bytes int64
			for _, f := range frames {
				bytes += int64(f.Size())
			}
			b.SetBytes(bytes)
			for b.Loop() {
				hub := media.NewHub(tracks, media.HubOptions{MaxBufferedFrames: 1 << 20})
				p := NewPackager(hub, Options{Container: container, LowLatency: true})
				done := make(chan error, 1)
				sub := make(chan struct{})
				go func() {
					close(sub)
					done <- p.Run(context.Background())
				}()
				<-sub
				for hub.Stats().Subscribers == 0 {
					time.Sleep(10 * time.Microsecond)
				}
				for _, f := range frames {
					hub.Write(f)
				}
				hub.Close()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(frames))*float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkServePlaylist measures one viewer's playlist reload (LL, gzip)
// against a live window: the per-request cost behind the delivery target.
func BenchmarkServePlaylist(b *testing.B) {
	p := packageAll(b, Options{LowLatency: true}, synth{seconds: 10, gop: 30}.frames(time.Now()))
	req := httptest.NewRequest(http.MethodGet, "/playlist.m3u8?_HLS_msn=1&_HLS_part=0", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeMedia(w, req, "playlist.m3u8")
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkServePart measures serving one part.
func BenchmarkServePart(b *testing.B) {
	p := packageAll(b, Options{LowLatency: true}, synth{seconds: 10, gop: 30}.frames(time.Now()))
	req := httptest.NewRequest(http.MethodGet, "/part9.1.ts", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeMedia(w, req, "part9.1.ts")
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
