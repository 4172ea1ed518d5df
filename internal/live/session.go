package live

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/record"
	"github.com/openivs/openivs/internal/transcode"
)

// maxSessionEvents is how many events a session keeps (truncatedEvents).
const maxSessionEvents = 500

// session is one live stream of a channel, from Session Created to Session
// Ended; takeovers replace its connection, not the session.
type session struct {
	m  *Manager
	ch *ivs.IngestChannel

	mu        sync.Mutex
	st        ivs.Stream
	sess      ivs.StreamSession
	current   *conn // the connection whose media is live
	takeovers int
	tracks    []media.Track
	hub       *media.Hub
	// metaTrack is the hub's timed-metadata (ID3) track, after the
	// ingest tracks; lastVideoPTS is where metadata goes in (the live edge).
	metaTrack    int
	lastVideoPTS time.Duration
	// writeMu serialises hub writes: ingest frames and PutMetadata come
	// from different goroutines, and the hub takes one writer at a time.
	writeMu sync.Mutex
	// saveSeq numbers session snapshots (under mu); savedSeq is the newest
	// one stored (under saveMu, which orders the store writes).
	saveSeq  uint64
	saveMu   sync.Mutex
	savedSeq uint64
	// outbox holds the events recorded since the last stored snapshot; the
	// next snapshot write takes them into the event outbox in its own
	// transaction. Lock order: mu, saveMu, outboxMu.
	outboxMu sync.Mutex
	outbox   []events.Event
	// renditions are what viewers are served, highest first, once the
	// ladder is known (renditions.go); transcoder makes the encoded ones.
	renditions  []hls.Variant
	transcoder  *transcode.Transcoder
	recorder    *record.Recorder // nil when the stream is not recorded
	releaseSlot func()           // the node's transcode slot, when holding one
	streaming   bool             // Stream Start sent
	ended       bool
	endedCh     chan struct{}

	// Health and limits, fed by WriteFrame.
	lastFrame      time.Time
	anchorWall     time.Time
	anchorDTS      time.Duration
	lastDTS        time.Duration
	starving       bool
	window         []sample // bytes received per frame in the bitrate window
	windowBytes    int64
	videoFrames    int64
	firstVideoWall time.Time
	audioBytes     int64
	healthDirty    bool
	// meter makes the 1-second ingest samples (ingest_metrics.go).
	meter ingestMeter
}

type sample struct {
	at    time.Time
	bytes int
	audio bool
}

func newSession(m *Manager, ch *ivs.IngestChannel, req ingest.Request, now time.Time) *session {
	id := newStreamID()
	start := now.UTC()
	return &session{
		m: m, ch: ch, endedCh: make(chan struct{}), lastFrame: now,
		st: ivs.Stream{ChannelArn: ch.ARN, StreamID: id, StartTime: start, State: "LIVE", Health: "HEALTHY"},
		sess: ivs.StreamSession{
			StreamID: id, StartTime: &start, Channel: ch.Snapshot, TruncatedEvents: []ivs.StreamEvent{},
		},
	}
}

// event records a stream event in the session and queues it for the event
// outbox, which it reaches with the session's next save. Callers hold s.mu
// or own s exclusively, and save (or end) the session after.
func (s *session) event(detailType, name, code string, at time.Time) {
	s.eventWith(detailType, name, code, at, nil)
}

func (s *session) eventWith(detailType, name, code string, at time.Time, extra map[string]any) {
	detail := map[string]any{"event_name": name, "channel_name": s.ch.Name, "stream_id": s.st.StreamID}
	if code != "" {
		detail["code"] = code
	}
	for k, v := range extra {
		detail[k] = v
	}
	s.queue(events.New(detailType, s.ch.Account, s.m.cfg.Region, at, detail, s.ch.ARN))
	// Newest first, as GetStreamSession lists them.
	ev := ivs.StreamEvent{Name: name, Type: detailType, EventTime: at.UTC(), Code: code}
	s.sess.TruncatedEvents = append([]ivs.StreamEvent{ev}, s.sess.TruncatedEvents...)
	if len(s.sess.TruncatedEvents) > maxSessionEvents {
		s.sess.TruncatedEvents = s.sess.TruncatedEvents[:maxSessionEvents]
	}
}

