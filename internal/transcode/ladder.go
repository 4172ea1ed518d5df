// Package transcode owns adaptive-bitrate delivery: the IVS rendition
// ladders of STANDARD and ADVANCED channels (ladder.go), and the one ffmpeg
// process per live stream that decodes the source once and encodes every
// rung of its ladder, fed from the stream's media hub and feeding one hub
// per rung back, under a supervisor that restarts it when it dies or
// stalls and a per-node bound on concurrent transcodes.
package transcode

import (
	"math"
	"strconv"
)

// Channel types and ADVANCED presets, spelled as the IVS API spells them.
const (
	TypeBasic      = "BASIC"
	TypeStandard   = "STANDARD"
	TypeAdvancedSD = "ADVANCED_SD"
	TypeAdvancedHD = "ADVANCED_HD"

	PresetHigherBandwidth      = "HIGHER_BANDWIDTH_DELIVERY"
	PresetConstrainedBandwidth = "CONSTRAINED_BANDWIDTH_DELIVERY"
)

// AudioOnlyName is the audio-only rendition's name, as IVS players show it.
const AudioOnlyName = "audio_only"

// Input is what the ladder is chosen from: the source video's size and
// frame rate.
type Input struct {
	Width, Height int
	FPS           float64
}

// Rung is one rendition of a ladder.
type Rung struct {
	// Name is the quality name players show: "1080p60", "480p30",
	// "audio_only". The short edge and the output frame rate name it.
	Name string
	// Source marks the passthrough rendition: the source video and audio
	// as they arrive, not encoded.
	Source bool
	// AudioOnly marks the rendition without video.
	AudioOnly bool
	// Width and Height of the encoded video (even numbers).
	Width, Height int
	// MaxFPS caps the output frame rate (30); 0 keeps the source's.
	MaxFPS float64
	// FPS is the output frame rate: the source's, capped at MaxFPS.
	FPS float64
	// VideoKbps is the video bitrate (CBR).
	VideoKbps int
	// AudioKbps is the AAC bitrate; 0 passes the source audio through.
	AudioKbps int
}

// Transcoded reports whether ffmpeg produces this rung.
func (r Rung) Transcoded() bool { return !r.Source && (!r.AudioOnly || r.AudioKbps > 0) }

// Transcodes reports whether a channel of this type runs a transcoder:
// STANDARD (single-track input) and the ADVANCED types do, BASIC does not.
func Transcodes(channelType string) bool {
	switch channelType {
	case TypeStandard, TypeAdvancedSD, TypeAdvancedHD:
		return true
	}
	return false
}

// fps60 is where an input counts as 60 fps for the 720p rung: IVS keeps
// "60" for inputs of about 60 fps, so 50 and 59.94 qualify too.
const fps60 = 30.5

// sizes of the standard rungs, short edge in pixels.
const (
	p720 = 720
	p480 = 480
	p360 = 360
	p160 = 160
)

// rate is one rung's bitrates in the tables of spec 05 §7.6: video kbps
// for a 30 and a 60 fps output, and the audio (0 = source passthrough).
type rate struct {
	video30, video60 int
	audio            int
}

func (r rate) video(sixty bool) int {
	if sixty && r.video60 > 0 {
		return r.video60
	}
	return r.video30
}

// table is one ladder's bitrates by rung size (spec 05 §7.6). source is
// the ADVANCED_HD "source resolution transcoded" rung of 480p–720p input.
type table struct {
	rungs     map[int]rate
	source    rate
	audioOnly int // kbps; 0 = no audio-only rung in the ladder
	// audioOnly30 is the audio-only bitrate for a 30 fps input when the
	// table gives it separately (CONSTRAINED ADVANCED_HD, see below).
	audioOnly30 int
}

var (
	standardTable = table{rungs: map[int]rate{
		p720: {video30: 2400, video60: 3400},
		p480: {video30: 1400},
		p360: {video30: 630, audio: 64},
		p160: {video30: 230, audio: 48},
	}}
	advancedHigher = table{rungs: map[int]rate{
		p720: {video30: 2300, video60: 3000, audio: 128},
		p480: {video30: 1300, audio: 128},
		p360: {video30: 700, audio: 64},
		p160: {video30: 270, audio: 48},
	}, source: rate{video30: 2300, audio: 128}, audioOnly: 64}
	advancedConstrained = table{rungs: map[int]rate{
		p720: {video30: 1900, video60: 2200, audio: 128},
		p480: {video30: 800, audio: 128},
		p360: {video30: 400, audio: 64},
		p160: {video30: 220, audio: 48},
	}, source: rate{video30: 1900, audio: 128}, audioOnly: 64,
		// The IVS table gives 0.08 Mbps for the audio-only rung of a 720p30–
		// 1080p30 input under this preset and 64 kbps everywhere else; it
		// reads like a documentation slip, but the table is what we follow.
		audioOnly30: 80}
)

