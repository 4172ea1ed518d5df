package ivs

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/store"
)

// This file is the live-stream manager's window on the control plane: it
// resolves stream keys to channels and keeps the stream and stream-session
// records that GetStream, ListStreams and the session operations read.

// Errors of the live-record operations.
var (
	ErrStreamKeyUnknown  = errors.New("ivs: unknown stream key")
	ErrChannelLive       = errors.New("ivs: channel already has a live stream")
	ErrConcurrentStreams = errors.New("ivs: concurrent streams quota reached")
)

// IngestChannel is what ingest needs to know about a channel.
type IngestChannel struct {
	ARN, Account, ID, Name string
	Type, LatencyMode      string
	ContainerFormat        string
	Preset                 string // ADVANCED_* transcode preset ("" = default)
	InsecureIngest         bool
	SRTPassphrase          string
	// Snapshot is the channel as the API shows it, kept in stream sessions.
	Snapshot *Channel
	// Recording is the channel's recording configuration when it has one
	// (in whatever state it is: only ACTIVE ones record).
	Recording *RecordingConfiguration
}

// ChannelByStreamKey resolves the stream key an encoder presents.
func (s *Service) ChannelByStreamKey(ctx context.Context, key string) (*IngestChannel, error) {
	k, err := s.store.GetByUnique(ctx, KindStreamKey, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrStreamKeyUnknown
	} else if err != nil {
		return nil, err
	}
	r, err := s.store.Get(ctx, k.Parent)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrStreamKeyUnknown // the channel went away with its key
	} else if err != nil {
		return nil, err
	}
	d, err := decodeChannel(r)
	if err != nil {
		return nil, err
	}
	snap, err := s.channelOut(r)
	if err != nil {
		return nil, err
	}
	a, _ := parseARN(r.ARN)
	ch := &IngestChannel{
		ARN: r.ARN, Account: r.Account, ID: a.ID, Name: d.Name, Type: d.Type, LatencyMode: d.LatencyMode, ContainerFormat: d.ContainerFormat, Preset: d.Preset,
		InsecureIngest: d.InsecureIngest, SRTPassphrase: d.SRTPassphrase, Snapshot: snap,
	}
	if d.RecordingConfigurationArn != "" {
		rc, err := s.store.Get(ctx, d.RecordingConfigurationArn)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			if ch.Recording, err = recordingOut(rc); err != nil {
				return nil, err
			}
		}
	}
	return ch, nil
}

// ConcurrentStreamsQuota is the configured concurrent-streams quota.
func (s *Service) ConcurrentStreamsQuota() int { return s.cfg.Quotas.ConcurrentStreams }

func (s *Service) streamARN(ch *IngestChannel) string { return s.arn(ch.Account, KindStream, ch.ID) }

// BeginStream records a channel going live: its stream record (one per
// channel; counted against the concurrent-streams quota in the same
// transaction) and its new session, with evs (Session Created) in the
// session's transaction.
func (s *Service) BeginStream(ctx context.Context, ch *IngestChannel, st Stream, sess StreamSession, evs []events.Event) error {
	recs, err := events.Records(evs)
	if err != nil {
		return err
	}
	doc, _ := json.Marshal(st)
	err = s.store.Insert(ctx, &store.Resource{
		ARN: s.streamARN(ch), Kind: KindStream, Account: ch.Account, Parent: ch.ARN, Doc: doc,
	}, store.Quota{Max: s.cfg.Quotas.ConcurrentStreams})
	switch {
	case errors.Is(err, store.ErrAlreadyExists):
		return ErrChannelLive
	case errors.Is(err, store.ErrQuotaExceeded):
		return ErrConcurrentStreams
	case err != nil:
		return err
	}
	sdoc, _ := json.Marshal(sess)
	err = s.store.Insert(ctx, &store.Resource{
		ARN: s.sessionARN(ch.Account, sess.StreamID), Kind: KindStreamSession, Account: ch.Account, Parent: ch.ARN, Doc: sdoc,
		Events: recs,
	}, store.Quota{})
	if err != nil {
		_ = s.store.Delete(context.WithoutCancel(ctx), s.streamARN(ch))
		return err
	}
	return nil
}

// SaveStream updates the live stream record (health, viewers).
func (s *Service) SaveStream(ctx context.Context, ch *IngestChannel, st Stream) error {
	_, err := s.store.Update(ctx, s.streamARN(ch), func(r *store.Resource) error {
		r.Doc, _ = json.Marshal(st)
		return nil
	})
	return err
}

// SaveSession rewrites a stream session (events, ingest configuration) and
// appends evs, the events the session recorded since its last save, to the
// event outbox in the same transaction.
func (s *Service) SaveSession(ctx context.Context, account string, sess StreamSession, evs []events.Event) error {
	recs, err := events.Records(evs)
	if err != nil {
		return err
	}
	_, err = s.store.Update(ctx, s.sessionARN(account, sess.StreamID), func(r *store.Resource) error {
		r.Doc, _ = json.Marshal(sess)
		r.Events = recs
		return nil
	})
	return err
}