// queue adds an event for the next save.
func (s *session) queue(e events.Event) {
	s.outboxMu.Lock()
	s.outbox = append(s.outbox, e)
	s.outboxMu.Unlock()
}

// takeEvents empties the queue.
func (s *session) takeEvents() []events.Event {
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	evs := s.outbox
	s.outbox = nil
	return evs
}

// requeue puts events a failed write could not store back in front.
func (s *session) requeue(evs []events.Event) {
	s.outboxMu.Lock()
	s.outbox = append(evs, s.outbox...)
	s.outboxMu.Unlock()
}

// limitBreach queues a Limit Breach for this stream; the session ends or
// is saved after it.
func (s *session) limitBreach(name, unit string, limit, value int64, at time.Time) {
	s.queue(events.New(events.LimitBreach, s.ch.Account, s.m.cfg.Region, at, map[string]any{
		"limit_name": name, "limit_unit": unit, "limit_value": limit, "exceeded_by": value - limit,
		"channel_name": s.ch.Name, "stream_id": s.st.StreamID,
	}, s.ch.ARN))
}

// snapshot copies the session record so it can be written without s.mu.
// Called with s.mu held.
func (s *session) snapshot() ivs.StreamSession {
	sess := s.sess
	if c := s.sess.IngestConfiguration; c != nil {
		cp := *c
		if c.Video != nil {
			v := *c.Video
			cp.Video = &v
		}
		if c.Audio != nil {
			a := *c.Audio
			cp.Audio = &a
		}
		sess.IngestConfiguration = &cp
	}
	return sess
}

// save writes the session record in the background. Called with s.mu held.
func (s *session) save() {
	s.saveSeq++
	seq, sess := s.saveSeq, s.snapshot()
	s.m.wg.Add(1) // Close waits for pending writes
	go func() {
		defer s.m.wg.Done()
		s.write(seq, sess, false)
	}()
}

// write stores snapshot seq with the queued events, or, when final, ends
// the stream with it. Writes run off the caller's lock and may be scheduled
// in any order: one that finds a newer snapshot stored already must not put
// its older one back (its events went with the newer one).
func (s *session) write(seq uint64, sess ivs.StreamSession, final bool) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if seq <= s.savedSeq {
		return
	}
	evs := s.takeEvents()
	var err error
	if final {
		err = s.m.cfg.Channels.EndStream(context.Background(), s.ch, sess, evs)
	} else {
		err = s.m.cfg.Channels.SaveSession(context.Background(), s.ch.Account, sess, evs)
	}
	if err != nil {
		s.m.log.Error("saving stream session", "stream_id", sess.StreamID, "final", final, "err", err)
		if !final {
			s.requeue(evs) // the next save takes them
			return
		}
		// No later save will come: publish them on their own.
		for _, e := range evs {
			s.m.publish(e)
		}
		return
	}
	s.savedSeq = seq
	if len(evs) > 0 {
		s.m.eventsStored()
	}
}

// admitTakeover decides whether req may take over this session (spec 05
// §7.9); the media match is checked when the new connection starts. Called
// with m.mu held.
func (s *session) admitTakeover(req ingest.Request) (ingest.Admission, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cur := s.current
	switch {
	case s.ended:
		return nil, ingest.ErrChannelBusy
	case !req.HasPriority:
		return nil, ingest.ErrChannelBusy
	case req.Priority < 1 || req.Priority > math.MaxInt32 || (cur != nil && cur.hasPriority && req.Priority <= cur.priority):
		s.event(events.StreamStateChange, "Stream Takeover Failure", "StreamTakeoverInvalidPriority", now)
		s.save()
		return nil, ingest.ErrChannelBusy
	case s.takeovers >= s.m.cfg.TakeoverLimit:
		s.event(events.StreamStateChange, "Stream Takeover Failure", "StreamTakeoverLimitBreached", now)
		s.save()
		return nil, ingest.ErrChannelBusy
	}
	return &conn{s: s, priority: req.Priority, hasPriority: true, takeover: true, done: make(chan struct{})}, nil
}

