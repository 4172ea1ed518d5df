package live

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
)

// TestIngestMeter: one period of 30 fps video at 1.5 Mbps with a keyframe
// every 2 s, 128 kbps audio and in-band metadata gives IVS's figures per
// track; no sample is due before the period ends; the stream's end closes
// a partial period only if it is long enough to make a rate.
func TestIngestMeter(t *testing.T) {
	var m ingestMeter
	video := func(i int) *media.Frame {
		dts := time.Duration(i) * time.Second / 30
		return &media.Frame{Track: 0, DTS: dts, PTS: dts, Key: i%60 == 0, NALUs: [][]byte{make([]byte, 6250)}}
	}
	audio := &media.Frame{Track: 1, NALUs: [][]byte{make([]byte, 320)}} // 50 a second: 128 kbps
	frame := 0
	period := func() {
		for range 30 {
			m.frame(testTracks, video(frame))
			frame++
		}
		for range 50 {
			m.frame(testTracks, audio)
		}
	}
	period()
	t0 := m.periodStart
	if _, ok := m.sample(t0.Add(800*time.Millisecond), false); ok {
		t.Fatal("a sample 0.8 s into the period")
	}
	m.metadata(125) // 1 kbps
	smp, ok := m.sample(t0.Add(time.Second), false)
	if !ok {
		t.Fatal("no sample after a second")
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	if len(smp.Video) != 1 || len(smp.Audio) != 1 || smp.Video[0].Track != "video" || smp.Audio[0].Track != "audio" {
		t.Fatalf("tracks: video %+v, audio %+v", smp.Video, smp.Audio)
	}
	near("video bitrate", smp.Video[0].Bitrate, 1_500_000)
	near("audio bitrate", smp.Audio[0].Bitrate, 128_000)
	near("bitrate", smp.Bitrate, 1_500_000+128_000+1_000)
	near("framerate", smp.Video[0].Framerate, 30)
	if smp.Video[0].KeyframeInterval != 0 {
		t.Errorf("keyframe interval %v after one keyframe, want 0 (unknown)", smp.Video[0].KeyframeInterval)
	}
	if !smp.Start.Equal(t0) || smp.Duration != time.Second || smp.Input != time.Second {
		t.Errorf("period %v + %v, input %v; want %v + 1 s, input 1 s", smp.Start, smp.Duration, smp.Input, t0)
	}

	// Two more seconds: the second keyframe (frame 60) gives the interval.
	period()
	period()
	if smp, _ = m.sample(t0.Add(3*time.Second), false); smp.Video[0].KeyframeInterval != 2*time.Second {
		t.Errorf("keyframe interval %v, want 2 s", smp.Video[0].KeyframeInterval)
	}
	near("framerate over 2 s", smp.Video[0].Framerate, 30)

	// A starving second: rates 0, no input time, the interval kept.
	if smp, _ = m.sample(t0.Add(4*time.Second), false); smp.Bitrate != 0 || smp.Input != 0 || smp.Video[0].KeyframeInterval != 2*time.Second {
		t.Errorf("starving second: %+v", smp)
	}
	// The end: 0.3 s is too short for a sample, 0.6 s is one.
	if _, ok := m.sample(t0.Add(4300*time.Millisecond), true); ok {
		t.Error("a final sample of 0.3 s")
	}
	m.frame(testTracks, video(frame))
	if smp, ok = m.sample(t0.Add(4600*time.Millisecond), true); !ok || smp.Input != 600*time.Millisecond {
		t.Errorf("final 0.6 s period: %+v, %v", smp, ok)
	}
}

func TestTrackLabels(t *testing.T) {
	tracks := []media.Track{{Kind: media.Video}, {Kind: media.Audio}, {Kind: media.Video}, {Kind: media.Audio}, {Kind: media.Video}}
	if got, want := trackLabels(tracks), []string{"video", "audio", "video2", "audio2", "video3"}; !slices.Equal(got, want) {
		t.Errorf("trackLabels = %v, want %v", got, want)
	}
}

// ingestLog is an IngestReporter that keeps what it is told.
type ingestLog struct {
	mu      sync.Mutex
	samples []IngestSample
	ended   []string // stream ids
	late    bool     // a sample after its stream's end
}

func (l *ingestLog) ObserveIngest(s IngestSample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Contains(l.ended, s.StreamID) {
		l.late = true
	}
	l.samples = append(l.samples, s)
}

func (l *ingestLog) IngestEnded(channelARN, streamID string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = append(l.ended, streamID)
}

func (l *ingestLog) snapshot() ([]IngestSample, []string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples), slices.Clone(l.ended), l.late
}

// TestIngestReported: a live stream's monitor reports a sample about
// every second with the stream's identity and what it received, the
// stream counts as HEALTHY, and its end follows its last sample.
func TestIngestReported(t *testing.T) {
	log := &ingestLog{}
	f := newFixture(t, Config{Ingest: log}, ivs.Quotas{})
	arn, key := f.channel(t, "BASIC", false)
	stream := f.goLive(t, key)
	start := time.Now()
	for i := 0; time.Since(start) < 2500*time.Millisecond; i++ {
		ts := time.Duration(i) * time.Second / 30
		nalu := make([]byte, 1000)
		nalu[0] = 0x41
		if i%30 == 0 {
			nalu[0] = 0x65
		}
		if err := stream.WriteFrame(&media.Frame{Track: 0, PTS: ts, DTS: ts, Wall: time.Now(), Key: i%30 == 0, NALUs: [][]byte{nalu}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(ts + time.Second/30)))
	}
	if h := f.mgr.StreamHealth(); h["HEALTHY"] != 1 || len(h) != 1 {
		t.Errorf("StreamHealth while live = %v, want HEALTHY: 1", h)
	}
	samples, _, _ := log.snapshot()
	if len(samples) < 1 {
		t.Fatal("no sample after 2.5 s of stream")
	}
	s := samples[len(samples)-1]
	if s.ChannelARN != arn || s.StreamID == "" || s.StreamStart.IsZero() || len(s.Video) != 1 || len(s.Audio) != 1 {
		t.Fatalf("sample %+v", s)
	}
	if fps := s.Video[0].Framerate; fps < 25 || fps > 35 {
		t.Errorf("framerate %.1f, want ~30", fps)
	}
	if br := s.Video[0].Bitrate; br < 200_000 || br > 280_000 {
		t.Errorf("video bitrate %.0f, want ~240000", br)
	}
	if d := s.Duration; d < 900*time.Millisecond || d > 1300*time.Millisecond {
		t.Errorf("period %v, want ~1 s", d)
	}
	stream.Close(nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ended, late := log.snapshot()
		if len(ended) == 1 && ended[0] == s.StreamID {
			if late {
				t.Error("a sample after the stream's end")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ended %v 5 s after the stream closed", ended)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := f.mgr.StreamHealth(); len(h) != 0 {
		t.Errorf("StreamHealth after the end = %v, want none", h)
	}
}
