package hls

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/openivs/openivs/internal/media"
)

// plainMinSegment keeps plain-HLS segments from following a very short GOP
// down to sub-second sizes, which would only multiply requests.
const plainMinSegment = time.Second

// Audio-only streams have a random-access point every frame, so their
// segment length is a choice: about one GOP of the usual 1 s (LL) or 2 s
// (plain) ingest keyframe interval, matching the video renditions.
const (
	audioSegmentLL    = time.Second
	audioSegmentPlain = 2 * time.Second
)

// builder is the Run goroutine's cutting state: it decides where parts
// and segments begin and hands finished parts to the Packager. Parts are
// delimited by frames of the lead track (video, or audio when there is
// none); other tracks' frames follow into whatever part is open.
type builder struct {
	p       *Packager
	mux     muxer
	video   *media.Track
	audio   *media.Track
	id3     *media.Track
	lead    int
	started bool

	inPart      bool
	partStart   time.Duration // DTS of the part's first lead frame
	partVideo   int           // video frames in the open part
	partIndep   bool
	segOpen     bool
	segDur      time.Duration // published duration of the open segment
	newSeg      *segment      // segment to open with the next published part
	lastLeadDTS time.Duration
	frameDur    time.Duration
	// pendingDisc carries a Discontinuity seen on a non-lead frame to the
	// next lead frame, where segments can be cut.
	pendingDisc bool
	initVersion int
}

func newBuilder(p *Packager) (*builder, error) {
	b := &builder{p: p, lead: -1, frameDur: time.Second / 30}
	for _, t := range p.hub.Tracks() {
		switch {
		case t.Kind == media.Video && b.video == nil:
			if t.Codec != media.CodecH264 {
				return nil, fmt.Errorf("hls: video codec %s not supported", t.Codec)
			}
			b.video = &t
			b.lead = t.ID
		case t.Kind == media.Data && t.Codec == media.CodecID3 && b.id3 == nil:
			b.id3 = &t
		case t.Kind == media.Audio && b.audio == nil:
			if t.Codec != media.CodecAAC {
				return nil, fmt.Errorf("hls: audio codec %s not supported", t.Codec)
			}
			b.audio = &t
		}
	}
	if b.lead < 0 && b.audio != nil {
		b.lead = b.audio.ID
	}
	if b.lead < 0 {
		return nil, errors.New("hls: stream has no H.264 or AAC track")
	}
	return b, nil
}

// start builds the muxer at the first keyframe, which is also where the
// SPS/PPS come from when ingest did not put them on the track.
func (b *builder) start(f *media.Frame) error {
	if b.video != nil && (len(b.video.SPS) == 0 || len(b.video.PPS) == 0) {
		sps, pps := media.ParameterSets(f.NALUs)
		if sps != nil {
			b.video.SetH264SPS(sps)
		}
		if pps != nil {
			b.video.PPS = pps
		}
		if len(b.video.SPS) == 0 || len(b.video.PPS) == 0 {
			return errors.New("hls: first keyframe lacks SPS/PPS")
		}
	}
	var err error
	if b.p.opts.Container == ContainerFMP4 {
		b.mux, err = newFMP4Muxer(b.video, b.audio)
	} else {
		b.mux, err = newTSMuxer(b.video, b.audio, b.id3 != nil)
	}
	if err != nil {
		return err
	}
	var tracks []media.Track
	if b.video != nil {
		tracks = append(tracks, *b.video)
	}
	if b.audio != nil {
		tracks = append(tracks, *b.audio)
	}
	b.p.mu.Lock()
	b.p.inits[b.initVersion] = b.mux.init()
	b.p.info.Codecs = codecsOf(tracks)
	if b.video != nil {
		b.p.info.Width, b.p.info.Height = b.video.Width, b.video.Height
	}
	b.p.mu.Unlock()
	b.started = true
	return nil
}

