// Package hls owns live HLS delivery for one rendition: it packages a
// media.Hub's frames into LL-HLS parts and segments (MPEG-TS or CMAF/fMP4)
// kept in a bounded in-memory window, and serves the media playlist,
// init section, segments and parts over HTTP with blocking playlist reload
// and delta updates. It also renders the multivariant playlist that lists
// renditions. Routing, access control and CORS belong to the caller.
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openivs/openivs/internal/media"
)

// Container formats, spelled as the IVS containerFormat field.
const (
	ContainerTS   = "TS"
	ContainerFMP4 = "FRAGMENTED_MP4"
)

// Options tunes a Packager. The zero value gives TS, plain HLS, 4 s segment
// cap and a 6-segment window.
type Options struct {
	Container  string        // "TS" (default) or "FRAGMENTED_MP4"
	LowLatency bool          // LL-HLS parts (latencyMode LOW); false = plain HLS
	PartTarget time.Duration // default 200ms (IVS-like 200–333 ms)
	// MaxSegment caps segments for long GOPs: the segment is cut at the
	// next frame past it even without a keyframe, and that next segment is
	// then not independent.
	MaxSegment     time.Duration // default 4s
	WindowSegments int           // segments kept in memory and listed (default 6)
	Now            func() time.Time
	Logger         *slog.Logger // default slog.Default()
	// OnSegment, when set, receives every complete segment (recordings).
	// It runs on the packager's goroutine and must not block.
	OnSegment func(Segment)
}

// Segment is a complete media segment as OnSegment receives it: one GOP
// (cut at every keyframe; MaxSegment caps long ones).
type Segment struct {
	Seq             uint64
	Data            []byte // the segment's bytes, its parts concatenated
	Duration        time.Duration
	ProgramDateTime time.Time
	// Discontinuity marks a segment after a takeover within the stream.
	Discontinuity bool
	// Init is the fMP4 init section the segment needs (nil for TS);
	// InitVersion changes when a takeover brings new parameter sets.
	Init        []byte
	InitVersion int
	// Keyframe is the access unit that opens the segment when it is an
	// H.264 keyframe (thumbnails), with the parameter sets and size of
	// the video track at that point; nil otherwise.
	Keyframe      [][]byte
	SPS, PPS      []byte
	Width, Height int
	VideoFrames   int
}

// partTolerance lets a part run this much past PartTarget. RTMP and FLV
// timestamps are whole milliseconds, so a 30 fps frame lasts 33 or 34 ms
// and six of them may measure 201 ms: without the tolerance such a part
// is cut a frame early and every GOP ends in a one-frame part, 20% more
// requests from every viewer for 3% of the media.
const partTolerance = 2 * time.Millisecond

// partLimit is the longest a part may be, announced as PART-TARGET.
func (o Options) partLimit() time.Duration { return o.PartTarget + partTolerance }

