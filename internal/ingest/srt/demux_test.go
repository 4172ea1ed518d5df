package srt

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/media"
)

// recordSink is a frameSink that keeps everything and checks the contract
// demux promises its sink.
type recordSink struct {
	t      testing.TB
	tracks []media.Track
	frames []media.Frame
	starts int
}

func (s *recordSink) start(tracks []media.Track) error {
	s.starts++
	s.tracks = tracks
	return nil
}

func (s *recordSink) frame(f *media.Frame) error {
	if s.starts != 1 {
		s.t.Fatalf("frame before start (starts=%d)", s.starts)
	}
	if f.Track < 0 || f.Track >= len(s.tracks) {
		s.t.Fatalf("frame on track %d of %d", f.Track, len(s.tracks))
	}
	if f.DTS < 0 || f.PTS < f.DTS {
		s.t.Fatalf("frame times PTS %v DTS %v", f.PTS, f.DTS)
	}
	s.frames = append(s.frames, *f)
	return nil
}

var fixedNow = func() time.Time { return time.Unix(1700000000, 0) }

// chunkReader hands out at most n bytes per Read, like SRT payloads.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDemuxFiles(t *testing.T) {
	cases := []struct {
		file       string
		wantCodecs []string
		minFrames  int
	}{
		{"h264_aac.ts", []string{media.CodecH264, media.CodecAAC}, 30},
		{"h264_bframes.ts", []string{media.CodecH264}, 5},
		// Refused codecs are still described, and start at once.
		{"hevc_mp3.ts", []string{media.CodecH265, media.CodecMP3}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			sink := &recordSink{t: t}
			err := demux(&chunkReader{b: readTestdata(t, tc.file), n: 1316}, sink, fixedNow)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("demux = %v, want io.EOF at the end", err)
			}
			if len(sink.tracks) != len(tc.wantCodecs) {
				t.Fatalf("tracks %+v", sink.tracks)
			}
			for i, c := range tc.wantCodecs {
				if sink.tracks[i].Codec != c || sink.tracks[i].ID != i {
					t.Errorf("track %d = %s (ID %d), want %s", i, sink.tracks[i].Codec, sink.tracks[i].ID, c)
				}
			}
			if len(sink.frames) < tc.minFrames {
				t.Errorf("%d frames, want at least %d", len(sink.frames), tc.minFrames)
			}
			if tc.minFrames > 0 {
				if v := sink.tracks[0]; v.Width != 160 || v.Height != 90 {
					t.Errorf("video %dx%d, want 160x90", v.Width, v.Height)
				}
				if f := sink.frames[0]; !f.Key || f.DTS != 0 {
					t.Errorf("first frame key %v DTS %v", f.Key, f.DTS)
				}
			}
		})
	}
}

func TestDemuxBFramesHavePTSAfterDTS(t *testing.T) {
	sink := &recordSink{t: t}
	_ = demux(&chunkReader{b: readTestdata(t, "h264_bframes.ts"), n: 188 * 7}, sink, fixedNow)
	reordered := false
	var last time.Duration = -1
	for _, f := range sink.frames {
		if f.DTS <= last {
			t.Errorf("DTS %v not after %v", f.DTS, last)
		}
		last = f.DTS
		reordered = reordered || f.PTS > f.DTS
	}
	if !reordered {
		t.Error("no frame with PTS after DTS in a B-frame stream")
	}
}

func TestDemuxRejectsNonTS(t *testing.T) {
	noise := make([]byte, 64*1024)
	for i := range noise {
		noise[i] = byte(i*31 + i>>7)
	}
	err := demux(&chunkReader{b: noise, n: 1316}, &recordSink{t: t}, fixedNow)
	if !errors.Is(err, errNotTS) {
		t.Fatalf("demux(noise) = %v, want errNotTS", err)
	}
}

func TestDemuxTruncated(t *testing.T) {
	ts := readTestdata(t, "h264_aac.ts")
	for _, n := range []int{0, 1, 187, 188, 376, 1000} {
		err := demux(bytes.NewReader(ts[:n]), &recordSink{t: t}, fixedNow)
		if err == nil {
			t.Errorf("demux of %d bytes: nil error", n)
		}
	}
}

