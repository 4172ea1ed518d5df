// Package live owns live streams: admission of encoders (stream key,
// protocol, quota, takeover), stream sessions and their events, limits,
// health (starvation) and the per-stream media hub that packaging,
// transcoding and recording subscribe to.
package live

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/record"
	"github.com/openivs/openivs/internal/transcode"
)

// Channels is the control plane as the manager uses it (*ivs.Service).
type Channels interface {
	ChannelByStreamKey(ctx context.Context, key string) (*ivs.IngestChannel, error)
	// BeginStream, SaveSession and EndStream write the session's events
	// to the event outbox in the same transaction as the records.
	BeginStream(ctx context.Context, ch *ivs.IngestChannel, st ivs.Stream, sess ivs.StreamSession, evs []events.Event) error
	SaveStream(ctx context.Context, ch *ivs.IngestChannel, st ivs.Stream) error
	SaveSession(ctx context.Context, account string, sess ivs.StreamSession, evs []events.Event) error
	EndStream(ctx context.Context, ch *ivs.IngestChannel, sess ivs.StreamSession, evs []events.Event) error
	ConcurrentStreamsQuota() int
}

// Config wires a Manager.
type Config struct {
	Channels Channels
	// Events takes the events no stream record carries (account-level
	// limit breaches, and a session's last events if its final write fails).
	Events events.Publisher
	// EventsStored, when set, is called after events were committed with a
	// stream record, so their delivery starts at once.
	EventsStored func()
	Region       string
	Logger       *slog.Logger
	// StarvationAfter is how far media may fall behind wall-clock time (or
	// how long nothing may arrive) before the stream is STARVING (2 s).
	StarvationAfter time.Duration
	// IdleTimeout ends a stream that receives nothing for this long (30 s).
	IdleTimeout time.Duration
	// MaxDuration ends a stream after this long (IVS: 48 h).
	MaxDuration time.Duration
	// BitrateWindow is the sliding window the ingest bitrate is measured
	// over (5 s); limits are checked once a window is full.
	BitrateWindow time.Duration
	// TakeoverLimit is the most takeovers one stream allows (100).
	TakeoverLimit int
	// Transcode, when set, gives STANDARD and ADVANCED channels their
	// ladders; without it every channel is transmuxed like BASIC.
	Transcode *TranscodeConfig
	// Recording, when set, records the streams of channels with a
	// recording configuration.
	Recording *RecordingConfig
	// Ingest, when set, receives every live stream's 1-second ingest
	// samples (the IVS ingest metrics; ingest_metrics.go).
	Ingest IngestReporter
}

// TranscodeConfig is how a node transcodes.
type TranscodeConfig struct {
	Capacity   *transcode.Capacity // concurrent transcodes of this node
	FFmpeg     string              // ffmpeg binary ("ffmpeg")
	X264Preset string              // libx264 preset (transcode.DefaultX264Preset)
}

// Manager implements ingest.Publisher and ivs.StreamControl.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	live map[string]*session // by channel ARN
	// ended keeps a finished stream's playback for a while, so viewers see
	// its playlist end (EXT-X-ENDLIST) rather than a 404.
	ended map[string]endedStream
	// recordings are recordings within their reconnect window, by channel.
	recordings map[string]*record.Recorder
	wg         sync.WaitGroup // session monitors
}

// NewManager returns a manager with IVS's defaults for unset limits.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Events == nil {
		cfg.Events = events.LogPublisher{Logger: cfg.Logger}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.StarvationAfter, 2*time.Second)
	def(&cfg.IdleTimeout, 30*time.Second)
	def(&cfg.MaxDuration, 48*time.Hour)
	def(&cfg.BitrateWindow, 5*time.Second)
	if cfg.TakeoverLimit <= 0 {
		cfg.TakeoverLimit = 100
	}
	return &Manager{cfg: cfg, log: cfg.Logger, live: map[string]*session{}, ended: map[string]endedStream{}}
}

// SRTPassphrase implements ingest.Publisher.
func (m *Manager) SRTPassphrase(ctx context.Context, key string) (string, error) {
	ch, err := m.cfg.Channels.ChannelByStreamKey(ctx, key)
	if errors.Is(err, ivs.ErrStreamKeyUnknown) {
		return "", ingest.ErrUnknownKey
	} else if err != nil {
		return "", err
	}
	if ch.InsecureIngest {
		return "", nil
	}
	return ch.SRTPassphrase, nil
}

// Authorize implements ingest.Publisher.
func (m *Manager) Authorize(ctx context.Context, req ingest.Request) (ingest.Admission, error) {
	ch, err := m.cfg.Channels.ChannelByStreamKey(ctx, req.StreamKey)
	if errors.Is(err, ivs.ErrStreamKeyUnknown) {
		return nil, ingest.ErrUnknownKey
	} else if err != nil {
		return nil, err
	}
	if req.Protocol == ingest.RTMP && !ch.InsecureIngest {
		return nil, ingest.ErrInsecureRefused
	}
	now := time.Now()

	m.mu.Lock()
	existing := m.live[ch.ARN]
	m.mu.Unlock()
	if existing != nil && !existing.isEnded() {
		return existing.admitTakeover(req)
	}
	// No lock across the store write: the stream record is unique per
	// channel, so of two encoders racing for an idle channel one gets
	// ErrChannelLive, and admissions of different channels run in parallel.
	s := newSession(m, ch, req, now)
	// Session Created is stored with the session record it announces.
	s.event(events.StreamStateChange, "Session Created", "", now)
	err = m.cfg.Channels.BeginStream(ctx, ch, s.st, s.sess, s.takeEvents())
	switch {
	case errors.Is(err, ivs.ErrConcurrentStreams):
		m.publish(events.New(events.LimitBreach, ch.Account, m.cfg.Region, now, map[string]any{
			"limit_name": "Concurrent Broadcasts", "limit_unit": "active streams",
			"limit_value": m.cfg.Channels.ConcurrentStreamsQuota(), "exceeded_by": 1,
		}))
		return nil, ingest.ErrQuota
	case errors.Is(err, ivs.ErrChannelLive):
		return nil, ingest.ErrChannelBusy
	case err != nil:
		return nil, err
	}
	c := &conn{s: s, priority: req.Priority, hasPriority: req.HasPriority, done: make(chan struct{})}
	s.mu.Lock()
	s.current = c
	s.mu.Unlock()
	m.eventsStored()
	m.mu.Lock()
	m.live[ch.ARN] = s
	m.mu.Unlock()
	m.wg.Add(1)
	go func() { defer m.wg.Done(); s.monitor(); s.ingestEnded() }()
	return c, nil
}

