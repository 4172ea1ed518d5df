package srt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/openivs/openivs/internal/media"
)

const (
	tsPacketSize = 188
	tsSyncByte   = 0x47
	// tsClockRate is the 90 kHz MPEG-TS PTS/DTS clock.
	tsClockRate = 90000
	// aacSamplesPerFrame: ADTS can only carry 1024-sample AAC frames.
	aacSamplesPerFrame = 1024

	// maxSyncLosses and maxSyncLossPercent bound how much of the input may
	// be out of MPEG-TS packet sync. mediacommon silently hunts for sync
	// bytes, so without this a peer sending non-TS bytes would be read
	// forever; a healthy SRT feed carries whole TS packets (7x188 per SRT
	// packet) and loses sync essentially never, even when SRT drops packets.
	maxSyncLosses      = 16
	maxSyncLossPercent = 2
	// maxDecodeErrors is how many demux errors in a row (without one good
	// access unit in between) are taken as a broken stream.
	maxDecodeErrors = 32
)

// errNotTS reports input that is not (or no longer) an MPEG-TS stream.
var errNotTS = errors.New("srt: input is not MPEG-TS")

// frameSink receives what demux makes of a stream: the tracks once, then the
// frames. An error from either ends demux with that error.
type frameSink interface {
	start(tracks []media.Track) error
	frame(f *media.Frame) error
}

// demux reads an MPEG-TS byte stream from r until r fails or the stream is
// found malformed, reporting the tracks and then every H.264 access unit and
// AAC frame to sink. Wall times come from now.
//
// Start is held back until every H.264 track has shown its SPS and PPS and an
// IDR arrives, because the track description the live side admits on
// (resolution, profile, codec string) lives in those parameter sets; frames
// before that IDR are dropped, so the stream begins decodable. Timestamps are
// made relative to the DTS of the first frame handed on; audio that is older
// than that first frame is dropped rather than given a negative time.
func demux(r io.Reader, sink frameSink, now func() time.Time) error {
	guard := &syncGuard{r: r}
	tr := &mpegts.Reader{R: guard}
	if err := tr.Initialize(); err != nil {
		if guard.err != nil {
			return guard.err
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("srt: stream ended before its MPEG-TS program was found: %w", err)
		}
		return fmt.Errorf("%w: %w", errNotTS, err)
	}

	d := &demuxer{sink: sink, now: now}
	for _, t := range tr.Tracks() {
		mt, ok := trackFromTS(t)
		if !ok {
			// Data streams (KLV, subtitles, SCTE-35, unknown types) are not
			// media openivs can carry; leaving them out keeps them from
			// turning an otherwise fine stream away at admission.
			continue
		}
		mt.ID = len(d.tracks)
		d.tracks = append(d.tracks, trackState{Track: mt})
		idx := mt.ID
		switch c := t.Codec.(type) {
		case *mpegts.CodecH264:
			d.needParams = true
			tr.OnDataH264(t, func(pts, dts int64, au [][]byte) error {
				return d.onH264(idx, pts, dts, au)
			})
		case *mpegts.CodecMPEG4Audio:
			sampleRate := c.Config.SampleRate
			tr.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) error {
				return d.onAAC(idx, sampleRate, pts, aus)
			})
		}
	}
	tr.OnDecodeError(func(err error) {
		d.decodeErrs++
		d.lastDecodeErr = err
	})
	if len(d.tracks) == 0 {
		return fmt.Errorf("%w: the program has no audio or video stream", errNotTS)
	}
	if !d.needParams {
		// Nothing to wait for: the tracks say all that can be said, and a
		// codec the live side refuses should be refused at once.
		if err := d.begin(); err != nil {
			return err
		}
	}

	for {
		if err := tr.Read(); err != nil {
			if guard.err != nil {
				return guard.err
			}
			return err
		}
		if d.decodeErrs > maxDecodeErrors {
			return fmt.Errorf("%w: %d demux errors in a row, last: %w", errNotTS, d.decodeErrs, d.lastDecodeErr)
		}
	}
}

// trackState is a track plus what demux learns about it on the way.
type trackState struct {
	media.Track
	paramsOK bool // H.264: SPS and PPS seen and understood
}

// demuxer turns mediacommon's per-track callbacks into media frames.
type demuxer struct {
	sink       frameSink
	now        func() time.Time
	tracks     []trackState
	needParams bool // some H.264 track must show SPS/PPS before start
	started    bool

	clock   mpegts.TimeDecoder // unwraps the 33-bit clock, shared by all tracks
	base    int64              // unwrapped DTS of the first frame handed on
	hasBase bool

	decodeErrs    int
	lastDecodeErr error
}

func (d *demuxer) begin() error {
	d.started = true
	tracks := make([]media.Track, len(d.tracks))
	for i, t := range d.tracks {
		tracks[i] = t.Track
	}
	return d.sink.start(tracks)
}

func (d *demuxer) onH264(idx int, pts, dts int64, au [][]byte) error {
	d.decodeErrs = 0
	t := &d.tracks[idx]
	key := false
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			if !d.started {
				t.setSPS(nalu)
			}
		case h264.NALUTypePPS:
			if !d.started {
				t.PPS = bytes.Clone(nalu)
				t.paramsOK = t.Width > 0 && len(t.PPS) > 0
			}
		case h264.NALUTypeIDR:
			key = true
		}
	}
	// Unwrap the clock for every AU, emitted or not, so it stays continuous.
	udts, upts := d.unwrap(dts, pts)
	if !d.started {
		if !key || !d.paramsReady() {
			return nil
		}
		if err := d.begin(); err != nil {
			return err
		}
	}
	return d.emit(idx, upts, udts, key, au)
}