func TestTicksToDuration(t *testing.T) {
	if got := ticksToDuration(90000); got != time.Second {
		t.Errorf("90000 ticks = %v", got)
	}
	if got := ticksToDuration(3003); got != 33366666*time.Nanosecond {
		t.Errorf("3003 ticks = %v", got)
	}
	// 30 days of 90 kHz must not overflow.
	if got := ticksToDuration(30 * 24 * 3600 * 90000); got != 30*24*time.Hour {
		t.Errorf("30 days = %v", got)
	}
}

// FuzzDemux feeds arbitrary bytes through the TS-to-frames path: it must
// end with an error (never hang or panic) and never hand on frames that
// break the sink contract.
func FuzzDemux(f *testing.F) {
	for _, name := range []string{"h264_aac.ts", "h264_bframes.ts", "hevc_mp3.ts"} {
		b := readTestdata(f, name)
		f.Add(b[:min(len(b), 188*40)], uint16(1316))
		f.Add(b[:min(len(b), 188*12)], uint16(188))
	}
	f.Add([]byte{0x47, 0x40, 0x00, 0x10}, uint16(7))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		sink := &recordSink{t: t}
		err := demux(&chunkReader{b: data, n: int(chunk%2048) + 1}, sink, fixedNow)
		if err == nil {
			t.Fatal("demux returned nil at end of input")
		}
	})
}

// TestDemuxStartsAtKeyframe: a feed joined mid-GOP is held back until the
// next IDR, which then becomes time zero.
func TestDemuxStartsAtKeyframe(t *testing.T) {
	ts := readTestdata(t, "h264_bframes.ts") // 160x90, GOP of 5
	full := &recordSink{t: t}
	_ = demux(bytes.NewReader(ts), full, fixedNow)

	// Drop the TS packets of the first video PES (the opening IDR).
	var cut []byte
	starts := 0
	for off := 0; off+tsPacketSize <= len(ts); off += tsPacketSize {
		p := ts[off : off+tsPacketSize]
		pid := int(p[1]&0x1f)<<8 | int(p[2])
		if pid == 0x100 {
			if p[1]&0x40 != 0 {
				starts++
			}
			if starts <= 1 {
				continue
			}
		}
		cut = append(cut, p...)
	}
	late := &recordSink{t: t}
	_ = demux(bytes.NewReader(cut), late, fixedNow)

	if len(late.frames) == 0 {
		t.Fatal("no frames after joining mid-GOP")
	}
	if f := late.frames[0]; !f.Key || f.DTS != 0 || f.PTS < 0 {
		t.Errorf("first frame key %v DTS %v", f.Key, f.DTS)
	}
	if want := len(full.frames) - 5; len(late.frames) != want {
		t.Errorf("%d frames after joining mid-GOP, want %d (the first GOP dropped)", len(late.frames), want)
	}
	if late.tracks[0].Width != 160 {
		t.Errorf("track %+v", late.tracks[0])
	}
}

// TestUnwrapAcrossClockWrap: the 33-bit TS clock wraps every 26.5 h; the
// timeline must run on.
func TestUnwrapAcrossClockWrap(t *testing.T) {
	var d demuxer
	dts0, _ := d.unwrap(0x1FFFFFFFF-1000, 0x1FFFFFFFF-1000)
	dts1, pts1 := d.unwrap(2000, 2000+3003)
	if dts1-dts0 != 3001 || pts1-dts1 != 3003 {
		t.Errorf("across the wrap: DTS step %d, PTS-DTS %d; want 3001, 3003", dts1-dts0, pts1-dts1)
	}
	// PTS wrapped, DTS not yet.
	dts2, pts2 := d.unwrap(0x1FFFFFFFF-10, 100)
	if pts2-dts2 != 111 {
		t.Errorf("PTS-DTS across a PTS-only wrap = %d, want 111 (dts %d)", pts2-dts2, dts2)
	}
}
