package media

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// A 640x360 Main 3.0 SPS as x264 writes it.
var mainSPS = []byte{0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x0b, 0x50, 0x10, 0x10, 0x14, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xb6, 0x58}

func TestSetH264SPS(t *testing.T) {
	var tr Track
	if !tr.SetH264SPS(mainSPS) {
		t.Fatal("a valid SPS was rejected")
	}
	if tr.Width != 640 || tr.Height != 360 || tr.Profile != "Main" || tr.Level != "3.0" || tr.CodecString != "avc1.4D401E" {
		t.Fatalf("track %+v", tr)
	}
	for _, bad := range [][]byte{nil, {0x67}, {0x67, 0x4d, 0x40}, {0x67, 0xff, 0xff, 0xff, 0xff}} {
		var tr Track
		if tr.SetH264SPS(bad) || tr.Width != 0 {
			t.Errorf("SPS %x accepted: %+v", bad, tr)
		}
	}
	if got := h264LevelName(11, 66, true); got != "1b" {
		t.Errorf("level 1b spelled %q", got)
	}
	if got := h264ProfileName(66, true, false); got != "Constrained Baseline" {
		t.Errorf("profile %q", got)
	}
}

func TestAACTrack(t *testing.T) {
	tr := AACTrack(mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2})
	if tr.Kind != Audio || tr.Codec != CodecAAC || tr.SampleRate != 48000 || tr.Channels != 2 || tr.AACObject != 2 ||
		tr.CodecString != "mp4a.40.2" || len(tr.AudioConfig) != 2 {
		t.Fatalf("track %+v", tr)
	}
}
