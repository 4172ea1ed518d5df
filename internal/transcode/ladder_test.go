package transcode

import (
	"fmt"
	"testing"
)

// The expected ladders below follow the tables of spec 05 §7.6
// ("Rendition ladders (complete)"). Video bitrates are the tables' Mbps
// in kbps; AudioKbps 0 is source audio passthrough.

// source is the passthrough rung: the input as it arrives.
func source(name string, w, h int, fps float64) Rung {
	return Rung{Name: name, Source: true, Width: w, Height: h, FPS: fps}
}

// at30 is an encoded rung capped at 30 fps, with output rate fps.
func at30(name string, w, h int, fps float64, videoKbps, audioKbps int) Rung {
	return Rung{Name: name, Width: w, Height: h, FPS: fps, MaxFPS: 30, VideoKbps: videoKbps, AudioKbps: audioKbps}
}

// uncapped is an encoded rung keeping the source's frame rate (the 720p
// rung of a 60 fps class input).
func uncapped(name string, w, h int, fps float64, videoKbps, audioKbps int) Rung {
	return Rung{Name: name, Width: w, Height: h, FPS: fps, VideoKbps: videoKbps, AudioKbps: audioKbps}
}

// audioOnly is the ADVANCED ladders' audio-only rung.
func audioOnly(kbps int) Rung {
	return Rung{Name: AudioOnlyName, AudioOnly: true, AudioKbps: kbps}
}

