package hls

import (
	"bytes"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/openivs/openivs/internal/media"
)

// muxer turns frames into container bytes one part at a time. The packager
// decides where parts begin; the muxer only has to make every part playable
// on its own (TS: tables first; fMP4: a complete moof+mdat) while keeping
// the concatenation of a segment's parts a valid segment.
type muxer interface {
	// init is the initialization section (fMP4) or nil (TS).
	init() []byte
	// beginPart starts a part; independent says it opens with a keyframe.
	beginPart(independent bool) error
	// write adds one frame of the video (video=true) or audio track.
	write(f *media.Frame, video bool) error
	// endPart returns the finished part's bytes. next is the DTS of the
	// frame that starts the following part, when known, so the last
	// video sample gets an exact duration.
	endPart(next time.Duration, haveNext bool) ([]byte, error)
}

// tsClockOffset keeps 90 kHz timestamps positive: the writer puts the PCR
// 100 ms before the DTS, and B-frame streams may start with negative DTS.
const tsClockOffset = 10 * 90000

func to90k(d time.Duration) int64 {
	return int64(d)*90000/int64(time.Second) + tsClockOffset
}

// tsMuxer keeps one MPEG-TS writer for the whole stream so continuity
// counters run across parts; that makes the concatenated parts of a segment
// byte-identical to the segment and lets players that fetch segments after
// parts (or the reverse) see one continuous stream.
type tsMuxer struct {
	buf   bytes.Buffer
	w     *mpegts.Writer
	video *mpegts.Track
	audio *mpegts.Track
	// paramSets are the track's SPS and PPS: a TS decoder (hls.js, a
	// browser) learns them only in-band, so every IDR access unit carries
	// them, as encoders writing TS do.
	paramSets [][]byte
}

func newTSMuxer(video, audio *media.Track) (*tsMuxer, error) {
	m := &tsMuxer{}
	if video != nil && len(video.SPS) > 0 && len(video.PPS) > 0 {
		m.paramSets = [][]byte{video.SPS, video.PPS}
	}
	var tracks []*mpegts.Track
	if video != nil {
		m.video = &mpegts.Track{Codec: &tscodecs.H264{}}
		tracks = append(tracks, m.video)
	}
	if audio != nil {
		var conf mpeg4audio.AudioSpecificConfig
		if err := conf.Unmarshal(audio.AudioConfig); err != nil {
			return nil, fmt.Errorf("hls: audio config: %w", err)
		}
		m.audio = &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: conf}}
		tracks = append(tracks, m.audio)
	}
	m.w = &mpegts.Writer{W: &m.buf, Tracks: tracks}
	if err := m.w.Initialize(); err != nil {
		return nil, fmt.Errorf("hls: ts writer: %w", err)
	}
	return m, nil
}

func (m *tsMuxer) init() []byte { return nil }

func (m *tsMuxer) beginPart(independent bool) error {
	// A keyframe on the PCR track makes the writer emit PAT/PMT itself;
	// every other part needs them explicitly to stand alone.
	if independent && m.video != nil {
		return nil
	}
	_, err := m.w.WriteTables()
	return err
}

func (m *tsMuxer) write(f *media.Frame, video bool) error {
	if video {
		if m.video == nil || len(f.NALUs) == 0 {
			return nil
		}
		au := f.NALUs
		if f.Key && len(m.paramSets) > 0 && !hasSPS(au) {
			au = append(append(make([][]byte, 0, len(au)+2), m.paramSets...), au...)
		}
		return m.w.WriteH264(m.video, to90k(f.PTS), to90k(f.DTS), au)
	}
	if m.audio == nil || len(f.NALUs) == 0 {
		return nil
	}
	return m.w.WriteMPEG4Audio(m.audio, to90k(f.PTS), f.NALUs[:1])
}

func (m *tsMuxer) endPart(time.Duration, bool) ([]byte, error) {
	out := bytes.Clone(m.buf.Bytes())
	m.buf.Reset()
	return out, nil
}

// fmp4Muxer writes CMAF fragments: track 1 video at 90 kHz, track 2 (or 1
// without video) audio at its sample rate.
type fmp4Muxer struct {
	initBytes  []byte
	videoID    int
	audioID    int
	sampleRate int
	seq        uint32

	// The last video frame waits for its successor to learn its duration.
	pending    *media.Frame
	lastDur    time.Duration
	videoBase  time.Duration
	videoSamps []*fmp4.Sample
	audioBase  time.Duration
	audioSamps []*fmp4.Sample
	haveAudio  bool
	haveVideo  bool
}

