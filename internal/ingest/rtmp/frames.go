package rtmp

import (
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
)

// frameWriter turns gortmplib's per-codec callbacks into media.Frames.
// Callbacks run synchronously inside Reader.Read, so it needs no locking;
// the first WriteFrame error is kept for the read loop to act on.
type frameWriter struct {
	stream ingest.Stream
	wall   func() time.Time

	// base is the first frame's DTS: media.Frame times count from the
	// stream's first frame, whatever the encoder's clock started at.
	base     time.Duration
	haveBase bool
	// params holds parameter sets that arrived without a picture (a
	// sequence header mid-stream), to travel with the next access unit.
	params map[int][][]byte
	// captions and texts came in data messages (see inband.go) and wait
	// for the next video access unit.
	captions []media.CCTriplet
	texts    []string
	// h264 marks the H.264 tracks, the ones captions can be carried in.
	h264 map[int]bool
	err  error
}

// data takes an in-band data message; what it carries goes out with the
// next picture.
func (w *frameWriter) data(d inbandData) {
	if n := len(w.captions) + len(d.captions); n > maxPendingCaptions {
		// No picture to carry them for a long while: keep the newest.
		w.captions = w.captions[min(len(w.captions), n-maxPendingCaptions):]
	}
	w.captions = append(w.captions, d.captions...)
	if d.hasText && len(w.texts) < maxPendingTexts {
		w.texts = append(w.texts, d.text)
	}
}

func (w *frameWriter) write(track int, pts, dts time.Duration, key bool, nalus [][]byte) {
	if w.err != nil {
		return
	}
	// Frames replayed from gortmplib's discovery buffer arrive without a
	// network read, so the read loop alone would not stop them in time.
	select {
	case <-w.stream.Done():
		w.err = errEndedByLive
		return
	default:
	}
	if !w.haveBase {
		w.base, w.haveBase = dts, true
	}
	w.err = w.stream.WriteFrame(&media.Frame{
		Track: track,
		PTS:   pts - w.base,
		DTS:   dts - w.base,
		Wall:  w.wall(),
		Key:   key,
		NALUs: nalus,
	})
}

// register installs a callback for every track, including codecs openivs
// refuses: gortmplib calls a nil callback if one is missing, and should
// admission ever accept such a codec its frames still flow.
func (w *frameWriter) register(r *gortmplib.Reader, tracks []*gortmplib.Track) {
	w.params = make(map[int][][]byte)
	w.h264 = make(map[int]bool)
	for i, t := range tracks {
		switch t.Codec.(type) {
		case *codecs.H264:
			w.h264[i] = true
			r.OnDataH264(t, func(pts, dts time.Duration, au [][]byte) {
				w.video(i, pts, dts, au, h264IsVCL, h264IsIDR)
			})
		case *codecs.H265:
			r.OnDataH265(t, func(pts, dts time.Duration, au [][]byte) {
				w.video(i, pts, dts, au, h265IsVCL, h265IsIRAP)
			})
		case *codecs.AV1:
			r.OnDataAV1(t, func(pts time.Duration, tu [][]byte) {
				w.write(i, pts, pts, false, tu)
			})
		case *codecs.VP9:
			r.OnDataVP9(t, func(pts time.Duration, frame []byte) {
				w.write(i, pts, pts, false, [][]byte{frame})
			})
		case *codecs.MPEG4Audio:
			r.OnDataMPEG4Audio(t, w.audio(i))
		case *codecs.Opus:
			r.OnDataOpus(t, w.audio(i))
		case *codecs.MPEG1Audio:
			r.OnDataMPEG1Audio(t, w.audio(i))
		case *codecs.AC3:
			r.OnDataAC3(t, w.audio(i))
		case *codecs.FLAC:
			r.OnDataFLAC(t, w.audio(i))
		case *codecs.G711:
			r.OnDataG711(t, w.audio(i))
		case *codecs.LPCM:
			r.OnDataLPCM(t, w.audio(i))
		}
	}
}

func (w *frameWriter) audio(track int) func(pts time.Duration, au []byte) {
	return func(pts time.Duration, au []byte) {
		if len(au) == 0 {
			return
		}
		w.write(track, pts, pts, false, [][]byte{au})
	}
}

// video writes one access unit. gortmplib also reports sequence headers as
// "access units" made of SPS/PPS only; those are held back and prepended to
// the next picture so every Frame is a picture and in-band parameter set
// changes still reach the packager.
func (w *frameWriter) video(track int, pts, dts time.Duration, au [][]byte,
	isVCL func([]byte) bool, isKey func([]byte) bool,
) {
	hasVCL, key := false, false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		hasVCL = hasVCL || isVCL(n)
		key = key || isKey(n)
	}
	if !hasVCL {
		if len(au) > 0 {
			w.params[track] = au
		}
		return
	}
	if p := w.params[track]; p != nil {
		au = append(append(make([][]byte, 0, len(p)+len(au)), p...), au...)
		delete(w.params, track)
	}
	if len(w.captions) > 0 && w.h264[track] {
		// onCaptionInfo captions become A/53 SEI in the picture.
		if sei := media.CaptionSEI(w.captions); sei != nil {
			au = media.WithCaptions(au, sei)
		}
		w.captions = nil
	}
	w.write(track, pts, dts, key, au)
	for _, text := range w.texts {
		if w.err == nil {
			w.err = w.stream.WriteMetadata(text)
		}
	}
	w.texts = nil
}

func h264IsVCL(n []byte) bool { t := n[0] & 0x1f; return t >= 1 && t <= 5 }
func h264IsIDR(n []byte) bool { return n[0]&0x1f == 5 }
func h265IsVCL(n []byte) bool { return (n[0]>>1)&0x3f <= 31 }

// h265IsIRAP: BLA, IDR and CRA pictures (types 16–21) are random-access
// points.
func h265IsIRAP(n []byte) bool { t := (n[0] >> 1) & 0x3f; return t >= 16 && t <= 21 }

// trackSummary is a log-friendly one-liner of the tracks.
func trackSummary(tracks []media.Track) string {
	parts := make([]string, len(tracks))
	for i, t := range tracks {
		switch t.Kind {
		case media.Video:
			parts[i] = fmt.Sprintf("%s %s %s %dx%d", t.Codec, t.CodecString, t.Profile, t.Width, t.Height)
		default:
			parts[i] = fmt.Sprintf("%s %s %d Hz %d ch", t.Codec, t.CodecString, t.SampleRate, t.Channels)
		}
	}
	return strings.Join(parts, ", ")
}