// setSPS records an SPS and what it says; one that does not parse leaves
// the track waiting for the next.
func (t *trackState) setSPS(nalu []byte) {
	if !t.SetH264SPS(nalu) {
		return
	}
	t.paramsOK = len(t.PPS) > 0
}

func (d *demuxer) paramsReady() bool {
	for _, t := range d.tracks {
		if t.Codec == media.CodecH264 && !t.paramsOK {
			return false
		}
	}
	return true
}

func (d *demuxer) onAAC(idx, sampleRate int, pts int64, aus [][]byte) error {
	d.decodeErrs = 0
	upts, _ := d.unwrap(pts, pts)
	if !d.started || sampleRate <= 0 {
		return nil
	}
	for i, au := range aus {
		// An ADTS PES carries several frames under one PTS; each next frame
		// starts 1024 samples later.
		off := int64(i) * aacSamplesPerFrame * tsClockRate / int64(sampleRate)
		if err := d.emit(idx, upts+off, upts+off, false, [][]byte{au}); err != nil {
			return err
		}
	}
	return nil
}

// unwrap turns raw 33-bit DTS/PTS into a continuous 90 kHz timeline.
func (d *demuxer) unwrap(dts, pts int64) (udts, upts int64) {
	udts = d.clock.Decode(dts)
	// PTS is DTS plus a small reorder delay; take the delay modulo 2^33 so a
	// wrap between the two does not matter, and clamp a bogus negative one.
	delta := (pts - dts) & 0x1FFFFFFFF
	if delta > 0x1FFFFFFFF/2 {
		delta = 0
	}
	return udts, udts + delta
}

func (d *demuxer) emit(idx int, pts, dts int64, key bool, nalus [][]byte) error {
	if !d.hasBase {
		d.base, d.hasBase = dts, true
	}
	if dts < d.base {
		return nil
	}
	return d.sink.frame(&media.Frame{
		Track: idx,
		PTS:   ticksToDuration(pts - d.base),
		DTS:   ticksToDuration(dts - d.base),
		Wall:  d.now(),
		Key:   key,
		NALUs: nalus,
	})
}

// ticksToDuration converts 90 kHz ticks without overflowing on long streams.
func ticksToDuration(t int64) time.Duration {
	return time.Duration(t/tsClockRate)*time.Second + time.Duration(t%tsClockRate)*time.Second/tsClockRate
}

// trackFromTS describes a TS elementary stream as a media track; ok is false
// for streams that are neither audio nor video. Codecs openivs does not take
// are still described, so admission can say what arrived.
func trackFromTS(t *mpegts.Track) (media.Track, bool) {
	switch c := t.Codec.(type) {
	case *mpegts.CodecH264:
		return media.Track{Kind: media.Video, Codec: media.CodecH264}, true
	case *mpegts.CodecH265:
		return media.Track{Kind: media.Video, Codec: media.CodecH265}, true
	case *mpegts.CodecMPEG4Video, *mpegts.CodecMPEG1Video:
		return media.Track{Kind: media.Video, Codec: media.CodecOther}, true
	case *mpegts.CodecMPEG4Audio:
		return media.AACTrack(c.Config), true
	case *mpegts.CodecOpus:
		return media.Track{Kind: media.Audio, Codec: media.CodecOpus, SampleRate: 48000, Channels: c.ChannelCount}, true
	case *mpegts.CodecMPEG1Audio:
		return media.Track{Kind: media.Audio, Codec: media.CodecMP3}, true
	case *mpegts.CodecAC3:
		return media.Track{Kind: media.Audio, Codec: media.CodecAC3, SampleRate: c.SampleRate, Channels: c.ChannelCount}, true
	case *codecs.EAC3:
		return media.Track{Kind: media.Audio, Codec: media.CodecOther, SampleRate: c.SampleRate, Channels: c.ChannelCount}, true
	case *mpegts.CodecMPEG4AudioLATM:
		// AAC, but in LATM framing that would need its own unpacking.
		return media.Track{Kind: media.Audio, Codec: media.CodecOther}, true
	}
	return media.Track{}, false
}

// syncGuard passes bytes through while following MPEG-TS packet sync, and
// fails the read once too much of the input is out of sync (see
// maxSyncLosses). The error is kept in err, since mediacommon may wrap or
// swallow what Read returns.
type syncGuard struct {
	r       io.Reader
	toNext  int  // bytes until the next sync byte is due; 0: the next byte
	hunting bool // looking for a sync byte after a loss
	good    int  // packets that started in sync
	lost    int  // times sync was lost
	err     error
}

func (g *syncGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	g.scan(p[:n])
	if g.lost >= maxSyncLosses && g.lost*100 > g.good*maxSyncLossPercent {
		g.err = fmt.Errorf("%w: lost packet sync %d times in %d packets", errNotTS, g.lost, g.good)
		return 0, g.err
	}
	return n, err
}

func (g *syncGuard) scan(b []byte) {
	for i := 0; i < len(b); {
		if g.hunting {
			j := bytes.IndexByte(b[i:], tsSyncByte)
			if j < 0 {
				return
			}
			i += j
			g.hunting, g.toNext = false, 0
		}
		if g.toNext == 0 {
			if b[i] != tsSyncByte {
				g.lost++
				g.hunting = true
				continue
			}
			g.good++
			g.toNext = tsPacketSize
		}
		step := min(g.toNext, len(b)-i)
		i += step
		g.toNext -= step
	}
}