// join concatenates rung lists, to share the common tails of ladders.
func join(parts ...[]Rung) []Rung {
	var out []Rung
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var (
	// STANDARD: 480p30 @ 1.4 Mbps + source audio · 360p30 @ 0.63 Mbps +
	// 64 kbps · 160p30 @ 0.23 Mbps + 48 kbps, for a 16:9 landscape input.
	standardTail169 = []Rung{
		at30("480p30", 852, 480, 30, 1400, 0),
		at30("360p30", 640, 360, 30, 630, 64),
		at30("160p30", 284, 160, 30, 230, 48),
	}
	// ADVANCED, Higher bandwidth delivery: 480p30 @ 1.3/a128k · 360p30 @
	// 0.7/a64k · 160p30 @ 0.27/a48k, 16:9 landscape.
	higherTail169 = []Rung{
		at30("480p30", 852, 480, 30, 1300, 128),
		at30("360p30", 640, 360, 30, 700, 64),
		at30("160p30", 284, 160, 30, 270, 48),
	}
	// ADVANCED, Constrained bandwidth delivery: 480p30 @ 0.8/a128k ·
	// 360p30 @ 0.4/a64k · 160p30 @ 0.22/a48k, 16:9 landscape.
	constrainedTail169 = []Rung{
		at30("480p30", 852, 480, 30, 800, 128),
		at30("360p30", 640, 360, 30, 400, 64),
		at30("160p30", 284, 160, 30, 220, 48),
	}
)

func TestLadder(t *testing.T) {
	const (
		higher      = PresetHigherBandwidth
		constrained = PresetConstrainedBandwidth
	)
	tests := []struct {
		name        string
		channelType string
		preset      string
		in          Input
		want        []Rung
	}{
		// STANDARD, single-track input.
		{
			name: "standard 1080p60", channelType: TypeStandard,
			in: Input{1920, 1080, 60},
			want: join([]Rung{
				source("1080p60", 1920, 1080, 60),
				uncapped("720p60", 1280, 720, 60, 3400, 0),
			}, standardTail169),
		},
		{
			name: "standard 1080p30", channelType: TypeStandard,
			in: Input{1920, 1080, 30},
			want: join([]Rung{
				source("1080p30", 1920, 1080, 30),
				at30("720p30", 1280, 720, 30, 2400, 0),
			}, standardTail169),
		},
		{
			name: "standard 900p60 (between 720p and 1080p) passes through", channelType: TypeStandard,
			in: Input{1600, 900, 60},
			want: join([]Rung{
				source("900p60", 1600, 900, 60),
				uncapped("720p60", 1280, 720, 60, 3400, 0),
			}, standardTail169),
		},
		{
			name: "standard 900p30 (between 720p and 1080p) passes through", channelType: TypeStandard,
			in: Input{1600, 900, 30},
			want: join([]Rung{
				source("900p30", 1600, 900, 30),
				at30("720p30", 1280, 720, 30, 2400, 0),
			}, standardTail169),
		},
		{
			name: "standard 720p60 is transcoded, no passthrough", channelType: TypeStandard,
			in: Input{1280, 720, 60},
			want: join([]Rung{
				uncapped("720p60", 1280, 720, 60, 3400, 0),
			}, standardTail169),
		},
		{
			name: "standard 720p30", channelType: TypeStandard,
			in: Input{1280, 720, 30},
			want: join([]Rung{
				at30("720p30", 1280, 720, 30, 2400, 0),
			}, standardTail169),
		},
		{
			name: "standard 720p at 29.97 keeps its rate", channelType: TypeStandard,
			in: Input{1280, 720, 29.97},
			want: []Rung{
				at30("720p30", 1280, 720, 29.97, 2400, 0),
				at30("480p30", 852, 480, 29.97, 1400, 0),
				at30("360p30", 640, 360, 29.97, 630, 64),
				at30("160p30", 284, 160, 29.97, 230, 48),
			},
		},
		{
			name: "standard 720p at 59.94 is 60 class", channelType: TypeStandard,
			in: Input{1280, 720, 59.94},
			want: join([]Rung{
				uncapped("720p60", 1280, 720, 59.94, 3400, 0),
			}, standardTail169),
		},
		{
			name: "standard 720p at 50 is 60 class", channelType: TypeStandard,
			in: Input{1280, 720, 50},
			want: join([]Rung{
				uncapped("720p50", 1280, 720, 50, 3400, 0),
			}, standardTail169),
		},
		{
			name: "standard 540p30 gets the 480p ladder", channelType: TypeStandard,
			in:   Input{960, 540, 30},
			want: standardTail169,
		},
		{
			// 854 is even and is the input's own width at 480 lines.
			name: "standard 480p30", channelType: TypeStandard,
			in: Input{854, 480, 30},
			want: []Rung{
				at30("480p30", 854, 480, 30, 1400, 0),
				at30("360p30", 640, 360, 30, 630, 64),
				at30("160p30", 284, 160, 30, 230, 48),
			},
		},
		{
			// §7.4's 852x480 is not exactly 16:9: its aspect gives a 639,
			// floored to 638, pixel wide 360p rung.
			name: "standard 480p60 rungs are 30 fps", channelType: TypeStandard,
			in: Input{852, 480, 60},
			want: []Rung{
				at30("480p30", 852, 480, 30, 1400, 0),
				at30("360p30", 638, 360, 30, 630, 64),
				at30("160p30", 284, 160, 30, 230, 48),
			},
		},
		{
			name: "standard portrait 720x1280 sizes the short edge", channelType: TypeStandard,
			in: Input{720, 1280, 30},
			want: []Rung{
				at30("720p30", 720, 1280, 30, 2400, 0),
				at30("480p30", 480, 852, 30, 1400, 0),
				at30("360p30", 360, 640, 30, 630, 64),
				at30("160p30", 160, 284, 30, 230, 48),
			},
		},
		{
			// Below 480p is left open by the spec (our choice): a top rung
			// at the input size with the 360p rung's rates, then 160p.
			name: "standard 240p30 below 480p", channelType: TypeStandard,
			in: Input{320, 240, 30},
			want: []Rung{
				at30("240p30", 320, 240, 30, 630, 64),
				at30("160p30", 212, 160, 30, 230, 48),
			},
		},

		// ADVANCED_HD, Higher bandwidth delivery (also the default preset).
		{
			name: "advanced HD higher 1080p60", channelType: TypeAdvancedHD, preset: higher,
			in: Input{1920, 1080, 60},
			want: join([]Rung{
				uncapped("720p60", 1280, 720, 60, 3000, 128),
			}, higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced HD default preset 1080p60", channelType: TypeAdvancedHD, preset: "",
			in: Input{1920, 1080, 60},
			want: join([]Rung{
				uncapped("720p60", 1280, 720, 60, 3000, 128),
			}, higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced HD higher 1080p30", channelType: TypeAdvancedHD, preset: higher,
			in: Input{1920, 1080, 30},
			want: join([]Rung{
				at30("720p30", 1280, 720, 30, 2300, 128),
			}, higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced HD default preset 1080p30", channelType: TypeAdvancedHD, preset: "",
			in: Input{1920, 1080, 30},
			want: join([]Rung{
				at30("720p30", 1280, 720, 30, 2300, 128),
			}, higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced HD higher 720p60", channelType: TypeAdvancedHD, preset: higher,
			in: Input{1280, 720, 60},
			want: join([]Rung{
				uncapped("720p60", 1280, 720, 60, 3000, 128),
			}, higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced HD higher 540p30 transcodes the source size", channelType: TypeAdvancedHD, preset: higher,
			in: Input{960, 540, 30},
			want: join([]Rung{
				at30("540p30", 960, 540, 30, 2300, 128),
			}, higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced HD higher 480p30", channelType: TypeAdvancedHD, preset: higher,
			in: Input{854, 480, 30},
			want: []Rung{
				at30("480p30", 854, 480, 30, 1300, 128),
				at30("360p30", 640, 360, 30, 700, 64),
				at30("160p30", 284, 160, 30, 270, 48),
				audioOnly(64),
			},
		},
		{
			name: "advanced HD higher 240p30 below 480p", channelType: TypeAdvancedHD, preset: higher,
			in: Input{320, 240, 30},
			want: []Rung{
				at30("240p30", 320, 240, 30, 700, 64),
				at30("160p30", 212, 160, 30, 270, 48),
				audioOnly(64),
			},
		},

		// ADVANCED_HD, Constrained bandwidth delivery.
		{
			name: "advanced HD constrained 1080p60", channelType: TypeAdvancedHD, preset: constrained,
			in: Input{1920, 1080, 60},
			want: join([]Rung{
				uncapped("720p60", 1280, 720, 60, 2200, 128),
			}, constrainedTail169, []Rung{audioOnly(64)}),
		},
		{
			// The table gives audio-only 0.08 Mbps in this row only.
			name: "advanced HD constrained 1080p30", channelType: TypeAdvancedHD, preset: constrained,
			in: Input{1920, 1080, 30},
			want: join([]Rung{
				at30("720p30", 1280, 720, 30, 1900, 128),
			}, constrainedTail169, []Rung{audioOnly(80)}),
		},
		{
			name: "advanced HD constrained 720p30", channelType: TypeAdvancedHD, preset: constrained,
			in: Input{1280, 720, 30},
			want: join([]Rung{
				at30("720p30", 1280, 720, 30, 1900, 128),
			}, constrainedTail169, []Rung{audioOnly(80)}),
		},
		{
			name: "advanced HD constrained 540p30 transcodes the source size", channelType: TypeAdvancedHD, preset: constrained,
			in: Input{960, 540, 30},
			want: join([]Rung{
				at30("540p30", 960, 540, 30, 1900, 128),
			}, constrainedTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced HD constrained 480p30", channelType: TypeAdvancedHD, preset: constrained,
			in: Input{854, 480, 30},
			want: []Rung{
				at30("480p30", 854, 480, 30, 800, 128),
				at30("360p30", 640, 360, 30, 400, 64),
				at30("160p30", 284, 160, 30, 220, 48),
				audioOnly(64),
			},
		},
		{
			name: "advanced HD constrained 240p30 below 480p", channelType: TypeAdvancedHD, preset: constrained,
			in: Input{320, 240, 30},
			want: []Rung{
				at30("240p30", 320, 240, 30, 400, 64),
				at30("160p30", 212, 160, 30, 220, 48),
				audioOnly(64),
			},
		},

		// ADVANCED_SD: capped at 480p, no up-conversion.
		{
			name: "advanced SD higher 1080p30", channelType: TypeAdvancedSD, preset: higher,
			in:   Input{1920, 1080, 30},
			want: join(higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced SD default preset 1080p60", channelType: TypeAdvancedSD, preset: "",
			in:   Input{1920, 1080, 60},
			want: join(higherTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced SD constrained 1080p30", channelType: TypeAdvancedSD, preset: constrained,
			in:   Input{1920, 1080, 30},
			want: join(constrainedTail169, []Rung{audioOnly(64)}),
		},
		{
			name: "advanced SD higher 240p30 below 480p", channelType: TypeAdvancedSD, preset: higher,
			in: Input{320, 240, 30},
			want: []Rung{
				at30("240p30", 320, 240, 30, 700, 64),
				at30("160p30", 212, 160, 30, 270, 48),
				audioOnly(64),
			},
		},
		{
			name: "advanced SD constrained 240p30 below 480p", channelType: TypeAdvancedSD, preset: constrained,
			in: Input{320, 240, 30},
			want: []Rung{
				at30("240p30", 320, 240, 30, 400, 64),
				at30("160p30", 212, 160, 30, 220, 48),
				audioOnly(64),
			},
		},

		// BASIC: the source alone.
		{
			name: "basic 1080p60", channelType: TypeBasic,
			in:   Input{1920, 1080, 60},
			want: []Rung{source("1080p60", 1920, 1080, 60)},
		},
		{
			name: "basic 720p30", channelType: TypeBasic,
			in:   Input{1280, 720, 30},
			want: []Rung{source("720p30", 1280, 720, 30)},
		},
		{
			name: "basic 480p30", channelType: TypeBasic,
			in:   Input{852, 480, 30},
			want: []Rung{source("480p30", 852, 480, 30)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Ladder(tt.channelType, tt.preset, tt.in)
			if len(got) != len(tt.want) {
				t.Errorf("Ladder(%q, %q, %+v) = %d rungs, want %d", tt.channelType, tt.preset, tt.in, len(got), len(tt.want))
			}
			for i := range max(len(got), len(tt.want)) {
				g, w := rungString(got, i), rungString(tt.want, i)
				if g != w {
					t.Errorf("rung %d:\n got  %s\n want %s", i, g, w)
				}
			}
		})
	}
}

// rungString spells rung i of rs for comparison, or "(none)".
func rungString(rs []Rung, i int) string {
	if i >= len(rs) {
		return "(none)"
	}
	r := rs[i]
	return fmt.Sprintf("{Name:%s Source:%t AudioOnly:%t %dx%d FPS:%g MaxFPS:%g VideoKbps:%d AudioKbps:%d}",
		r.Name, r.Source, r.AudioOnly, r.Width, r.Height, r.FPS, r.MaxFPS, r.VideoKbps, r.AudioKbps)
}

func TestTranscodes(t *testing.T) {
	for _, tt := range []struct {
		channelType string
		want        bool
	}{
		{TypeStandard, true},
		{TypeAdvancedSD, true},
		{TypeAdvancedHD, true},
		{TypeBasic, false},
		{"", false},
	} {
		if got := Transcodes(tt.channelType); got != tt.want {
			t.Errorf("Transcodes(%q) = %t, want %t", tt.channelType, got, tt.want)
		}
	}
}

func TestTranscodesRung(t *testing.T) {
	standard := Ladder(TypeStandard, "", Input{1920, 1080, 60})
	advanced := Ladder(TypeAdvancedHD, PresetHigherBandwidth, Input{1920, 1080, 60})
	if !standard[0].Source || !advanced[len(advanced)-1].AudioOnly {
		t.Fatalf("unexpected ladders: %+v, %+v", standard, advanced)
	}
	for _, tt := range []struct {
		name string
		rung Rung
		want bool
	}{
		{"standard source rung", standard[0], false},
		{"standard 720p60 rung", standard[1], true},
		{"standard 160p30 rung", standard[len(standard)-1], true},
		{"advanced 720p60 rung", advanced[0], true},
		{"advanced audio-only rung", advanced[len(advanced)-1], true},
		{"basic source rung", Ladder(TypeBasic, "", Input{1280, 720, 30})[0], false},
	} {
		if got := tt.rung.Transcoded(); got != tt.want {
			t.Errorf("%s (%+v).Transcoded() = %t, want %t", tt.name, tt.rung, got, tt.want)
		}
	}
}
