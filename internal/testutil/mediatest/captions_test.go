package mediatest

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCaptionsDecodeWithFFmpeg: the caption helpers make what a real
// decoder reads as CC1 captions.
func TestCaptionsDecodeWithFFmpeg(t *testing.T) {
	es := Encode(t, EncodeOptions{Width: 320, Height: 240, FPS: 30, Seconds: 3})
	es.AddCaptions(t, []Caption{{At: 500 * time.Millisecond, Text: "Caption one"}, {At: 1500 * time.Millisecond, Text: "Caption two"}, {At: 2500 * time.Millisecond}})
	path := filepath.Join(t.TempDir(), "captioned.ts")
	es.WriteTS(t, path)
	if got := DecodeCaptions(t, path); !slices.Equal(got, []string{"Caption one", "Caption two"}) {
		t.Fatalf("decoded %q", got)
	}
}
