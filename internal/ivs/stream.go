package ivs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// Stream is the API's Stream shape: the live stream of a channel. The live
// stream manager keeps one per live channel in the store (kind "stream",
// parent = channel ARN); it is gone when the channel is offline.
type Stream struct {
	ChannelArn  string    `json:"channelArn"`
	StreamID    string    `json:"streamId"`
	PlaybackURL string    `json:"playbackUrl,omitempty"`
	StartTime   time.Time `json:"startTime"`
	State       string    `json:"state"`
	Health      string    `json:"health"`
	ViewerCount int64     `json:"viewerCount"`
}

// StreamSession is the API's StreamSession shape, kept per stream (kind
// "stream-session", parent = channel ARN) after it ends.
type StreamSession struct {
	StreamID               string                  `json:"streamId"`
	StartTime              *time.Time              `json:"startTime,omitempty"`
	EndTime                *time.Time              `json:"endTime,omitempty"`
	Channel                *Channel                `json:"channel,omitempty"`
	IngestConfiguration    *IngestConfiguration    `json:"ingestConfiguration,omitempty"`
	IngestConfigurations   *IngestConfigurations   `json:"ingestConfigurations,omitempty"`
	RecordingConfiguration *RecordingConfiguration `json:"recordingConfiguration,omitempty"`
	TruncatedEvents        []StreamEvent           `json:"truncatedEvents"`
}

// IngestConfiguration is what the encoder sent, as probed at ingest.
type IngestConfiguration struct {
	Video *VideoConfiguration `json:"video,omitempty"`
	Audio *AudioConfiguration `json:"audio,omitempty"`
}

// IngestConfigurations lists every track (multitrack form).
type IngestConfigurations struct {
	VideoConfigurations []VideoConfiguration `json:"videoConfigurations"`
	AudioConfigurations []AudioConfiguration `json:"audioConfigurations"`
}

// VideoConfiguration is the API shape of the same name.
type VideoConfiguration struct {
	AvcLevel        string `json:"avcLevel,omitempty"`
	AvcProfile      string `json:"avcProfile,omitempty"`
	Codec           string `json:"codec,omitempty"`
	Encoder         string `json:"encoder,omitempty"`
	Level           string `json:"level,omitempty"`
	Profile         string `json:"profile,omitempty"`
	TargetBitrate   int64  `json:"targetBitrate"`
	TargetFramerate int64  `json:"targetFramerate"`
	Track           string `json:"track,omitempty"`
	VideoHeight     int64  `json:"videoHeight"`
	VideoWidth      int64  `json:"videoWidth"`
}

// AudioConfiguration is the API shape of the same name.
type AudioConfiguration struct {
	Channels      int64  `json:"channels"`
	Codec         string `json:"codec,omitempty"`
	SampleRate    int64  `json:"sampleRate"`
	TargetBitrate int64  `json:"targetBitrate"`
	Track         string `json:"track,omitempty"`
}

// StreamEvent is one entry of a session's event history.
type StreamEvent struct {
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	EventTime time.Time `json:"eventTime"`
	Code      string    `json:"code,omitempty"`
}

// StreamControl reaches the live streams themselves; the ingest and
// metadata issues provide it. Without it nothing can be live, so the
// operations below never get past ChannelNotBroadcasting.
type StreamControl interface {
	StopStream(ctx context.Context, channelARN string) error
	PutMetadata(ctx context.Context, channelARN string, metadata string) error
}

// SetStreamControl connects the live-stream side (called by internal/app).
func (s *Service) SetStreamControl(c StreamControl) { s.streams = c }

// ViewerCounter reports a live channel's current viewers (playback's
// viewer sessions) for Stream.viewerCount.
type ViewerCounter interface {
	Count(channelARN string) int
}

// SetViewerCounter connects the playback side (called by internal/app).
func (s *Service) SetViewerCounter(c ViewerCounter) { s.viewers = c }

