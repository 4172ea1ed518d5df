package transcode

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// FuzzReadOutput: whatever ffmpeg's pipe carries, the rung reader returns
// (an error or nil) without panicking, and every frame it emits has data.
func FuzzReadOutput(f *testing.F) {
	f.Add(seedTS(f))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0x47}, 188*3))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readOutput(bytes.NewReader(b), func(of outputFrame) {
			if len(of.nalus) == 0 {
				t.Fatal("a frame without data")
			}
		})
	})
}

// seedTS is a small valid H.264 + AAC MPEG-TS as mediacommon writes it.
func seedTS(t testing.TB) []byte {
	var buf bytes.Buffer
	video := &mpegts.Track{Codec: &mpegts.CodecH264{}}
	audio := &mpegts.Track{Codec: &mpegts.CodecMPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}}}
	w := &mpegts.Writer{W: &buf, Tracks: []*mpegts.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		ts := int64(i) * 3000
		au := [][]byte{{0x41, 0x9a, byte(i)}}
		if i%3 == 0 {
			au = [][]byte{mediatest.SPS, mediatest.PPS, {0x65, 0x88, byte(i)}}
		}
		if err := w.WriteH264(video, ts, ts, au); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMPEG4Audio(audio, ts, [][]byte{{0x21, 0x10, byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestReadOutputSeed: the reader gets the seed's frames back, keyframes
// marked, timestamps in order, without AUDs.
func TestReadOutputSeed(t *testing.T) {
	var video, audio, keys int
	err := readOutput(bytes.NewReader(seedTS(t)), func(of outputFrame) {
		if of.video {
			video++
			if of.key {
				keys++
			}
			if of.nalus[0][0]&0x1f == 9 {
				t.Error("AUD left in the access unit")
			}
		} else {
			audio++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if video < 5 || keys < 1 || audio < 5 {
		t.Fatalf("video %d (keys %d), audio %d", video, keys, audio)
	}
}
