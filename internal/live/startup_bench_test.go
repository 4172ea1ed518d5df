package live

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/testutil/mediatest"
	"github.com/openivs/openivs/internal/transcode"
)

// BenchmarkStreamStart measures stream start as IVS reports it: the first
// keyframe reaching the live session → every rendition playable (Stream
// Start, when playback begins answering). A real 1080p30 encode (1 s GOP,
// AAC) is written in real time, as an encoder sends it, on a LOW-latency
// channel: BASIC packages the source alone; STANDARD also runs ffmpeg for
// its 720p30/480p30/360p30/160p30 rungs. ms/start is that delay.
func BenchmarkStreamStart(b *testing.B) {
	es := mediatest.Encode(b, mediatest.EncodeOptions{Width: 1920, Height: 1080, FPS: 30, Seconds: 6})
	for _, typ := range []string{"BASIC", "STANDARD"} {
		b.Run(typ, func(b *testing.B) {
			f := newFixture(b, Config{Transcode: &TranscodeConfig{Capacity: transcode.NewCapacity(runtime.NumCPU())}}, ivs.Quotas{})
			ctx := context.Background()
			var total time.Duration
			for b.Loop() {
				arn, key := f.channel(b, typ, false)
				adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
				if err != nil {
					b.Fatal(err)
				}
				st, err := adm.Start(es.Tracks, "bench")
				if err != nil {
					b.Fatal(err)
				}
				stop := make(chan struct{})
				go func() {
					first := time.Now()
					for _, fr := range es.Frames {
						select {
						case <-stop:
							return
						case <-time.After(time.Until(first.Add(fr.DTS))):
						}
						g := *fr
						g.Wall = time.Now()
						if st.WriteFrame(&g) != nil {
							return
						}
					}
				}()
				began := time.Now()
				for {
					if _, ok := f.mgr.Playback(arn); ok {
						break
					}
					if time.Since(began) > 5*time.Second {
						b.Fatal("no playback 5 s into the stream")
					}
					time.Sleep(2 * time.Millisecond)
				}
				total += time.Since(began)
				close(stop)
				st.Close(nil)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
		})
	}
}
