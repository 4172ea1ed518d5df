package live

import (
	"slices"
	"testing"

	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/ivs"
)

func TestChooseRenditions(t *testing.T) {
	ladder := []hls.Variant{
		{Name: "1080p30", Width: 1920, Height: 1080, Source: true},
		{Name: "720p30", Width: 1280, Height: 720},
		{Name: "480p30", Width: 852, Height: 480},
		{Name: "360p30", Width: 640, Height: 360},
		{Name: "160p30", Width: 284, Height: 160},
		{Name: "audio_only", AudioOnly: true, OnRequest: true},
	}
	custom := func(r ...string) *ivs.RenditionConfiguration {
		return &ivs.RenditionConfiguration{RenditionSelection: "CUSTOM", Renditions: r}
	}
	for _, c := range []struct {
		sel  *ivs.RenditionConfiguration
		want []int
	}{
		{nil, []int{0, 1, 2, 3, 4}},
		{&ivs.RenditionConfiguration{RenditionSelection: "ALL"}, []int{0, 1, 2, 3, 4}},
		{custom("HD"), []int{1}},
		{custom("SD"), []int{2}},
		{custom("FULL_HD", "LOWEST_RESOLUTION"), []int{0, 3, 4}},
		{custom("LOWEST_RESOLUTION"), []int{3, 4}},
	} {
		if got := chooseRenditions(ladder, c.sel); !slices.Equal(got, c.want) {
			t.Errorf("%+v: chose %v, want %v", c.sel, got, c.want)
		}
	}
	// A 1080p BASIC stream has nothing in the SD band to record.
	if got := chooseRenditions(ladder[:1], custom("SD")); len(got) != 0 {
		t.Errorf("SD of a 1080p source: %v", got)
	}
}
