package record

import (
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/hls"
)

// BenchmarkRecordStandardLadder measures the CPU the recorder spends on a
// STANDARD stream: the five renditions of a 1080p30 ladder at IVS's rates
// (source 6 Mbps, 720p 3.5, 480p 1.5, 360p 0.7, 160p 0.3 Mbps, 2 s
// GOPs), spooled, indexed and uploaded to the local-directory store with
// their playlists, thumbnails off (ffmpeg's own cost is measured in
// BenchmarkThumbnailJPEG). It reports CPU milliseconds per second of
// media: divide by 10 for the share of one core it takes.
func BenchmarkRecordStandardLadder(b *testing.B) {
	kbps := []int{6000, 3500, 1500, 700, 300}
	names := []string{"1080p30", "720p30", "480p30", "360p30", "160p30"}
	const gop = 2 * time.Second
	segsPerRun := 60 // two minutes of media per iteration
	var rends []Rendition
	for _, n := range names {
		rends = append(rends, Rendition{Path: n})
	}
	data := make([][]byte, len(kbps))
	for i, k := range kbps {
		data[i] = make([]byte, k*1000/8*int(gop/time.Second))
	}
	var cpu time.Duration
	var media time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		rec := Start(Config{Store: blob.NewLocal(b.TempDir()), SpoolDir: filepath.Join(b.TempDir(), "spool"), Bucket: "bench",
			Account: "123456789012", Region: "us-west-2", ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/AbCdEfGh1234",
			ChannelID: "AbCdEfGh1234", StreamID: "st-bench", Container: "TS", Logger: slog.New(slog.DiscardHandler)}, rends)
		before := cpuTime()
		base := time.Now()
		for s := 0; s < segsPerRun; s++ {
			for i := range rends {
				rec.Track(i).Segment(hls.Segment{Seq: uint64(s), Data: data[i], Duration: gop,
					ProgramDateTime: base.Add(time.Duration(s) * gop)})
			}
		}
		for i := range rends {
			rec.Track(i).Done()
		}
		<-rec.Done()
		cpu += cpuTime() - before
		media += time.Duration(segsPerRun) * gop
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/media.Seconds(), "cpu-ms/media-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