func newFMP4Muxer(video, audio *media.Track) (*fmp4Muxer, error) {
	m := &fmp4Muxer{lastDur: time.Second / 30}
	var init fmp4.Init
	id := 1
	if video != nil {
		m.videoID = id
		id++
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{
			ID: m.videoID, TimeScale: 90000,
			Codec: &codecs.H264{SPS: video.SPS, PPS: video.PPS},
		})
	}
	if audio != nil {
		var conf mpeg4audio.AudioSpecificConfig
		if err := conf.Unmarshal(audio.AudioConfig); err != nil {
			return nil, fmt.Errorf("hls: audio config: %w", err)
		}
		m.audioID = id
		m.sampleRate = conf.SampleRate
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{
			ID: m.audioID, TimeScale: uint32(conf.SampleRate),
			Codec: &codecs.MPEG4Audio{Config: conf},
		})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("hls: fmp4 init: %w", err)
	}
	m.initBytes = buf.Bytes()
	return m, nil
}

func (m *fmp4Muxer) init() []byte { return m.initBytes }

func (m *fmp4Muxer) beginPart(bool) error { return nil }

func (m *fmp4Muxer) write(f *media.Frame, video bool) error {
	if video {
		if m.videoID == 0 || len(f.NALUs) == 0 {
			return nil
		}
		if m.pending != nil {
			if err := m.flushVideo(f.DTS - m.pending.DTS); err != nil {
				return err
			}
		}
		m.pending = f
		return nil
	}
	if m.audioID == 0 || len(f.NALUs) == 0 {
		return nil
	}
	if !m.haveAudio {
		m.audioBase, m.haveAudio = f.PTS, true
	}
	m.audioSamps = append(m.audioSamps, &fmp4.Sample{
		Duration: mpeg4audio.SamplesPerAccessUnit,
		Payload:  f.NALUs[0],
	})
	return nil
}

// flushVideo moves the pending frame into the current part with duration d.
func (m *fmp4Muxer) flushVideo(d time.Duration) error {
	f := m.pending
	m.pending = nil
	if d <= 0 || d > 10*time.Second {
		// A discontinuity or a stall; reuse the last sane frame duration.
		d = m.lastDur
	}
	m.lastDur = d
	var au [][]byte
	for _, n := range f.NALUs {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
			continue
		}
		au = append(au, n)
	}
	payload, err := h264.AVCC(au).Marshal()
	if err != nil {
		return fmt.Errorf("hls: avcc: %w", err)
	}
	if !m.haveVideo {
		m.videoBase, m.haveVideo = f.DTS, true
	}
	m.videoSamps = append(m.videoSamps, &fmp4.Sample{
		Duration:        uint32(int64(d) * 90000 / int64(time.Second)),
		PTSOffset:       int32(int64(f.PTS-f.DTS) * 90000 / int64(time.Second)),
		IsNonSyncSample: !f.Key,
		Payload:         payload,
	})
	return nil
}

func (m *fmp4Muxer) endPart(next time.Duration, haveNext bool) ([]byte, error) {
	if m.pending != nil {
		d := m.lastDur
		if haveNext {
			d = next - m.pending.DTS
		}
		if err := m.flushVideo(d); err != nil {
			return nil, err
		}
	}
	part := fmp4.Part{SequenceNumber: m.seq}
	m.seq++
	if len(m.videoSamps) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{
			ID:       m.videoID,
			BaseTime: uint64(to90k(m.videoBase)),
			Samples:  m.videoSamps,
		})
	}
	if len(m.audioSamps) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{
			ID:       m.audioID,
			BaseTime: uint64((int64(m.audioBase) + 10*int64(time.Second)) * int64(m.sampleRate) / int64(time.Second)),
			Samples:  m.audioSamps,
		})
	}
	m.videoSamps, m.audioSamps = nil, nil
	m.haveVideo, m.haveAudio = false, false
	if len(part.Tracks) == 0 {
		return nil, nil
	}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("hls: fmp4 part: %w", err)
	}
	return buf.Bytes(), nil
}

// hasSPS reports whether an access unit carries its own SPS.
func hasSPS(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && n[0]&0x1f == 7 {
			return true
		}
	}
	return false
}
