package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// FLV tag types (FLV spec, E.4.1).
const (
	flvTagAudio  = 8
	flvTagVideo  = 9
	flvTagScript = 18
)

// FLV codec ids of what the recording may hold.
const (
	flvCodecAVC = 7  // video: H.264 in AVCC
	flvCodecAAC = 10 // audio: AAC
)

// maxFLVTagSize bounds one tag: the FLV field is 24 bits, so this is the
// format's own limit, checked anyway because a truncated file may claim it.
const maxFLVTagSize = 1<<24 - 1

// FLVTag is one tag of an FLV file, its body not yet interpreted.
type FLVTag struct {
	Type      byte
	Timestamp uint32 // milliseconds, with the extended high byte applied
	Data      []byte // a slice of the file's bytes, not a copy
}

// ParseFLVTags splits an FLV file into its tags. The bench replays a file
// read once into memory, so it parses from a byte slice and hands out
// sub-slices rather than copying 10 s of 3 Mbps media per stream.
// Malformed input returns an error; it never panics (FuzzFLVTags).
func ParseFLVTags(b []byte) ([]FLVTag, error) {
	if len(b) < 9 || string(b[:3]) != "FLV" {
		return nil, errors.New("flv: not an FLV file (no FLV signature)")
	}
	if b[3] != 1 {
		return nil, fmt.Errorf("flv: unsupported version %d", b[3])
	}
	off := binary.BigEndian.Uint32(b[5:9])
	if off < 9 || uint64(off)+4 > uint64(len(b)) {
		return nil, fmt.Errorf("flv: header size %d outside the file", off)
	}
	pos := int(off) + 4 // PreviousTagSize0
	var tags []FLVTag
	for pos < len(b) {
		if len(b)-pos < 11 {
			return nil, fmt.Errorf("flv: truncated tag header at byte %d", pos)
		}
		h := b[pos : pos+11]
		typ := h[0] & 0x1f // bit 5 is the filter (encryption) flag
		if h[0]&0x20 != 0 {
			return nil, fmt.Errorf("flv: encrypted tag at byte %d", pos)
		}
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		start := pos + 11
		if size > maxFLVTagSize || size > len(b)-start {
			return nil, fmt.Errorf("flv: tag at byte %d claims %d bytes, %d left", pos, size, len(b)-start)
		}
		end := start + size
		tags = append(tags, FLVTag{Type: typ, Timestamp: ts, Data: b[start:end:end]})
		pos = end
		// PreviousTagSize: a file cut right after a tag body is still usable.
		if len(b)-pos < 4 {
			break
		}
		if prev := binary.BigEndian.Uint32(b[pos : pos+4]); prev != uint32(size+11) {
			return nil, fmt.Errorf("flv: PreviousTagSize %d after tag at byte %d, want %d", prev, pos-size-11, size+11)
		}
		pos += 4
	}
	return tags, nil
}

// Recording is an FLV file of H.264 + AAC ready to replay over RTMP: the
// decoder configurations and the access units in file order, still in
// their FLV (AVCC / raw AAC) form so that replaying costs no re-muxing.
type Recording struct {
	SPS, PPS    []byte
	AudioConfig *mpeg4audio.AudioSpecificConfig // nil: video only
	Units       []Unit
	// Duration is the span of one loop: last DTS plus one frame, so the
	// next loop's first frame does not land on the last one's time.
	Duration time.Duration
	// Bytes is the media payload of one loop.
	Bytes int64
	// VideoFrames and AudioFrames count one loop's units by kind.
	VideoFrames, AudioFrames int
}

// Unit is one access unit of the recording.
type Unit struct {
	Video    bool
	Key      bool
	DTS      time.Duration
	PTSDelta time.Duration // video composition time
	Payload  []byte        // AVCC NAL units (video) or one raw AAC frame
}