// conn is one encoder connection of a session: ingest.Admission before
// Start, ingest.Stream after.
type conn struct {
	s           *session
	priority    int
	hasPriority bool
	takeover    bool // not yet the session's current connection

	closeOnce    sync.Once
	done         chan struct{}
	discontinued bool // the next frame written is the first after a takeover
	// resumeAt is, after a takeover, the earliest ingest time of the
	// keyframe this connection's media may resume the stream at.
	resumeAt time.Time
}

// takeoverOverlap bounds how much already-streamed time a takeover may
// replay. The new encoder's first frames may be up to 2 s old when they
// are written (RTMP track discovery can hold them), so resuming at its first
// keyframe would send viewers back in time; it resumes at the first
// keyframe at most this far behind the old connection's last frame, which
// leaves a gap of at most one GOP minus this and never moves the live edge
// back more than this.
const takeoverOverlap = time.Second

// Start implements ingest.Admission.
func (c *conn) Start(tracks []media.Track, encoder string) (ingest.Stream, error) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.ended {
		return nil, errEnded
	}
	video, audio, err := checkCodecs(tracks)
	if err != nil {
		if !c.takeover {
			s.endLocked(now, "")
		}
		return nil, err
	}
	if err := s.checkResolution(video, now); err != nil {
		if !c.takeover {
			s.endLocked(now, "")
		}
		return nil, err
	}
	if c.takeover {
		if !sameMedia(s.tracks, tracks) {
			s.event(events.StreamStateChange, "Stream Takeover Failure", "StreamTakeoverMediaMismatch", now)
			s.save()
			return nil, errors.New("live: takeover media does not match the stream")
		}
		if old := s.current; old != nil {
			old.stop()
		}
		s.current, c.takeover, c.discontinued = c, false, true
		c.resumeAt = s.lastFrame.Add(-takeoverOverlap)
		s.takeovers++
		s.event(events.StreamStateChange, "Stream Takeover", "", now)
		s.save()
		return c, nil
	}
	if s.m.cfg.Transcode != nil && transcode.Transcodes(s.ch.Type) {
		release, ok := s.m.cfg.Transcode.Capacity.Acquire()
		if !ok {
			s.eventWith(events.StreamStateChange, "Stream Failure", "", now, map[string]any{"reason": transcode.CapacityExceededReason})
			s.endLocked(now, "")
			return nil, errTranscodeCapacity
		}
		s.releaseSlot = release
	}
	s.tracks = tracks
	// Timed metadata (PutMetadata, in-band) is a track of the hub, so
	// every rendition carries it (docs/decisions/0006).
	s.metaTrack = len(tracks)
	hubTracks := append(append(make([]media.Track, 0, len(tracks)+1), tracks...),
		media.Track{ID: s.metaTrack, Kind: media.Data, Codec: media.CodecID3})
	s.hub = media.NewHub(hubTracks, media.HubOptions{})
	s.startRenditions(video)
	s.sess.IngestConfiguration = ingestConfiguration(video, audio, encoder)
	s.lastFrame, s.anchorWall = now, now
	s.save()
	return c, nil
}

// Abort implements ingest.Admission.
func (c *conn) Abort(reason error) { c.Close(reason) }

// Done implements ingest.Stream.
func (c *conn) Done() <-chan struct{} { return c.done }

func (c *conn) stop() { c.closeOnce.Do(func() { close(c.done) }) }

// Close implements ingest.Stream: the connection is gone. If it carried the
// session, the session ends; a connection that was taken over ends alone.
func (c *conn) Close(reason error) {
	c.stop()
	s := c.s
	s.mu.Lock()
	current := s.current == c
	s.mu.Unlock()
	if current {
		s.end("", "")
	}
}

