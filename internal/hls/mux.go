package hls

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astits"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

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
	// writeID3 adds a timed ID3 tag presented at pts (TS: a PES of the
	// ID3 stream; fMP4: an emsg box before the part's moof).
	writeID3(pts time.Duration, tag []byte) error
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

// tsMuxer keeps one MPEG-TS muxer for the whole stream so continuity
// counters run across parts; that makes the concatenated parts of a segment
// byte-identical to the segment and lets players that fetch segments after
// parts (or the reverse) see one continuous stream. It drives astits
// directly (as mediacommon's writer does) because it also carries timed
// ID3, which mediacommon's writer cannot declare.
type tsMuxer struct {
	buf      bytes.Buffer
	mux      *astits.Muxer
	videoPID uint16 // 0: no such stream
	audioPID uint16
	id3PID   uint16
	pcrPID   uint16
	pcrCount int
	audio    mpeg4audio.AudioSpecificConfig
	// paramSets are the track's SPS and PPS: a TS decoder (hls.js, a
	// browser) learns them only in-band, so every IDR access unit carries
	// them, as encoders writing TS do.
	paramSets [][]byte
}

// PES stream ids and the PCR lead of the TS muxer (ISO/IEC 13818-1).
const (
	tsStreamIDVideo   = 0xE0
	tsStreamIDAudio   = 0xC0
	tsStreamIDPrivate = 0xBD // private_stream_1: timed ID3 (Apple's HLS timed metadata)
	tsPCRLead         = 90000 / 10
)

// id3MetadataDescriptor declares a PES stream of ID3 tags (metadata
// descriptor, tag 0x26, with "ID3 " as application and format), as Apple's
// "Timed Metadata for HTTP Live Streaming" and ffmpeg's timed_id3 write it.
var id3MetadataDescriptor = []byte{
	0xFF, 0xFF, 'I', 'D', '3', ' ', // metadata_application_format: registered, "ID3 "
	0xFF, 'I', 'D', '3', ' ', // metadata_format: registered, "ID3 "
	0x00, // metadata_service_id
	0x0F, // decoder_config_flags 000, DSM-CC flag 0, reserved 1111
}

func newTSMuxer(video, audio *media.Track, id3 bool) (*tsMuxer, error) {
	m := &tsMuxer{}
	m.mux = astits.NewMuxer(context.Background(), &m.buf)
	pid := uint16(256)
	add := func(es astits.PMTElementaryStream) (uint16, error) {
		es.ElementaryPID = pid
		pid++
		return es.ElementaryPID, m.mux.AddElementaryStream(es)
	}
	var err error
	if video != nil {
		if len(video.SPS) > 0 && len(video.PPS) > 0 {
			m.paramSets = [][]byte{video.SPS, video.PPS}
		}
		if m.videoPID, err = add(astits.PMTElementaryStream{StreamType: astits.StreamTypeH264Video}); err != nil {
			return nil, err
		}
	}
	if audio != nil {
		if err := m.audio.Unmarshal(audio.AudioConfig); err != nil {
			return nil, fmt.Errorf("hls: audio config: %w", err)
		}
		if m.audioPID, err = add(astits.PMTElementaryStream{StreamType: astits.StreamTypeAACAudio}); err != nil {
			return nil, err
		}
	}
	if id3 {
		desc := bytes.Clone(id3MetadataDescriptor)
		if m.id3PID, err = add(astits.PMTElementaryStream{
			StreamType: astits.StreamTypeMetadata,
			ElementaryStreamDescriptors: []*astits.Descriptor{{
				Tag: 0x26, Length: uint8(len(desc)), Unknown: &astits.DescriptorUnknown{Tag: 0x26, Content: desc},
			}},
		}); err != nil {
			return nil, err
		}
	}
	// The PCR rides on the video, or the audio of an audio-only stream.
	m.pcrPID = m.videoPID
	if m.pcrPID == 0 {
		m.pcrPID = m.audioPID
	}
	if m.pcrPID == 0 {
		return nil, errors.New("hls: a TS stream needs video or audio")
	}
	m.mux.SetPCRPID(m.pcrPID)
	return m, nil
}