// StopStream implements ivs.StreamControl: the encoder is disconnected; its
// stream key keeps working.
func (m *Manager) StopStream(ctx context.Context, channelARN string) error {
	m.mu.Lock()
	s := m.live[channelARN]
	m.mu.Unlock()
	if s == nil || s.isEnded() {
		return awsapi.Errorf("ChannelNotBroadcasting", "Channel %s is not broadcasting.", channelARN)
	}
	s.end("", "")
	return nil
}

// PutMetadata implements ivs.StreamControl: the metadata goes into every
// rendition of the channel's live stream at its live edge, as ID3 owned by
// the API (media.OwnerAPI).
func (m *Manager) PutMetadata(ctx context.Context, channelARN, metadata string) error {
	m.mu.Lock()
	s := m.live[channelARN]
	m.mu.Unlock()
	if s == nil {
		return awsapi.Errorf("ChannelNotBroadcasting", "Channel %s is not broadcasting.", channelARN)
	}
	if err := s.putMetadata(media.OwnerAPI, metadata); err != nil {
		return awsapi.Errorf("ChannelNotBroadcasting", "Channel %s is not broadcasting.", channelARN)
	}
	return nil
}

// Hub returns the media hub of a channel's live stream.
func (m *Manager) Hub(channelARN string) (*media.Hub, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.live[channelARN]
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hub, s.hub != nil
}

// Playback returns the renditions of a channel's live stream, highest
// first.
func (m *Manager) Playback(channelARN string) ([]hls.Variant, bool) {
	m.mu.Lock()
	s := m.live[channelARN]
	if s == nil {
		e, ok := m.ended[channelARN]
		if ok && time.Now().After(e.until) {
			delete(m.ended, channelARN)
			ok = false
		}
		m.mu.Unlock()
		if !ok {
			return nil, false
		}
		return e.session.playback()
	}
	m.mu.Unlock()
	return s.playback()
}

// endedPlaybackGrace is how long an ended stream's playlists stay served.
const endedPlaybackGrace = 30 * time.Second

type endedStream struct {
	session *session
	until   time.Time
}

// Close ends every live stream and waits for their monitors.
func (m *Manager) Close() {
	m.mu.Lock()
	all := make([]*session, 0, len(m.live))
	for _, s := range m.live {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.end("", "")
	}
	m.wg.Wait()
	// Give recordings a moment to close in storage; one still uploading
	// stays in the spool, and the next start closes it (record.Recover).
	var recs []*record.Recorder
	m.mu.Lock()
	for _, rec := range m.recordings {
		recs = append(recs, rec) // within their reconnect window
	}
	m.mu.Unlock()
	for _, s := range all {
		s.mu.Lock()
		if s.recorder != nil {
			recs = append(recs, s.recorder)
		}
		s.mu.Unlock()
	}
	for _, rec := range recs {
		rec.StopWaiting()
	}
	deadline := time.After(recordingCloseGrace)
	for _, rec := range recs {
		select {
		case <-rec.Done():
		case <-deadline:
			m.log.Warn("recordings still uploading at shutdown; the next start finishes them")
			return
		}
	}
}

// recordingCloseGrace bounds how long Close waits for recordings.
const recordingCloseGrace = 10 * time.Second

func (m *Manager) publish(e events.Event) {
	m.cfg.Events.Publish(context.Background(), e)
}

func (m *Manager) eventsStored() {
	if m.cfg.EventsStored != nil {
		m.cfg.EventsStored()
	}
}

func (m *Manager) forget(s *session) {
	now := time.Now()
	m.mu.Lock()
	for arn, e := range m.ended {
		if now.After(e.until) {
			delete(m.ended, arn) // swept here too, so unviewed channels do not pin media
		}
	}
	if m.live[s.ch.ARN] == s {
		delete(m.live, s.ch.ARN)
		m.ended[s.ch.ARN] = endedStream{session: s, until: now.Add(endedPlaybackGrace)}
	}
	m.mu.Unlock()
}

const base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// newStreamID makes IVS's stream id: "st-" and 23 base62 characters.
func newStreamID() string {
	out := make([]byte, 0, 26)
	out = append(out, "st-"...)
	var buf [32]byte
	for len(out) < 26 {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			if b < 248 && len(out) < 26 { // 248 = 4*62 keeps characters uniform
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

// errEnded is what WriteFrame returns once the live side ended the stream.
var errEnded = errors.New("live: stream ended")

// errNotBroadcasting: the stream has ended or has no video yet.
var errNotBroadcasting = errors.New("live: not broadcasting")

// errTranscodeCapacity refuses a stream no transcoder is free for.
var errTranscodeCapacity = errors.New("live: " + transcode.CapacityExceededReason)

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ingest.ErrCodec}, args...)...)
}