// viewerCount is what Stream.viewerCount says for a live channel.
func (s *Service) viewerCount(channelARN string) int64 {
	if s.viewers == nil {
		return 0
	}
	return int64(s.viewers.Count(channelARN))
}

func notBroadcasting(channelARN string) *awsapi.Error {
	return awsapi.Errorf("ChannelNotBroadcasting", "Channel %s is not broadcasting.", channelARN)
}

// liveStream returns the channel's live stream record, or ChannelNotBroadcasting.
func (s *Service) liveStream(ctx context.Context, channelARN string) (*Stream, error) {
	items, err := s.store.List(ctx, store.Query{Kind: KindStream, Parent: channelARN, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, notBroadcasting(channelARN)
	}
	var st Stream
	if err := json.Unmarshal(items[0].Doc, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (s *Service) getStream(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ChannelArn string `json:"channelArn"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	ch, err := s.lookup(ctx, call, KindChannel, in.ChannelArn)
	if err != nil {
		return nil, err
	}
	st, err := s.liveStream(ctx, ch.ARN)
	if err != nil {
		return nil, err
	}
	a, _ := parseARN(ch.ARN)
	st.ChannelArn, st.PlaybackURL = ch.ARN, s.PlaybackURL(ch.Account, a.ID)
	st.ViewerCount = s.viewerCount(ch.ARN)
	return map[string]any{"stream": st}, nil
}

func (s *Service) listStreams(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		FilterBy *struct {
			Health string `json:"health"`
		} `json:"filterBy"`
		MaxResults *int    `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	health := ""
	if in.FilterBy != nil {
		health = in.FilterBy.Health
	}
	limit := 100
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	token := ""
	if in.NextToken != nil {
		token = *in.NextToken
	}
	cursor, err := call.PageCursor("health="+health, token)
	if err != nil {
		return nil, err
	}
	// Health changes while streams run, so the filter applies while paging.
	streams := []Stream{}
	var next *string
fill:
	for {
		items, err := s.store.List(ctx, store.Query{Kind: KindStream, Account: call.Account, AfterSeq: cursor, Limit: limit + 1})
		if err != nil {
			return nil, err
		}
		for _, r := range items {
			if len(streams) == limit {
				t := call.PageToken("health="+health, cursor)
				next = &t
				break fill
			}
			cursor = r.Seq
			var st Stream
			if err := json.Unmarshal(r.Doc, &st); err != nil {
				return nil, err
			}
			if health != "" && st.Health != health {
				continue
			}
			st.ChannelArn, st.PlaybackURL = r.Parent, ""
			st.ViewerCount = s.viewerCount(r.Parent)
			streams = append(streams, st)
		}
		if len(items) <= limit {
			break
		}
	}
	return listOut("streams", streams, next), nil
}

func (s *Service) stopStream(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ChannelArn string `json:"channelArn"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call, KindChannel, in.ChannelArn); err != nil {
		return nil, err
	}
	if _, err := s.liveStream(ctx, in.ChannelArn); err != nil {
		return nil, err
	}
	if s.streams == nil {
		return nil, awsapi.Errorf("StreamUnavailable", "The stream of channel %s cannot be reached.", in.ChannelArn)
	}
	if err := s.streams.StopStream(ctx, in.ChannelArn); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// MaxMetadataBytes is the PutMetadata payload limit (spec 05 §6.2).
const MaxMetadataBytes = 1024

func (s *Service) putMetadata(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ChannelArn string `json:"channelArn"`
		Metadata   string `json:"metadata"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if n := len(in.Metadata); n > MaxMetadataBytes {
		return nil, awsapi.Validation("metadata: the payload is %d bytes; the limit is %d bytes.", n, MaxMetadataBytes)
	}
	if _, err := s.lookup(ctx, call, KindChannel, in.ChannelArn); err != nil {
		return nil, err
	}
	if !call.Allow("PutMetadata\x00"+in.ChannelArn, PutMetadataPerChannelTPS) {
		return nil, awsapi.Errorf(awsapi.CodeThrottling, "Rate exceeded: PutMetadata is limited to %d requests per second per channel.", PutMetadataPerChannelTPS)
	}
	if _, err := s.liveStream(ctx, in.ChannelArn); err != nil {
		return nil, err
	}
	if s.streams == nil {
		return nil, awsapi.Errorf("StreamUnavailable", "The stream of channel %s cannot be reached.", in.ChannelArn)
	}
	if err := s.streams.PutMetadata(ctx, in.ChannelArn, in.Metadata); err != nil {
		return nil, err
	}
	return nil, nil
}

func decodeSession(r *store.Resource) (*StreamSession, error) {
	var ss StreamSession
	if err := json.Unmarshal(r.Doc, &ss); err != nil {
		return nil, err
	}
	if ss.TruncatedEvents == nil {
		ss.TruncatedEvents = []StreamEvent{}
	}
	return &ss, nil
}

// sessionARN is the store key of a stream session (not an API ARN).
func (s *Service) sessionARN(account, streamID string) string {
	return s.arn(account, KindStreamSession, streamID)
}

func (s *Service) getStreamSession(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ChannelArn string `json:"channelArn"`
		StreamID   string `json:"streamId"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call, KindChannel, in.ChannelArn); err != nil {
		return nil, err
	}
	var r *store.Resource
	if in.StreamID == "" {
		// Without a stream id: the channel's latest session.
		items, err := s.store.List(ctx, store.Query{Kind: KindStreamSession, Parent: in.ChannelArn, Descending: true, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, awsapi.NotFound("Channel %s has no stream sessions.", in.ChannelArn)
		}
		r = items[0]
	} else {
		got, err := s.store.Get(ctx, s.sessionARN(call.Account, in.StreamID))
		if errors.Is(err, store.ErrNotFound) || (err == nil && got.Parent != in.ChannelArn) {
			return nil, awsapi.NotFound("Stream session %s was not found on channel %s.", in.StreamID, in.ChannelArn)
		} else if err != nil {
			return nil, err
		}
		r = got
	}
	ss, err := decodeSession(r)
	if err != nil {
		return nil, err
	}
	return map[string]any{"streamSession": ss}, nil
}

func (s *Service) listStreamSessions(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ChannelArn string  `json:"channelArn"`
		MaxResults *int    `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call, KindChannel, in.ChannelArn); err != nil {
		return nil, err
	}
	q := store.Query{Kind: KindStreamSession, Parent: in.ChannelArn, Descending: true}
	items, next, err := paginate(ctx, s.store, call, q, in.ChannelArn, in.MaxResults, 100, in.NextToken)
	if err != nil {
		return nil, err
	}
	type summary struct {
		StreamID      string     `json:"streamId"`
		StartTime     *time.Time `json:"startTime,omitempty"`
		EndTime       *time.Time `json:"endTime,omitempty"`
		HasErrorEvent bool       `json:"hasErrorEvent"`
	}
	list := make([]summary, 0, len(items))
	for _, r := range items {
		ss, err := decodeSession(r)
		if err != nil {
			return nil, err
		}
		sum := summary{StreamID: ss.StreamID, StartTime: ss.StartTime, EndTime: ss.EndTime}
		for _, e := range ss.TruncatedEvents {
			if e.Type == "IVS Stream State Change" && e.Name == "Session Ended" && e.Code != "" {
				sum.HasErrorEvent = true
			}
		}
		list = append(list, sum)
	}
	return listOut("streamSessions", list, next), nil
}

// revocationARN keys a viewer's revocation record under its channel.
func (s *Service) revocationARN(channelARN, viewerID string) string {
	a, _ := parseARN(channelARN)
	sum := sha256.Sum256([]byte(viewerID))
	return s.arn(a.Account, KindViewerRevocation, a.ID+"-"+hex.EncodeToString(sum[:16]))
}

type revocationDoc struct {
	ViewerID string `json:"viewerId"`
	// Sessions with a viewer-session-version ≤ this are revoked.
	VersionsUpTo int64     `json:"versionsUpTo"`
	RevokedAt    time.Time `json:"revokedAt"`
}

// revoke records (or raises) a viewer's revoked session version.
func (s *Service) revoke(ctx context.Context, account, channelARN, viewerID string, version int64) error {
	arn := s.revocationARN(channelARN, viewerID)
	now := time.Now().UTC()
	for attempt := 0; attempt < 3; attempt++ {
		_, err := s.store.Update(ctx, arn, func(r *store.Resource) error {
			var d revocationDoc
			if err := json.Unmarshal(r.Doc, &d); err != nil {
				return err
			}
			if version > d.VersionsUpTo {
				d.VersionsUpTo = version
			}
			d.RevokedAt = now
			r.Doc, _ = json.Marshal(d)
			return nil
		})
		if !errors.Is(err, store.ErrNotFound) {
			return storeError(err)
		}
		doc, _ := json.Marshal(revocationDoc{ViewerID: viewerID, VersionsUpTo: version, RevokedAt: now})
		err = s.store.Insert(ctx, &store.Resource{ARN: arn, Kind: KindViewerRevocation, Account: account, Parent: channelARN, Doc: doc}, store.Quota{})
		if !errors.Is(err, store.ErrAlreadyExists) {
			var missing *store.MissingError
			if errors.As(err, &missing) {
				return notFound(KindChannel, channelARN)
			}
			return storeError(err)
		}
		// Another revocation of the same viewer won the insert; update it.
	}
	return awsapi.Errorf(awsapi.CodeInternal, "Could not record the revocation; retry.")
}

// RevokedVersion tells playback the highest revoked viewer-session version
// of a viewer on a channel, if any.
func (s *Service) RevokedVersion(ctx context.Context, channelARN, viewerID string) (int64, bool, error) {
	r, err := s.store.Get(ctx, s.revocationARN(channelARN, viewerID))
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, err
	}
	var d revocationDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return 0, false, err
	}
	return d.VersionsUpTo, true, nil
}

