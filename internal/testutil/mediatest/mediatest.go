// Package mediatest holds media fixtures shared by tests: real H.264
// parameter sets and the tracks of a synthetic H.264 + AAC stream.
package mediatest

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/openivs/openivs/internal/media"
)

// A real 1920x1080 Constrained Baseline SPS and its PPS: synthetic
// pictures are not decodable, but the parameter sets must parse.
var (
	SPS = []byte{
		0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02,
		0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
		0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20,
	}
	PPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// Tracks returns an H.264 track (ID 0, SPS/PPS above) and an AAC-LC
// 48 kHz stereo track (ID 1).
func Tracks(t testing.TB) []media.Track {
	t.Helper()
	v := media.Track{ID: 0, Kind: media.Video, Codec: media.CodecH264, PPS: PPS}
	if !v.SetH264SPS(SPS) {
		t.Fatal("test SPS does not parse")
	}
	a := media.AACTrack(mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelConfig: 2})
	a.ID = 1
	return []media.Track{v, a}
}