// EndStream removes the live stream record and saves the finished session
// with its last events.
func (s *Service) EndStream(ctx context.Context, ch *IngestChannel, sess StreamSession, evs []events.Event) error {
	err := s.store.Delete(ctx, s.streamARN(ch))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return s.SaveSession(ctx, ch.Account, sess, evs)
}

// EndAbandonedStreams closes the records of streams that no node serves any
// more (a crash or kill left them): their sessions get an end time and the
// Session Ended (and, when it had started, Stream End) events IVS sends
// when an encoder goes away, and the channels go offline. With one node,
// every stream record at start is one.
func (s *Service) EndAbandonedStreams(ctx context.Context, now time.Time) (int, error) {
	items, err := s.store.List(ctx, store.Query{Kind: KindStream})
	if err != nil {
		return 0, err
	}
	for _, r := range items {
		var st Stream
		if err := json.Unmarshal(r.Doc, &st); err == nil && st.StreamID != "" {
			_, err := s.store.Update(ctx, s.sessionARN(r.Account, st.StreamID), func(sr *store.Resource) error {
				var sess StreamSession
				if err := json.Unmarshal(sr.Doc, &sess); err != nil {
					return err
				}
				if sess.EndTime != nil {
					return nil
				}
				sess.EndTime = &now
				recs, err := events.Records(s.abandonedEvents(r.Account, st, &sess, now))
				if err != nil {
					return err
				}
				sr.Doc, _ = json.Marshal(sess)
				sr.Events = recs
				return nil
			})
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, err
			}
		}
		if err := s.store.Delete(ctx, r.ARN); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
	}
	return len(items), nil
}

// abandonedEvents ends an abandoned session's event history and returns the
// events to publish for it.
func (s *Service) abandonedEvents(account string, st Stream, sess *StreamSession, now time.Time) []events.Event {
	name := ""
	if sess.Channel != nil {
		name = sess.Channel.Name
	}
	started, ended := false, false
	for _, e := range sess.TruncatedEvents {
		started = started || e.Name == "Stream Start"
		ended = ended || e.Name == "Stream End"
	}
	names := []string{"Session Ended"}
	if started && !ended {
		names = append(names, "Stream End")
	}
	var out []events.Event
	for _, n := range names {
		out = append(out, events.New(events.StreamStateChange, account, s.cfg.Region, now,
			map[string]any{"event_name": n, "channel_name": name, "stream_id": st.StreamID}, st.ChannelArn))
		sess.TruncatedEvents = append([]StreamEvent{{Name: n, Type: events.StreamStateChange, EventTime: now.UTC()}},
			sess.TruncatedEvents...)
	}
	if len(sess.TruncatedEvents) > maxTruncatedEvents {
		sess.TruncatedEvents = sess.TruncatedEvents[:maxTruncatedEvents]
	}
	return out
}

// maxTruncatedEvents is how many events a stream session keeps.
const maxTruncatedEvents = 500

// SessionRetention is how long IVS keeps stream sessions.
const SessionRetention = 60 * 24 * time.Hour

// PruneStreamSessions deletes ended stream sessions created before
// olderThan. Sessions are listed oldest first, so it stops at the first
// younger one.
func (s *Service) PruneStreamSessions(ctx context.Context, olderThan time.Time) (int, error) {
	pruned := 0
	var cursor int64
	for {
		items, err := s.store.List(ctx, store.Query{Kind: KindStreamSession, AfterSeq: cursor, Limit: 200})
		if err != nil {
			return pruned, err
		}
		for _, r := range items {
			if !r.CreatedAt.Before(olderThan) {
				return pruned, nil
			}
			cursor = r.Seq
			var sess StreamSession
			if err := json.Unmarshal(r.Doc, &sess); err != nil || sess.EndTime == nil {
				continue // still live (or unreadable): leave it
			}
			if err := s.store.Delete(ctx, r.ARN); err != nil && !errors.Is(err, store.ErrNotFound) {
				return pruned, err
			}
			pruned++
		}
		if len(items) < 200 {
			return pruned, nil
		}
	}
}

// ChannelPlaybackURL returns the playbackUrl of one of account's channels by
// its id, or false when there is no such channel (the demo page uses it).
func (s *Service) ChannelPlaybackURL(ctx context.Context, account, channelID string) (string, bool) {
	r, err := s.store.Get(ctx, s.arn(account, KindChannel, channelID))
	if err != nil || r.Kind != KindChannel {
		return "", false
	}
	return s.PlaybackURL(account, channelID), true
}