func (o Options) withDefaults() Options {
	if o.Container != ContainerFMP4 {
		o.Container = ContainerTS
	}
	if o.PartTarget <= 0 {
		o.PartTarget = 200 * time.Millisecond
	}
	if o.MaxSegment <= 0 {
		o.MaxSegment = 4 * time.Second
	}
	if o.WindowSegments <= 0 {
		o.WindowSegments = 6
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// retainExtra segments stay fetchable after leaving the playlist, so a
// client that loaded the playlist just before the window moved does not
// get a 404 for what it was told to fetch.
const retainExtra = 2

// part is one LL-HLS partial segment.
type part struct {
	data        []byte
	dur         time.Duration
	independent bool
}

// segment is one media segment; its bytes are its parts' bytes in order.
type segment struct {
	msn           uint64
	parts         []*part
	dur           time.Duration
	size          int
	pdt           time.Time
	discontinuity bool
	disc          uint64 // discontinuity sequence number
	independent   bool
	complete      bool
	initVersion   int // which init section (fMP4) the segment needs
	videoFrames   int
	// keyframe opens the segment when it is a video keyframe (OnSegment).
	keyframe      [][]byte
	sps, pps      []byte
	width, height int
}

// Packager packages one rendition's hub into HLS. Create it with
// NewPackager, start Run, and serve with ServeMedia.
type Packager struct {
	hub  *media.Hub
	opts Options
	ext  string // resource extension for segments and parts

	ready     chan struct{}
	readyOnce sync.Once

	mu sync.Mutex
	// changed is closed and replaced on every publish so that blocked
	// playlist and part requests wake without polling.
	changed chan struct{}
	segs    []*segment // retained window, oldest first; last may be open
	ended   bool
	// inits holds the fMP4 init sections by version; a takeover that
	// changes the SPS adds one, announced by a new EXT-X-MAP.
	inits   map[int][]byte
	target  int // EXT-X-TARGETDURATION, never decreases
	info    RenditionInfo
	cache   playlistCache
	reports []RenditionReport

	// lastPart is the newest part as msn<<16 | index+1 (0 = none yet).
	// Sibling renditions read it for EXT-X-RENDITION-REPORT without taking
	// p.mu, so two packagers rendering each other never lock in a cycle.
	lastPart atomic.Uint64
}

// RenditionReport names a sibling rendition whose live edge this
// rendition's playlist reports (EXT-X-RENDITION-REPORT), so an LL-HLS
// client can switch renditions with one blocking request.
type RenditionReport struct {
	URI      string // sibling's media playlist, relative to this one
	Packager *Packager
}

// SetRenditionReports sets the sibling renditions to report. It may be
// called at any time, typically once after every rendition's Packager
// of a stream exists.
func (p *Packager) SetRenditionReports(reports []RenditionReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reports = append([]RenditionReport(nil), reports...)
	p.cache = playlistCache{}
}

// livePosition returns the msn and index of the newest part, from the
// second segment on. Until then the rendition has at most one complete
// segment and its playlist may still be held (see playableLocked), so a
// report would only invite a switch that waits; and hls.js reads
// LAST-MSN=0 as absent and asks for the segment number of the rendition
// it leaves instead, which the source may be segments ahead of: a 400,
// after which hls.js's ABR no longer switches up to the rendition.
func (p *Packager) livePosition() (msn uint64, part int, ok bool) {
	v := p.lastPart.Load()
	if v>>16 == 0 {
		return 0, 0, false
	}
	return v >> 16, int(v&0xffff) - 1, true
}

// NewPackager returns a packager for hub. Nothing happens until Run.
func NewPackager(hub *media.Hub, opts Options) *Packager {
	opts = opts.withDefaults()
	p := &Packager{
		hub:     hub,
		opts:    opts,
		ext:     ".ts",
		ready:   make(chan struct{}),
		changed: make(chan struct{}),
		target:  1,
		inits:   map[int][]byte{},
	}
	if opts.Container == ContainerFMP4 {
		p.ext = ".m4s"
	}
	// What the tracks already say, so Info is useful before the first
	// keyframe; start refines it from the SPS actually packaged.
	for _, t := range hub.Tracks() {
		if t.Kind == media.Video {
			p.info.Width, p.info.Height = t.Width, t.Height
			break
		}
	}
	p.info.Codecs = codecsOf(hub.Tracks())
	return p
}

// Ready is closed when the first segment (or, in LL mode, the first part)
// is playable — the moment IVS reports as Stream Start.
func (p *Packager) Ready() <-chan struct{} { return p.ready }

// Run subscribes to the hub and packages until the hub closes (the playlist
// then gets EXT-X-ENDLIST and Run returns nil) or ctx ends (ctx.Err()).
func (p *Packager) Run(ctx context.Context) error {
	sub := p.hub.Subscribe("hls")
	defer sub.Close()
	b, err := newBuilder(p)
	if err != nil {
		return err
	}
	var dropped int64
	for {
		f, err := sub.Next(ctx)
		if errors.Is(err, media.ErrHubClosed) {
			ferr := b.finish()
			p.end()
			return ferr
		}
		if err != nil {
			return err
		}
		if d := sub.Dropped(); d != dropped {
			// The hub cut us forward past frames we never saw: media time
			// jumps, so the next segment must say so like a takeover.
			dropped = d
			p.opts.Logger.WarnContext(ctx, "hls: packager fell behind; frames skipped", "dropped", d)
			g := *f
			g.Discontinuity = true
			f = &g
		}
		if err := b.add(f); err != nil {
			p.opts.Logger.WarnContext(ctx, "hls: frame dropped", "err", err)
		}
	}
}

func (p *Packager) end() {
	p.mu.Lock()
	p.ended = true
	p.broadcastLocked()
	p.mu.Unlock()
}

func (p *Packager) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
	p.cache = playlistCache{}
}

// publishPart appends a finished part to the open segment (opening one
// when start is set). The caller does not hold p.mu.
func (p *Packager) publishPart(pt *part, start *segment, videoFrames int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if start != nil {
		if n := len(p.segs); n > 0 {
			prev := p.segs[n-1]
			start.msn, start.disc = prev.msn+1, prev.disc
			if start.discontinuity {
				start.disc++
			}
		} else {
			start.discontinuity = false // nothing before it to be discontinuous with
		}
		p.segs = append(p.segs, start)
	}
	s := p.segs[len(p.segs)-1]
	s.parts = append(s.parts, pt)
	s.dur += pt.dur
	s.size += len(pt.data)
	s.videoFrames += videoFrames
	p.lastPart.Store(s.msn<<16 | uint64(min(len(s.parts), 0xffff)))
	p.raiseTargetLocked(s.dur)
	p.broadcastLocked()
	if p.opts.LowLatency {
		p.readyOnce.Do(func() { close(p.ready) })
	}
}

// completeSegment closes the open segment and trims the window.
func (p *Packager) completeSegment() {
	var out *Segment
	defer func() {
		if out != nil {
			p.opts.OnSegment(*out)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.segs)
	if n == 0 || p.segs[n-1].complete {
		return
	}
	p.segs[n-1].complete = true
	if p.opts.OnSegment != nil {
		out = p.segmentOutLocked(p.segs[n-1])
	}
	for len(p.segs) > p.opts.WindowSegments+retainExtra {
		p.segs[0] = nil
		p.segs = p.segs[1:]
	}
	for v := range p.inits {
		if v < p.segs[0].initVersion {
			delete(p.inits, v)
		}
	}
	p.measureLocked()
	p.broadcastLocked()
	p.readyOnce.Do(func() { close(p.ready) })
}

// segmentOutLocked copies a complete segment for OnSegment.
func (p *Packager) segmentOutLocked(s *segment) *Segment {
	data := make([]byte, 0, s.size)
	for _, pt := range s.parts {
		data = append(data, pt.data...)
	}
	return &Segment{
		Seq: s.msn, Data: data, Duration: s.dur, ProgramDateTime: s.pdt, Discontinuity: s.discontinuity,
		Init: p.inits[s.initVersion], InitVersion: s.initVersion,
		Keyframe: s.keyframe, SPS: s.sps, PPS: s.pps, Width: s.width, Height: s.height, VideoFrames: s.videoFrames,
	}
}

// raiseTargetLocked keeps EXT-X-TARGETDURATION at or above every segment's
// rounded duration. It only grows: RFC 8216 forbids changing it, and a
// growing value is what players tolerate when a GOP turns out longer than
// anything seen before.
func (p *Packager) raiseTargetLocked(d time.Duration) {
	if t := int(math.Round(d.Seconds())); t > p.target {
		p.target = t
	}
}

// measureLocked updates the measured bitrates and frame rate from the
// complete segments in the window.
func (p *Packager) measureLocked() {
	var bytes, frames int
	var dur time.Duration
	peak := 0
	for _, s := range p.listedLocked() {
		if !s.complete || s.dur <= 0 {
			continue
		}
		bytes += s.size
		frames += s.videoFrames
		dur += s.dur
		if bw := int(float64(s.size*8) / s.dur.Seconds()); bw > peak {
			peak = bw
		}
	}
	if dur <= 0 {
		return
	}
	p.info.AverageBandwidth = int(float64(bytes*8) / dur.Seconds())
	p.info.Bandwidth = peak
	if frames > 0 {
		p.info.FrameRate = math.Round(float64(frames)/dur.Seconds()*1000) / 1000
	}
}

// listedLocked is the part of the retained window the playlist lists.
func (p *Packager) listedLocked() []*segment {
	if extra := len(p.segs) - p.opts.WindowSegments; extra > 0 {
		// The open segment does not count against the window.
		if !p.segs[len(p.segs)-1].complete {
			extra--
		}
		if extra > 0 {
			return p.segs[extra:]
		}
	}
	return p.segs
}

// RenditionInfo is what the multivariant playlist says about a rendition.
type RenditionInfo struct {
	Bandwidth        int // peak bits/s over the window's segments
	AverageBandwidth int // mean bits/s over the window's segments
	Codecs           string
	Width, Height    int
	FrameRate        float64
}

// Info returns the rendition's measured description.
func (p *Packager) Info() RenditionInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

func codecsOf(tracks []media.Track) string {
	var v, a string
	for _, t := range tracks {
		switch {
		case t.Kind == media.Video && v == "":
			v = t.CodecString
			if v == "" && len(t.SPS) >= 4 {
				v = fmt.Sprintf("avc1.%02X%02X%02X", t.SPS[1], t.SPS[2], t.SPS[3])
			}
		case t.Kind == media.Audio && a == "":
			a = t.CodecString
			if a == "" {
				a = "mp4a.40.2"
			}
		}
	}
	switch {
	case v != "" && a != "":
		return v + "," + a
	case v != "":
		return v
	}
	return a
}