func (b *builder) add(f *media.Frame) error {
	isVideo := b.video != nil && f.Track == b.video.ID
	isAudio := b.audio != nil && f.Track == b.audio.ID
	if b.id3 != nil && f.Track == b.id3.ID {
		if !b.inPart || len(f.NALUs) == 0 {
			return nil // nothing playable to attach it to yet
		}
		return b.mux.writeID3(f.PTS, f.NALUs[0])
	}
	if !isVideo && !isAudio {
		return nil // other data tracks are not packaged
	}
	if f.Track != b.lead {
		b.pendingDisc = b.pendingDisc || f.Discontinuity
		if !b.inPart {
			return nil // audio before the first keyframe has nothing to follow
		}
		return b.mux.write(f, isVideo)
	}
	if b.pendingDisc && !f.Discontinuity {
		g := *f
		g.Discontinuity = true
		f = &g
	}
	b.pendingDisc = false
	key := f.Key || !isVideo
	if !b.started {
		if !key {
			return nil
		}
		if err := b.start(f); err != nil {
			return err
		}
	}
	if b.inPart {
		elapsed := f.DTS - b.partStart
		if f.Discontinuity || elapsed < 0 || elapsed > b.p.opts.MaxSegment+time.Second {
			// Media time jumped: measure from the last frame instead.
			elapsed = b.lastLeadDTS + b.frameDur - b.partStart
		} else if d := f.DTS - b.lastLeadDTS; d > 0 && d <= time.Second {
			b.frameDur = d
		}
		segElapsed := b.segDur + elapsed
		minSeg := b.p.opts.PartTarget
		switch {
		case !isVideo && b.p.opts.LowLatency:
			minSeg = audioSegmentLL
		case !isVideo:
			minSeg = audioSegmentPlain
		case !b.p.opts.LowLatency:
			minSeg = plainMinSegment
		}
		cutSeg := f.Discontinuity || (key && segElapsed >= minSeg) || segElapsed >= b.p.opts.MaxSegment
		cutPart := cutSeg || (b.p.opts.LowLatency && elapsed+b.frameDur > b.p.opts.partLimit())
		if cutPart {
			if err := b.closePart(elapsed, f.DTS, !f.Discontinuity); err != nil {
				return err
			}
		}
		if cutSeg {
			b.closeSegment()
		}
	}
	if !b.inPart && f.Discontinuity && isVideo && key && b.p.opts.Container == ContainerFMP4 {
		if err := b.renewInit(f); err != nil {
			return err
		}
	}
	opening := false // this frame opens a segment
	if !b.inPart {
		if !b.segOpen {
			opening = true
			pdt := f.Wall
			if pdt.IsZero() {
				pdt = b.p.opts.Now()
			}
			b.newSeg = &segment{pdt: pdt, discontinuity: f.Discontinuity, independent: key, initVersion: b.initVersion}
			if isVideo && f.Key && b.p.opts.OnSegment != nil {
				// Hub frames are not written to after they are shared.
				b.newSeg.keyframe, b.newSeg.sps, b.newSeg.pps = f.NALUs, b.video.SPS, b.video.PPS
				b.newSeg.width, b.newSeg.height = b.video.Width, b.video.Height
			}
			b.segOpen, b.segDur = true, 0
		}
		if err := b.mux.beginPart(key); err != nil {
			return err
		}
		b.inPart, b.partStart, b.partIndep, b.partVideo = true, f.DTS, key, 0
	}
	b.lastLeadDTS = f.DTS
	if isVideo {
		b.partVideo++
	}
	if err := b.mux.write(f, isVideo); err != nil {
		return err
	}
	if opening && b.id3 != nil && b.p.opts.Container != ContainerFMP4 {
		// After the segment's first frame, so its PAT/PMT come first.
		return b.mux.writeID3(f.PTS, media.SegmentMetadataID3(f.PTS))
	}
	return nil
}

// renewInit starts a new fMP4 init section when a takeover brings other
// parameter sets: the sample entry must describe the new encoder's SPS,
// and TS needs nothing since its parameter sets travel in-band.
func (b *builder) renewInit(f *media.Frame) error {
	v := *b.video
	sps, pps := media.ParameterSets(f.NALUs)
	if sps == nil || pps == nil || (bytes.Equal(sps, v.SPS) && bytes.Equal(pps, v.PPS)) {
		return nil
	}
	if !v.SetH264SPS(sps) {
		return errors.New("hls: takeover SPS does not parse")
	}
	v.PPS = pps
	mux, err := newFMP4Muxer(&v, b.audio)
	if err != nil {
		return err
	}
	b.video, b.mux = &v, mux
	b.initVersion++
	b.p.mu.Lock()
	b.p.inits[b.initVersion] = mux.init()
	tracks := []media.Track{v}
	if b.audio != nil {
		tracks = append(tracks, *b.audio)
	}
	b.p.info.Codecs = codecsOf(tracks)
	b.p.info.Width, b.p.info.Height = v.Width, v.Height
	b.p.mu.Unlock()
	return nil
}

func (b *builder) closePart(dur, next time.Duration, haveNext bool) error {
	data, err := b.mux.endPart(next, haveNext)
	if err != nil {
		return err
	}
	b.inPart = false
	if dur <= 0 {
		dur = b.frameDur
	}
	b.p.publishPart(&part{data: data, dur: dur, independent: b.partIndep}, b.newSeg, b.partVideo)
	b.newSeg = nil
	b.segDur += dur
	return nil
}

func (b *builder) closeSegment() {
	b.p.completeSegment()
	b.segOpen = false
}

// finish flushes the open part and segment when the stream ends.
func (b *builder) finish() error {
	if !b.inPart {
		return nil
	}
	err := b.closePart(b.lastLeadDTS+b.frameDur-b.partStart, 0, false)
	b.closeSegment()
	return err
}