func (m *tsMuxer) init() []byte { return nil }

func (m *tsMuxer) beginPart(independent bool) error {
	// A random-access PCR packet makes astits emit PAT/PMT itself (every
	// video keyframe); every other part needs them explicitly to stand
	// alone.
	if independent && m.videoPID != 0 {
		return nil
	}
	_, err := m.mux.WriteTables()
	return err
}

func (m *tsMuxer) write(f *media.Frame, video bool) error {
	if len(f.NALUs) == 0 {
		return nil
	}
	if video {
		if m.videoPID == 0 {
			return nil
		}
		au := f.NALUs
		if f.Key && len(m.paramSets) > 0 && !hasSPS(au) {
			au = append(append(make([][]byte, 0, len(au)+2), m.paramSets...), au...)
		}
		if au[0][0]&0x1f != byte(h264.NALUTypeAccessUnitDelimiter) {
			// An AUD first: video.js, iOS and QuickTime want it.
			au = append([][]byte{{byte(h264.NALUTypeAccessUnitDelimiter), 0xF0}}, au...)
		}
		data, err := h264.AnnexB(au).Marshal()
		if err != nil {
			return err
		}
		return m.writePES(m.videoPID, tsStreamIDVideo, to90k(f.PTS), to90k(f.DTS), h264.IsRandomAccess(au), data)
	}
	if m.audioPID == 0 {
		return nil
	}
	pkts := mpeg4audio.ADTSPackets{{
		Type: m.audio.Type, SampleRate: m.audio.SampleRate, ChannelConfig: m.audio.ChannelConfig,
		ChannelCount: m.audio.ChannelCount, //nolint:staticcheck // what ADTS needs for PCE-configured audio
		AU:           f.NALUs[0],
	}}
	data, err := pkts.Marshal()
	if err != nil {
		return err
	}
	pts := to90k(f.PTS)
	return m.writePES(m.audioPID, tsStreamIDAudio, pts, pts, true, data)
}

// writeID3 adds one ID3 tag presented at pts.
func (m *tsMuxer) writeID3(pts time.Duration, tag []byte) error {
	if m.id3PID == 0 {
		return nil
	}
	p := to90k(pts)
	return m.writePES(m.id3PID, tsStreamIDPrivate, p, p, false, tag)
}

// writePES writes one access unit as a PES packet, with a PCR on the PCR
// stream at random access points and every third packet otherwise.
func (m *tsMuxer) writePES(pid uint16, streamID uint8, pts, dts int64, randomAccess bool, data []byte) error {
	var af *astits.PacketAdaptationField
	if randomAccess {
		af = &astits.PacketAdaptationField{RandomAccessIndicator: true}
	}
	if pid == m.pcrPID {
		if randomAccess || m.pcrCount == 0 {
			if af == nil {
				af = &astits.PacketAdaptationField{}
			}
			af.HasPCR = true
			af.PCR = &astits.ClockReference{Base: dts - tsPCRLead}
			m.pcrCount = 3
		}
		m.pcrCount--
	}
	oh := &astits.PESOptionalHeader{MarkerBits: 2, DataAlignmentIndicator: streamID == tsStreamIDPrivate}
	if dts == pts {
		oh.PTSDTSIndicator, oh.PTS = astits.PTSDTSIndicatorOnlyPTS, &astits.ClockReference{Base: pts}
	} else {
		oh.PTSDTSIndicator = astits.PTSDTSIndicatorBothPresent
		oh.PTS, oh.DTS = &astits.ClockReference{Base: pts}, &astits.ClockReference{Base: dts}
	}
	_, err := m.mux.WriteData(&astits.MuxerData{
		PID: pid, AdaptationField: af,
		PES: &astits.PESData{Header: &astits.PESHeader{StreamID: streamID, OptionalHeader: oh}, Data: data},
	})
	return err
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
	emsgID     uint32

	// The last video frame waits for its successor to learn its duration.
	pending    *media.Frame
	lastDur    time.Duration
	videoBase  time.Duration
	videoSamps []*fmp4.Sample
	audioBase  time.Duration
	audioSamps []*fmp4.Sample
	haveAudio  bool
	haveVideo  bool
	// ID3 tags of the part being built, and its earliest presentation
	// time (partStart: no frame of it yet).
	id3s       []pendingID3
	partStart  bool
	partMinPTS time.Duration
}

