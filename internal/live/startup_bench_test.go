package live

import (
	"context"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
)

// BenchmarkStreamStart measures stream start as the issue defines it: the
// first keyframe reaching the live session → the first playable media
// playlist (the packager's Ready, which is also when Stream Start is
// emitted). Frames are written in real time at 30 fps, as an encoder sends
// them, on a LOW-latency BASIC-sized stream; ns/op is that delay.
func BenchmarkStreamStart(b *testing.B) {
	f := newFixture(b, Config{}, ivs.Quotas{})
	ctx := context.Background()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		arn, key := f.channel(b, "BASIC", false)
		adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
		if err != nil {
			b.Fatal(err)
		}
		st, err := adm.Start(testTracks, "bench")
		if err != nil {
			b.Fatal(err)
		}
		ready := make(chan time.Duration, 1)
		stop := make(chan struct{})
		go func() {
			var first time.Time
			for n := 0; ; n++ {
				now := time.Now()
				if n == 0 {
					first = now
				}
				ts := time.Duration(n) * time.Second / 30
				nalus := [][]byte{append([]byte{0x41}, make([]byte, 4000)...)}
				if n%30 == 0 {
					nalus = [][]byte{testSPS, testPPS, append([]byte{0x65}, make([]byte, 30000)...)}
				}
				if err := st.WriteFrame(&media.Frame{Track: 0, DTS: ts, PTS: ts, Key: n%30 == 0, NALUs: nalus, Wall: now}); err != nil {
					return
				}
				if n == 0 {
					go func() {
						p, _, ok := f.mgr.Playback(arn)
						if !ok {
							b.Error("no playback for a live stream")
							ready <- 0
							return
						}
						<-p.Ready()
						ready <- time.Since(first)
					}()
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Until(first.Add(time.Duration(n+1) * time.Second / 30))):
				}
			}
		}()
		total += <-ready
		close(stop)
		st.Close(nil)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
}
