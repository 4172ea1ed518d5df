package transcode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/openivs/openivs/internal/media"
)

// ffmpeg reads the source as FLV on its stdin. FLV is the container ffmpeg
// starts fastest on (the sequence headers describe the tracks, so there is
// nothing to probe) and demuxes without delay (every tag has its size);
// writing its handful of tag types is simpler than any library for it.
// Layout per the FLV spec (E.2–E.4).
const (
	flvTagAudio = 8
	flvTagVideo = 9

	flvVideoKey   = 1<<4 | 7 // keyframe, AVC
	flvVideoInter = 2<<4 | 7 // inter frame, AVC
	flvAudioAAC   = 0xAF     // AAC, 44 kHz, 16-bit, stereo (fixed for AAC)
)

// flvWriter writes one stream's source frames as FLV.
type flvWriter struct {
	w            *bufio.Writer
	video, audio *media.Track
	sps, pps     []byte // the parameter sets last announced
	buf          []byte
}

func newFLVWriter(w io.Writer, video, audio *media.Track) *flvWriter {
	return &flvWriter{w: bufio.NewWriterSize(w, 64<<10), video: video, audio: audio}
}

// header writes the file header and the audio sequence header; the video
// sequence header follows with the first keyframe's parameter sets.
func (fw *flvWriter) header() error {
	var flags byte
	if fw.video != nil {
		flags |= 1
	}
	if fw.audio != nil {
		flags |= 4
	}
	fw.w.Write([]byte{'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0})
	if fw.audio != nil && len(fw.audio.AudioConfig) > 0 {
		fw.tag(flvTagAudio, 0, append([]byte{flvAudioAAC, 0}, fw.audio.AudioConfig...))
	}
	return fw.w.Flush()
}

// frame writes one source frame at its feed-timeline DTS and PTS and
// flushes, so ffmpeg sees each frame as soon as it exists.
func (fw *flvWriter) frame(f *media.Frame, video bool, dts, pts time.Duration) error {
	ts := uint32(dts / time.Millisecond)
	if video {
		sps, pps := media.ParameterSets(f.NALUs)
		if sps == nil {
			sps = fw.sps
		}
		if pps == nil {
			pps = fw.pps
		}
		if fw.sps == nil && f.Key && (sps == nil || pps == nil) {
			sps, pps = fw.video.SPS, fw.video.PPS
		}
		if sps != nil && pps != nil && (!bytes.Equal(sps, fw.sps) || !bytes.Equal(pps, fw.pps)) {
			conf, err := avcConfig(sps, pps)
			if err != nil {
				return err
			}
			fw.tag(flvTagVideo, ts, append([]byte{flvVideoKey, 0, 0, 0, 0}, conf...))
			fw.sps, fw.pps = sps, pps
		}
		if fw.sps == nil {
			return nil // nothing decodable before the first parameter sets
		}
		kind := byte(flvVideoInter)
		if f.Key {
			kind = flvVideoKey
		}
		cts := int32((pts - dts) / time.Millisecond)
		b := append(fw.buf[:0], kind, 1, byte(cts>>16), byte(cts>>8), byte(cts))
		for _, n := range f.NALUs {
			b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
			b = append(b, n...)
		}
		fw.buf = b
		fw.tag(flvTagVideo, ts, b)
	} else {
		if len(f.NALUs) == 0 {
			return nil
		}
		b := append(fw.buf[:0], flvAudioAAC, 1)
		b = append(b, f.NALUs[0]...)
		fw.buf = b
		fw.tag(flvTagAudio, ts, b)
	}
	return fw.w.Flush()
}

// tag writes one FLV tag and its trailing PreviousTagSize.
func (fw *flvWriter) tag(kind byte, ts uint32, data []byte) {
	n := len(data)
	fw.w.Write([]byte{kind, byte(n >> 16), byte(n >> 8), byte(n),
		byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0})
	fw.w.Write(data)
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(11+n))
	fw.w.Write(size[:])
}

// avcConfig builds an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// §5.3.3.1) holding one SPS and one PPS, with 4-byte NAL lengths.
func avcConfig(sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(sps) > 0xffff || len(pps) == 0 || len(pps) > 0xffff {
		return nil, errors.New("transcode: unusable H.264 parameter sets")
	}
	b := []byte{1, sps[1], sps[2], sps[3], 0xFF, 0xE1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...), nil
}