// Ladder returns the renditions of a channel's stream for its input,
// highest first, as IVS builds them (spec 05 §7.6). BASIC gets the source
// alone. Portrait input keeps its orientation: its short edge (width) gets
// each rung's size. Nothing is up-scaled: inputs below 480p get the table's
// rungs below their size under a top rung at the input's own size.
// The audio-only rung is part of the ADVANCED ladders; for the others
// playback derives it from the source audio on request.
func Ladder(channelType, preset string, in Input) []Rung {
	short := min(in.Width, in.Height)
	sixty := in.FPS > fps60
	var rungs []Rung
	switch channelType {
	case TypeStandard:
		t := standardTable
		switch {
		case short > p720:
			rungs = []Rung{sourceRung(in), t.rung(in, p720, sixty), t.rung(in, p480, false), t.rung(in, p360, false), t.rung(in, p160, false)}
		case short == p720:
			rungs = []Rung{t.rung(in, p720, sixty), t.rung(in, p480, false), t.rung(in, p360, false), t.rung(in, p160, false)}
		case short >= p480:
			rungs = []Rung{t.rung(in, p480, false), t.rung(in, p360, false), t.rung(in, p160, false)}
		default:
			rungs = t.small(in)
		}
	case TypeAdvancedHD:
		t := advancedTable(preset)
		switch {
		case short >= p720:
			rungs = []Rung{t.rung(in, p720, sixty), t.rung(in, p480, false), t.rung(in, p360, false), t.rung(in, p160, false)}
		case short > p480:
			rungs = []Rung{t.sourceSize(in, sixty), t.rung(in, p480, false), t.rung(in, p360, false), t.rung(in, p160, false)}
		case short == p480:
			rungs = []Rung{t.rung(in, p480, false), t.rung(in, p360, false), t.rung(in, p160, false)}
		default:
			rungs = t.small(in)
		}
		rungs = append(rungs, t.audioOnlyRung(short >= p720 && !sixty))
	case TypeAdvancedSD:
		t := advancedTable(preset)
		if short >= p480 {
			rungs = []Rung{t.rung(in, p480, false), t.rung(in, p360, false), t.rung(in, p160, false)}
		} else {
			rungs = t.small(in)
		}
		rungs = append(rungs, t.audioOnlyRung(false))
	default: // BASIC, and anything transmuxed
		rungs = []Rung{sourceRung(in)}
	}
	return rungs
}

func advancedTable(preset string) table {
	if preset == PresetConstrainedBandwidth {
		return advancedConstrained
	}
	return advancedHigher // HIGHER_BANDWIDTH_DELIVERY is the default
}

// sourceRung is the passthrough rendition, named after the input.
func sourceRung(in Input) Rung {
	return Rung{Name: name(min(in.Width, in.Height), in.FPS), Source: true, Width: in.Width, Height: in.Height, FPS: in.FPS}
}

// rung is the table's rung of the given size, scaled to the input's shape.
// Only the 720p rung keeps a 60 fps input's rate; the others are 30 fps.
func (t table) rung(in Input, size int, sixty bool) Rung {
	w, h := scaled(in, size)
	return t.make(in, size, w, h, t.rungs[size], sixty)
}

// sourceSize is ADVANCED_HD's top rung for 480p–720p input: the source
// resolution, transcoded.
func (t table) sourceSize(in Input, sixty bool) Rung {
	return t.make(in, min(in.Width, in.Height), even(in.Width), even(in.Height), t.source, sixty)
}

// small is the ladder of an input below 480p, which IVS leaves open: the
// table's rungs below the input's size under a top rung at the input size,
// which takes the bitrate and audio of the smallest table rung not below
// it (the 360p rung for a 240p input).
func (t table) small(in Input) []Rung {
	short := min(in.Width, in.Height)
	sizes := []int{p480, p360, p160}
	var out []Rung
	for i := len(sizes) - 1; i >= 0; i-- {
		if sizes[i] >= short {
			out = append(out, t.make(in, short, even(in.Width), even(in.Height), t.rungs[sizes[i]], false))
			break
		}
	}
	if out == nil { // never: short < 480 here
		out = append(out, t.make(in, short, even(in.Width), even(in.Height), t.rungs[p480], false))
	}
	for _, size := range sizes {
		if size < short {
			out = append(out, t.rung(in, size, false))
		}
	}
	return out
}

func (t table) make(in Input, size, w, h int, r rate, sixty bool) Rung {
	out := Rung{Width: w, Height: h, VideoKbps: r.video(sixty), AudioKbps: r.audio, FPS: in.FPS}
	if !sixty {
		out.MaxFPS = 30
		if out.FPS > fps60 || out.FPS <= 0 {
			out.FPS = 30
		}
	}
	out.Name = name(size, out.FPS)
	return out
}

func (t table) audioOnlyRung(thirty720 bool) Rung {
	kbps := t.audioOnly
	if thirty720 && t.audioOnly30 > 0 {
		kbps = t.audioOnly30
	}
	return Rung{Name: AudioOnlyName, AudioOnly: true, AudioKbps: kbps}
}

// scaled fits an input to a rung size on its short edge, keeping the
// aspect ratio; the long edge is rounded down to even (16:9 480p is 852).
func scaled(in Input, size int) (w, h int) {
	if in.Width >= in.Height {
		return even(int(float64(size) * float64(in.Width) / float64(in.Height))), size
	}
	return size, even(int(float64(size) * float64(in.Height) / float64(in.Width)))
}

func even(n int) int { return n &^ 1 }

// name spells a rendition as IVS does: short edge, "p", frame rate.
func name(short int, fps float64) string {
	r := int(math.Round(fps))
	if r <= 0 {
		r = 30
	}
	return strconv.Itoa(short) + "p" + strconv.Itoa(r)
}