// WriteFrame implements ingest.Stream.
func (c *conn) WriteFrame(f *media.Frame) error {
	s := c.s
	s.mu.Lock()
	if s.ended || s.current != c {
		s.mu.Unlock()
		return errEnded
	}
	if f.Track < 0 || f.Track >= len(s.tracks) {
		s.mu.Unlock()
		return fmt.Errorf("live: frame for track %d of a %d-track stream", f.Track, len(s.tracks))
	}
	if c.discontinued {
		if s.tracks[f.Track].Kind != media.Video || !f.Key || (!f.Wall.IsZero() && f.Wall.Before(c.resumeAt)) {
			// Not where the stream can resume after the takeover (see takeoverOverlap).
			s.mu.Unlock()
			return nil
		}
		f.Discontinuity, c.discontinued = true, false
	}
	now := f.Wall
	if now.IsZero() {
		now = time.Now()
	}
	breach := s.account(f, now)
	hub := s.hub
	s.mu.Unlock()
	if breach {
		s.end("", "")
		return errEnded
	}
	s.writeMu.Lock()
	hub.Write(f)
	s.writeMu.Unlock()
	return nil
}

// WriteMetadata implements ingest.Stream: in-band metadata from the encoder
// goes in like PutMetadata's, owned by the in-band owner.
func (c *conn) WriteMetadata(text string) error {
	s := c.s
	s.mu.Lock()
	current := !s.ended && s.current == c && !c.discontinued
	if current {
		s.meter.metadata(len(text))
	}
	s.mu.Unlock()
	if !current {
		return nil // a taken-over connection's data is not the stream's
	}
	if err := s.putMetadata(media.OwnerInband, text); err != nil && !errors.Is(err, errNotBroadcasting) {
		return err
	}
	return nil
}

// putMetadata inserts timed metadata at the live edge: an ID3 frame dated
// like the newest video frame, so every rendition carries it in the part
// being built and every viewer gets it with that frame.
func (s *session) putMetadata(owner, text string) error {
	s.mu.Lock()
	if s.ended || s.hub == nil || s.videoFrames == 0 {
		s.mu.Unlock()
		return errNotBroadcasting
	}
	hub, track, pts := s.hub, s.metaTrack, s.lastVideoPTS
	s.mu.Unlock()
	f := &media.Frame{Track: track, PTS: pts, DTS: pts, Wall: time.Now(), Key: true,
		NALUs: [][]byte{media.TextID3(owner, text)}}
	s.writeMu.Lock()
	hub.Write(f)
	s.writeMu.Unlock()
	return nil
}

// account updates health and bitrate figures with one frame and reports a
// bitrate limit breach. Called with s.mu held.
func (s *session) account(f *media.Frame, now time.Time) bool {
	isAudio := s.tracks[f.Track].Kind == media.Audio
	if !isAudio {
		if s.videoFrames == 0 {
			s.firstVideoWall = now
		}
		s.videoFrames++
		s.lastDTS, s.lastVideoPTS = f.DTS, f.PTS
		if s.starving {
			// Data flows again: measure against a fresh anchor.
			s.starving, s.healthDirty = false, true
			s.anchorWall, s.anchorDTS = now, f.DTS
			s.st.Health = "HEALTHY"
			s.event(events.StreamHealthChange, "Starvation End", "", now)
		}
	} else {
		s.audioBytes += int64(f.Size())
	}
	s.lastFrame = now
	s.meter.frame(s.tracks, f)
	s.window = append(s.window, sample{at: now, bytes: f.Size(), audio: isAudio})
	s.windowBytes += int64(f.Size())
	cut := 0
	for cut < len(s.window) && now.Sub(s.window[cut].at) > s.m.cfg.BitrateWindow {
		s.windowBytes -= int64(s.window[cut].bytes)
		cut++
	}
	full := cut > 0
	s.window = s.window[cut:]
	if !full {
		return false
	}
	bps := s.windowBytes * 8 * int64(time.Second) / int64(s.m.cfg.BitrateWindow)
	if limit := bitrateLimit(s.ch.Type, s.tracks); bps > limit {
		s.limitBreach("Ingest Bitrate", "bits per second", limit, bps, now)
		return true
	}
	return false
}