type pendingID3 struct {
	pts time.Duration
	tag []byte
}

// The emsg schemes of ID3 tags: AOM's "ID3 Timed Metadata in CMAF", which
// hls.js and Safari read, and the one the IVS player reads.
const (
	id3Scheme     = "https://aomedia.org/emsg/ID3"
	ivsID3Scheme  = "urn:twitch:id3"
	emsgTimescale = 90000
)

// writeID3 queues a tag for the emsg boxes that go before the part's moof.
func (m *fmp4Muxer) writeID3(pts time.Duration, tag []byte) error {
	m.id3s = append(m.id3s, pendingID3{pts, tag})
	return nil
}

// appendEmsgs writes each queued tag twice: a version 1 emsg with the
// AOM scheme and the absolute presentation time on the video's 90 kHz
// clock (hls.js, Safari), and a version 0 emsg with the IVS player's
// scheme, timed as a delta from the earliest presentation time of the
// fragment (moof) it precedes, which is how the IVS player reads it.
func (m *fmp4Muxer) appendEmsgs(b []byte) []byte {
	box := func(b []byte, body func([]byte) []byte) []byte {
		start := len(b)
		b = body(append(b, 0, 0, 0, 0, 'e', 'm', 's', 'g'))
		binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
		return b
	}
	for _, t := range m.id3s {
		m.emsgID++
		b = box(b, func(b []byte) []byte {
			b = append(b, 1, 0, 0, 0)
			b = binary.BigEndian.AppendUint32(b, emsgTimescale)
			b = binary.BigEndian.AppendUint64(b, uint64(to90k(t.pts)))
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF) // duration unknown
			b = binary.BigEndian.AppendUint32(b, m.emsgID)
			b = append(b, id3Scheme...)
			b = append(b, 0, 0) // scheme and value strings end; the value is empty
			return append(b, t.tag...)
		})
		b = box(b, func(b []byte) []byte {
			b = append(b, 0, 0, 0, 0)
			b = append(b, ivsID3Scheme...)
			b = append(b, 0, 0)
			b = binary.BigEndian.AppendUint32(b, emsgTimescale)
			delta := max(t.pts-m.partMinPTS, 0) + time.Second/(2*emsgTimescale) // rounded to the nearest tick
			b = binary.BigEndian.AppendUint32(b, uint32(int64(delta)*emsgTimescale/int64(time.Second)))
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
			b = binary.BigEndian.AppendUint32(b, m.emsgID)
			return append(b, t.tag...)
		})
	}
	m.id3s = m.id3s[:0]
	return b
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

func (m *fmp4Muxer) beginPart(bool) error {
	m.partStart = true
	return nil
}

func (m *fmp4Muxer) write(f *media.Frame, video bool) error {
	// The part's earliest presentation time, on the video when there is
	// video (what the IVS player's emsg deltas count from).
	if lead := video || m.videoID == 0; lead && (m.partStart || f.PTS < m.partMinPTS) {
		m.partMinPTS, m.partStart = f.PTS, false
	}
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
		m.id3s = m.id3s[:0]
		return nil, nil
	}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("hls: fmp4 part: %w", err)
	}
	if len(m.id3s) > 0 {
		return append(m.appendEmsgs(nil), buf.Bytes()...), nil
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
