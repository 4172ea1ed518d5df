package media

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrHubClosed is returned by Subscriber.Next once the stream has ended (or
// the subscriber was closed) and everything it was owed has been delivered.
var ErrHubClosed = errors.New("media: hub closed")

// DefaultMaxBufferedFrames is the per-subscriber backlog used when
// HubOptions.MaxBufferedFrames is not set: about 6 s of 30 fps video with
// interleaved AAC, enough to ride out a GC pause or a slow disk write
// without letting a stuck consumer lag the live edge by much more.
const DefaultMaxBufferedFrames = 512

// The current GOP is kept so a late subscriber starts decodable, but an
// encoder that stops sending keyframes must not make the hub hold media
// without bound. Once the GOP grows past either cap the hub stops keeping
// it and buffers nothing until the next keyframe: frames after a keyframe
// the hub no longer holds are undecodable anyway, so replaying them to a
// new subscriber would only add latency and memory.
const (
	maxGOPFrames   = 4096
	maxGOPDuration = 10 * time.Second
)

// burstFrames is how far behind the newest frame a subscriber may always
// be, whatever the GOP length: ingest delivers bursts (RTMP track discovery
// may replay up to 2 s of media at once, about 150 frames at 30 fps with
// AAC, when the encoder did not announce its tracks), and
// a consumer that simply has not been scheduled during one must not be cut
// forward past media it would have read a millisecond later.
const burstFrames = 256

// HubOptions tunes a Hub. The zero value is ready to use.
type HubOptions struct {
	// MaxBufferedFrames bounds each subscriber's backlog; beyond it the
	// subscriber is cut forward to the newest keyframe. When 0, the bound is
	// DefaultMaxBufferedFrames and, with video, also one GOP: a subscriber
	// behind the previous GOP is cut forward, so a stalled one pins at most
	// the previous GOP and live streams cost about one GOP each.
	MaxBufferedFrames int
}

// HubStats is a snapshot of a hub's counters.
type HubStats struct {
	Subscribers   int
	FramesWritten int64
	BytesWritten  int64
	// GOPFrames is how many frames a subscriber joining now would be
	// replayed: the current GOP, or 0 when there is no decodable one.
	GOPFrames int
}

// Hub fans one stream's frames out to any number of subscribers.
//
// All frames live in one shared ring indexed by a stream-wide sequence
// number; a subscriber is only a cursor into it. That makes Write O(1) in
// payload (no per-subscriber copies or queues), lets an idle subscriber cost
// a few hundred bytes, and lets the backlog bound be enforced by the reader
// when it comes back instead of by the writer, which therefore never waits.
// The ring keeps frames from the oldest of (current GOP start, slowest
// subscriber cursor still within its backlog bound) to the newest.
type Hub struct {
	tracks   []Track
	maxBack  uint64
	anchor   int  // Track ID whose keyframes start a GOP
	hasVideo bool // whether anchor is meaningful

	mu sync.Mutex
	// ring holds frames with sequence numbers [tail, head); a frame with
	// sequence s sits at ring[s&mask]. Slots outside that range are nil so
	// that dropped frames are garbage collected.
	ring       []*Frame
	mask       uint64
	tail, head uint64
	// The current GOP is [gopStart, head) when gopKeyed; the one before it
	// started at prevGOPStart when hasPrevGOP.
	gopStart     uint64
	gopKeyed     bool
	prevGOPStart uint64
	hasPrevGOP   bool
	lagOneGOP    bool // subscribers may not lag behind the previous GOP
	gopStartWall time.Time
	gopStartDTS  time.Duration
	subs         []*Subscriber
	closed       bool
	frames       int64
	bytes        int64
}

// NewHub returns a hub for a stream made of tracks. The first video track is
// the one whose keyframes define the GOP; a hub without video never buffers
// for late subscribers, since every audio frame is a random-access point.
func NewHub(tracks []Track, opts HubOptions) *Hub {
	backlog := opts.MaxBufferedFrames
	lagOneGOP := backlog <= 0
	if backlog <= 0 {
		backlog = DefaultMaxBufferedFrames
	}
	h := &Hub{
		lagOneGOP: lagOneGOP,
		tracks:    append([]Track(nil), tracks...),
		maxBack:   uint64(backlog),
		ring:      make([]*Frame, 64),
		mask:      63,
	}
	for _, t := range tracks {
		if t.Kind == Video {
			h.anchor, h.hasVideo = t.ID, true
			break
		}
	}
	return h
}

// Tracks returns the stream's tracks. The slice is a copy; the byte slices
// inside are shared and must not be modified.
func (h *Hub) Tracks() []Track {
	return append([]Track(nil), h.tracks...)
}

// Write publishes one frame to every subscriber. It never blocks and never waits for a subscriber. Frames of a track with no keyframe yet (video) are still delivered; the hub keeps the current GOP (from the latest video keyframe, including interleaved audio/data frames) so that a new subscriber starts decodable.
//
// The frame is shared with every subscriber and must not be modified after
// Write. Writes after Close are ignored. Write must be called from one
// goroutine at a time.
func (h *Hub) Write(f *Frame) {
	if f == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	seq := h.head
	next := seq + 1

	switch {
	case h.hasVideo && f.Track == h.anchor && f.Key:
		h.prevGOPStart, h.hasPrevGOP = h.gopStart, h.gopKeyed
		h.gopStart, h.gopKeyed = seq, true
		h.gopStartWall, h.gopStartDTS = f.Wall, f.DTS
	case h.gopKeyed && (next-h.gopStart > maxGOPFrames || h.gopSpan(f) > maxGOPDuration):
		h.gopKeyed = false
	}

	// One pass over subscribers both wakes waiting readers (they cannot run
	// before we unlock, so waking before storing is safe) and finds the
	// slowest cursor, so frames nobody can still read are released now.
	minCursor := next
	for _, s := range h.subs {
		if s.cursor < minCursor {
			minCursor = s.cursor
		}
		if s.waiting {
			s.waiting = false
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}
	low := h.release(minCursor, next)
	if next-h.tail > uint64(len(h.ring)) {
		h.grow()
	}
	if low <= seq {
		// Otherwise nobody can read it: no subscriber, no GOP to join.
		h.ring[seq&h.mask] = f
	}
	h.head = next
	h.frames++
	h.bytes += int64(f.Size())
}

// release drops the frames no one can still be owed once the stream has
// reached end (the next sequence number): those before the slowest cursor,
// before the backlog bound, or (by default) both before the previous GOP
// and more than burstFrames back (subscribers further behind are cut
// forward on their next read), unless the current GOP still needs them.
// Holding at most the previous GOP (or one burst) behind a stalled
// subscriber keeps an idle subscriber's cost to about one GOP. It
// returns the new low-water mark. The caller holds h.mu.
func (h *Hub) release(minCursor, end uint64) uint64 {
	low := minCursor
	if end > h.maxBack && low < end-h.maxBack {
		low = end - h.maxBack
	}
	if h.lagOneGOP && h.hasPrevGOP && low < h.prevGOPStart {
		floor := h.prevGOPStart
		if end > burstFrames {
			floor = min(floor, end-burstFrames)
		} else {
			floor = 0
		}
		low = max(low, floor)
	}
	if h.gopKeyed && h.gopStart < low {
		low = h.gopStart
	}
	for ; h.tail < low; h.tail++ {
		h.ring[h.tail&h.mask] = nil
	}
	return low
}

// gopSpan is how much time the current GOP would cover with f appended.
// Wall clock is preferred because it stays monotonic across the media-time
// resets that follow a discontinuity; DTS covers frames without Wall.
func (h *Hub) gopSpan(f *Frame) time.Duration {
	if !f.Wall.IsZero() && !h.gopStartWall.IsZero() {
		return f.Wall.Sub(h.gopStartWall)
	}
	return f.DTS - h.gopStartDTS
}

// grow doubles the ring. It only happens while the retained window widens
// (long GOPs, a lagging subscriber), so its cost is amortised and bounded by
// the caps on both.
func (h *Hub) grow() {
	ring := make([]*Frame, 2*len(h.ring))
	mask := uint64(len(ring) - 1)
	for s := h.tail; s < h.head; s++ {
		ring[s&mask] = h.ring[s&h.mask]
	}
	h.ring, h.mask = ring, mask
}

// Subscribe returns a subscriber that first receives the buffered current GOP (if any) and then live frames.
//
// name identifies the consumer (packager, recorder, probe) in logs and
// metrics. A subscriber of a closed hub gets ErrHubClosed at once.
func (h *Hub) Subscribe(name string) *Subscriber {
	s := &Subscriber{hub: h, name: name, notify: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	s.cursor = h.head
	if h.closed {
		return s
	}
	if h.gopKeyed {
		s.cursor = h.gopStart
	}
	s.index = len(h.subs)
	h.subs = append(h.subs, s)
	return s
}

// Close ends the stream: subscribers drain then get ErrHubClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, s := range h.subs {
		s.wake()
	}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := HubStats{
		Subscribers:   len(h.subs),
		FramesWritten: h.frames,
		BytesWritten:  h.bytes,
	}
	if h.gopKeyed {
		st.GOPFrames = int(h.head - h.gopStart)
	}
	return st
}

// Subscriber is one consumer's position in a hub's stream. Next is meant to
// be called from one goroutine; Close and Dropped from any.
type Subscriber struct {
	hub     *Hub
	name    string
	notify  chan struct{} // 1-buffered: a pending wake-up is never lost
	dropped atomic.Int64

	// Guarded by hub.mu.
	cursor  uint64 // sequence number of the next frame to deliver
	index   int    // position in hub.subs
	waiting bool   // blocked in Next; the writer must wake it
	closed  bool
}

// Name is the name given to Subscribe.
func (s *Subscriber) Name() string { return s.name }

// Next blocks for the next frame. It returns ErrHubClosed once the hub is
// closed and the subscriber has drained what it had (or once the subscriber
// itself is closed), and ctx.Err() when ctx ends first.
//
// A subscriber more than MaxBufferedFrames behind, or behind the previous
// GOP (whose frames are no longer held), is first cut forward to
// the newest keyframe (or, without one, to the newest frame) and the frames
// it skips are counted in Dropped. One that is behind but still inside the
// current GOP is left alone: there is no newer keyframe to resume from, its
// frames are held for the GOP anyway, and its lag is bounded by the GOP cap.
func (s *Subscriber) Next(ctx context.Context) (*Frame, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := s.hub
	h.mu.Lock()
	for {
		if s.closed {
			h.mu.Unlock()
			return nil, ErrHubClosed
		}
		if h.head-s.cursor > h.maxBack || s.cursor < h.tail {
			s.cutForward()
		}
		if s.cursor < h.head {
			f := h.ring[s.cursor&h.mask]
			s.cursor++
			h.mu.Unlock()
			return f, nil
		}
		if h.closed {
			h.mu.Unlock()
			return nil, ErrHubClosed
		}
		s.waiting = true
		h.mu.Unlock()
		select {
		case <-s.notify:
		case <-ctx.Done():
			h.mu.Lock()
			s.waiting = false
			h.mu.Unlock()
			return nil, ctx.Err()
		}
		h.mu.Lock()
	}
}

// cutForward moves a lagging cursor to where it can resume decodable. The
// caller holds hub.mu and has checked that the backlog exceeds the bound
// (or, defensively, that the cursor's frames were already released).
func (s *Subscriber) cutForward() {
	h := s.hub
	target := s.cursor
	switch {
	case h.gopKeyed && h.gopStart > s.cursor:
		target = h.gopStart
	case h.gopKeyed:
		// Inside the current GOP: see Next.
	default:
		target = h.head - 1
	}
	// The retained window never starts after a cursor within the bound,
	// but a cursor behind it must not read released slots.
	if target < h.tail {
		target = h.tail
	}
	if target > s.cursor {
		s.dropped.Add(int64(target - s.cursor))
		s.cursor = target
	}
}

// Dropped returns how many frames were skipped because the subscriber fell behind.
func (s *Subscriber) Dropped() int64 { return s.dropped.Load() }

// Close unsubscribes, releasing the subscriber's hold on buffered frames,
// and makes a pending or later Next return ErrHubClosed. It is safe to call
// twice and concurrently with Write.
func (s *Subscriber) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.wake()
	if s.index < 0 || s.index >= len(h.subs) || h.subs[s.index] != s {
		return // subscribed to an already closed hub
	}
	last := len(h.subs) - 1
	h.subs[s.index] = h.subs[last]
	h.subs[s.index].index = s.index
	h.subs[last] = nil
	h.subs = h.subs[:last]

	// Release what only this subscriber was holding now rather than at the
	// next Write, which may never come if the stream is idle or ending.
	minCursor := h.head
	for _, o := range h.subs {
		minCursor = min(minCursor, o.cursor)
	}
	h.release(minCursor, h.head)
}

// wake unblocks a Next waiting on s, if any. The caller holds hub.mu.
func (s *Subscriber) wake() {
	s.waiting = false
	select {
	case s.notify <- struct{}{}:
	default:
	}
}
