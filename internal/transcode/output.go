package transcode

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// ffmpeg writes each rung as MPEG-TS on a pipe of its own; mediacommon
// demuxes it. With -omit_video_pes_length 0 and -pes_payload_size 0 every
// frame is its own sized PES, which the demuxer hands over as soon as its
// last packet arrives.

// outputFrame is one demuxed frame of a rung, on the feed timeline.
type outputFrame struct {
	video    bool
	pts, dts time.Duration
	key      bool
	nalus    [][]byte
}

// readOutput demuxes one rung's MPEG-TS until r ends, calling emit for each
// frame in stream order. Only the first H.264 and the first AAC stream are
// read. It returns nil at EOF.
func readOutput(r io.Reader, emit func(outputFrame)) error {
	tr := &mpegts.Reader{R: r}
	if err := tr.Initialize(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		return fmt.Errorf("transcode: reading ffmpeg output: %w", err)
	}
	tr.OnDecodeError(func(error) {})
	var td mpegts.TimeDecoder
	var first int64
	var started bool
	// 33-bit timestamps wrap after 26.5 h; unwrap against the first one.
	unwrap := func(ts int64) time.Duration {
		if !started {
			started, first = true, ts
		}
		v := first + td.Decode(ts)
		return time.Duration(v) * time.Second / 90000
	}
	var haveVideo, haveAudio bool
	for _, t := range tr.Tracks() {
		switch c := t.Codec.(type) {
		case *mpegts.CodecH264:
			if haveVideo {
				continue
			}
			haveVideo = true
			tr.OnDataH264(t, func(pts, dts int64, au [][]byte) error {
				// unwrap DTS first: it never runs ahead of PTS.
				d := unwrap(dts)
				p := d + time.Duration(pts-dts)*time.Second/90000
				au = withoutAUD(au)
				if len(au) == 0 {
					return nil
				}
				emit(outputFrame{video: true, pts: p, dts: d, key: h264.IsRandomAccess(au), nalus: au})
				return nil
			})
		case *mpegts.CodecMPEG4Audio:
			if haveAudio {
				continue
			}
			haveAudio = true
			rate := c.Config.SampleRate
			tr.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) error {
				p := unwrap(pts)
				for i, au := range aus {
					at := p
					if rate > 0 {
						at += time.Duration(i) * 1024 * time.Second / time.Duration(rate)
					}
					emit(outputFrame{pts: at, dts: at, key: true, nalus: [][]byte{au}})
				}
				return nil
			})
		}
	}
	for {
		if err := tr.Read(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return fmt.Errorf("transcode: reading ffmpeg output: %w", err)
		}
	}
}

// withoutAUD drops access unit delimiters: the packager writes its own.
func withoutAUD(au [][]byte) [][]byte {
	out := au[:0]
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) != h264.NALUTypeAccessUnitDelimiter {
			out = append(out, n)
		}
	}
	return out
}
