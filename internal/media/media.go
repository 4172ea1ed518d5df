// Package media is the live media model — tracks, codec parameters and
// frames stamped with their ingest wall-clock time — and the per-stream
// fan-out Hub through which one ingest connection feeds every consumer
// (packager, transcoder, recorder, probes). The hub never blocks its writer:
// a subscriber that falls behind is cut forward to the next keyframe.
package media

import "time"

// Codec names as openivs uses them.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
	CodecAAC  = "AAC"
	// CodecID3 is a Data track of timed ID3 tags (timed metadata): each
	// frame's NALUs[0] is one whole tag, presented at the frame's PTS.
	CodecID3 = "ID3"
	// Codecs that ingest may see and admission refuses; kept so refusals can
	// say what arrived.
	CodecAV1   = "AV1"
	CodecVP9   = "VP9"
	CodecOpus  = "Opus"
	CodecMP3   = "MP3"
	CodecAC3   = "AC3"
	CodecOther = "other"
)

// Kind of a track.
type Kind int

const (
	Video Kind = iota + 1
	Audio
	Data // timed metadata, captions
)

// Track describes one elementary stream.
type Track struct {
	ID    int // index in the stream's track list
	Kind  Kind
	Codec string
	// Video (H.264): parameter sets and what they say.
	SPS, PPS      []byte
	Width, Height int
	Profile       string // "High", "Main", "Baseline", ...
	Level         string // "3.1", "4.0", ...
	CodecString   string // RFC 6381, e.g. "avc1.64001F" / "mp4a.40.2"
	// Audio (AAC): AudioSpecificConfig and what it says.
	AudioConfig []byte
	SampleRate  int
	Channels    int
	AACObject   int // 2 = AAC-LC
}

// Frame is one access unit of one track.
type Frame struct {
	Track int
	// PTS and DTS are media time from the stream's first frame.
	PTS, DTS time.Duration
	// Wall is when ingest received the frame; it becomes
	// EXT-X-PROGRAM-DATE-TIME and is what latency is measured against.
	Wall time.Time
	// Key marks a video random-access point (IDR).
	Key bool
	// Video: the access unit as NAL units without start codes.
	// Audio: one raw AAC frame in NALUs[0].
	NALUs [][]byte
	// Discontinuity marks the first frame after a takeover or restart.
	Discontinuity bool
}

// Size is the payload size in bytes.
func (f *Frame) Size() int {
	n := 0
	for _, b := range f.NALUs {
		n += len(b)
	}
	return n
}