// monitor watches health, idleness and the maximum duration.
func (s *session) monitor() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(s.m.cfg.MaxDuration)
	defer deadline.Stop()
	lastSave := time.Now()
	for {
		select {
		case <-s.endedCh:
			return
		case <-deadline.C:
			s.end("", "")
			return
		case now := <-tick.C:
			s.mu.Lock()
			idle := now.Sub(s.lastFrame)
			if s.hub != nil && !s.starving {
				behind := now.Sub(s.anchorWall) - (s.lastDTS - s.anchorDTS)
				if idle > s.m.cfg.StarvationAfter || behind > s.m.cfg.StarvationAfter {
					s.starving, s.healthDirty = true, true
					s.st.Health = "STARVING"
					s.event(events.StreamHealthChange, "Starvation Start", "", now)
				}
			}
			timedOut := idle > s.m.cfg.IdleTimeout
			dirty := s.healthDirty
			s.healthDirty = false
			st := s.st
			s.refreshBitrates(now)
			periodic := now.Sub(lastSave) > 5*time.Second
			smp, sampled := s.ingestSample(now, false)
			s.mu.Unlock()
			s.reportIngest(smp, sampled)
			if timedOut {
				s.end("", "")
				return
			}
			if dirty {
				if err := s.m.cfg.Channels.SaveStream(context.Background(), s.ch, st); err != nil {
					s.m.log.Error("saving stream", "stream_id", st.StreamID, "err", err)
				}
			}
			if dirty || periodic {
				s.mu.Lock()
				if !s.ended {
					s.save()
				}
				s.mu.Unlock()
				lastSave = now
			}
		}
	}
}

// refreshBitrates puts the measured bitrates and frame rate into the
// session's ingest configuration. Called with s.mu held.
func (s *session) refreshBitrates(now time.Time) {
	cfg := s.sess.IngestConfiguration
	if cfg == nil || len(s.window) == 0 {
		return
	}
	span := s.m.cfg.BitrateWindow
	var videoBytes, audioBytes int64
	for _, smp := range s.window {
		if smp.audio {
			audioBytes += int64(smp.bytes)
		} else {
			videoBytes += int64(smp.bytes)
		}
	}
	if el := now.Sub(s.window[0].at); el < span && el > 0 {
		span = el
	}
	if cfg.Video != nil {
		cfg.Video.TargetBitrate = videoBytes * 8 * int64(time.Second) / int64(span)
		if el := now.Sub(s.firstVideoWall); s.videoFrames > 1 && el > 0 {
			cfg.Video.TargetFramerate = int64(float64(s.videoFrames-1)/el.Seconds() + 0.5)
		}
	}
	if cfg.Audio != nil {
		cfg.Audio.TargetBitrate = audioBytes * 8 * int64(time.Second) / int64(span)
	}
}

// end finishes the session once: Session Ended, Stream End, records.
func (s *session) end(code, reason string) {
	s.mu.Lock()
	s.endLocked(time.Now(), code)
	s.mu.Unlock()
}

func (s *session) endLocked(now time.Time, code string) {
	if s.ended {
		return
	}
	s.ended = true
	close(s.endedCh)
	if s.current != nil {
		s.current.stop()
	}
	s.event(events.StreamStateChange, "Session Ended", code, now)
	if s.streaming {
		s.event(events.StreamStateChange, "Stream End", "", now)
	}
	s.refreshBitrates(now)
	end := now.UTC()
	s.sess.EndTime = &end
	if s.hub != nil {
		s.hub.Close() // packagers finish their playlists with ENDLIST
	}
	if s.transcoder == nil && s.releaseSlot != nil {
		s.releaseSlot() // else released once ffmpeg is gone
	}
	s.saveSeq++
	s.write(s.saveSeq, s.snapshot(), true)
	// Authorize also treats an ended session as gone, so this may lag.
	go s.m.forget(s)
}

// isEnded reports whether the session is over.
func (s *session) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// playback is what viewers are served: the stream's renditions, once
// every one of them is playable (Stream Start) and after the stream ended.
func (s *session) playback() ([]hls.Variant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.renditions) == 0 || !(s.streaming || s.ended) {
		return nil, false
	}
	return s.renditions, true
}