// ParseRecording reads an FLV file made of H.264 and AAC-LC tags.
func ParseRecording(b []byte) (*Recording, error) {
	tags, err := ParseFLVTags(b)
	if err != nil {
		return nil, err
	}
	rec := &Recording{}
	var last, videoStep time.Duration
	var lastVideo time.Duration = -1
	for i, t := range tags {
		dts := time.Duration(t.Timestamp) * time.Millisecond
		switch t.Type {
		case flvTagScript:
			continue
		case flvTagVideo:
			d := t.Data
			if len(d) < 5 {
				return nil, fmt.Errorf("flv: video tag %d: %d bytes, want at least 5", i, len(d))
			}
			if codec := d[0] & 0x0f; codec != flvCodecAVC {
				return nil, fmt.Errorf("flv: video tag %d: codec id %d, only H.264 (7) is replayed", i, codec)
			}
			// Composition time is a signed 24-bit value.
			cts := time.Duration(int32(uint32(d[2])<<24|uint32(d[3])<<16|uint32(d[4])<<8)>>8) * time.Millisecond
			switch d[1] {
			case 0: // AVCDecoderConfigurationRecord
				if rec.SPS != nil {
					continue // a repeated header changes nothing for replay
				}
				rec.SPS, rec.PPS, err = parseAVCConfig(d[5:])
				if err != nil {
					return nil, fmt.Errorf("flv: video tag %d: %w", i, err)
				}
			case 1:
				if len(d) == 5 {
					continue // empty access unit
				}
				rec.Units = append(rec.Units, Unit{Video: true, Key: d[0]>>4 == 1, DTS: dts, PTSDelta: cts, Payload: d[5:]})
				rec.VideoFrames++
				rec.Bytes += int64(len(d) - 5)
				if lastVideo >= 0 && dts > lastVideo {
					videoStep = dts - lastVideo
				}
				lastVideo = dts
			case 2: // end of sequence
			default:
				return nil, fmt.Errorf("flv: video tag %d: AVC packet type %d", i, d[1])
			}
		case flvTagAudio:
			d := t.Data
			if len(d) < 2 {
				return nil, fmt.Errorf("flv: audio tag %d: %d bytes, want at least 2", i, len(d))
			}
			if codec := d[0] >> 4; codec != flvCodecAAC {
				return nil, fmt.Errorf("flv: audio tag %d: sound format %d, only AAC (10) is replayed", i, codec)
			}
			switch d[1] {
			case 0:
				if rec.AudioConfig != nil {
					continue
				}
				var c mpeg4audio.AudioSpecificConfig
				if err := c.Unmarshal(d[2:]); err != nil {
					return nil, fmt.Errorf("flv: audio tag %d: AudioSpecificConfig: %w", i, err)
				}
				rec.AudioConfig = &c
			case 1:
				if len(d) == 2 {
					continue
				}
				rec.Units = append(rec.Units, Unit{DTS: dts, Payload: d[2:]})
				rec.AudioFrames++
				rec.Bytes += int64(len(d) - 2)
			default:
				return nil, fmt.Errorf("flv: audio tag %d: AAC packet type %d", i, d[1])
			}
		default:
			continue // unknown tag types are skippable by spec
		}
		last = max(last, dts)
	}
	switch {
	case rec.SPS == nil:
		return nil, errors.New("flv: no H.264 decoder configuration")
	case rec.VideoFrames == 0:
		return nil, errors.New("flv: no video frames")
	case !rec.Units[firstVideo(rec.Units)].Key:
		return nil, errors.New("flv: the first video frame is not a keyframe")
	case rec.AudioFrames > 0 && rec.AudioConfig == nil:
		return nil, errors.New("flv: AAC frames without an AudioSpecificConfig")
	}
	if videoStep <= 0 {
		videoStep = 33 * time.Millisecond
	}
	rec.Duration = last + videoStep
	return rec, nil
}

func firstVideo(units []Unit) int {
	for i, u := range units {
		if u.Video {
			return i
		}
	}
	return 0
}

// parseAVCConfig takes the first SPS and PPS out of an
// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
func parseAVCConfig(b []byte) (sps, pps []byte, err error) {
	if len(b) < 6 || b[0] != 1 {
		return nil, nil, errors.New("invalid AVCDecoderConfigurationRecord")
	}
	pos := 5
	readSets := func(count int) ([]byte, error) {
		var first []byte
		for range count {
			if len(b)-pos < 2 {
				return nil, errors.New("truncated parameter set length")
			}
			n := int(binary.BigEndian.Uint16(b[pos:]))
			pos += 2
			if n == 0 || len(b)-pos < n {
				return nil, errors.New("truncated parameter set")
			}
			if first == nil {
				first = b[pos : pos+n : pos+n]
			}
			pos += n
		}
		return first, nil
	}
	nSPS := int(b[pos] & 0x1f)
	pos++
	if sps, err = readSets(nSPS); err != nil {
		return nil, nil, err
	}
	if len(b)-pos < 1 {
		return nil, nil, errors.New("no PPS count")
	}
	nPPS := int(b[pos])
	pos++
	if pps, err = readSets(nPPS); err != nil {
		return nil, nil, err
	}
	if sps == nil || pps == nil {
		return nil, nil, errors.New("no SPS or no PPS")
	}
	return sps, pps, nil
}