func (s *Service) startViewerSessionRevocation(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ChannelArn string `json:"channelArn"`
		ViewerID   string `json:"viewerId"`
		Version    int64  `json:"viewerSessionVersionsLessThanOrEqualTo"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call, KindChannel, in.ChannelArn); err != nil {
		return nil, err
	}
	if err := s.revoke(ctx, call.Account, in.ChannelArn, in.ViewerID, in.Version); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) batchStartViewerSessionRevocation(ctx context.Context, call *awsapi.Call) (any, error) {
	type viewerSession struct {
		ChannelArn string `json:"channelArn"`
		ViewerID   string `json:"viewerId"`
		Version    int64  `json:"viewerSessionVersionsLessThanOrEqualTo"`
	}
	var in struct {
		ViewerSessions []viewerSession `json:"viewerSessions"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	type batchError struct {
		ChannelArn string `json:"channelArn"`
		ViewerID   string `json:"viewerId"`
		Code       string `json:"code"`
		Message    string `json:"message"`
	}
	errs := []batchError{}
	for _, vs := range in.ViewerSessions {
		err := func() error {
			if _, err := s.lookup(ctx, call, KindChannel, vs.ChannelArn); err != nil {
				return err
			}
			return s.revoke(ctx, call.Account, vs.ChannelArn, vs.ViewerID, vs.Version)
		}()
		var ae *awsapi.Error
		switch {
		case err == nil:
		case errors.As(err, &ae):
			errs = append(errs, batchError{vs.ChannelArn, vs.ViewerID, ae.Code, ae.Message})
		default:
			return nil, err
		}
	}
	return map[string]any{"errors": errs}, nil
}
