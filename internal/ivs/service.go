// Package ivs is the IVS low-latency control plane: channels, stream keys,
// recording configurations, playback key pairs, playback restriction
// policies, streams and stream sessions, viewer-session revocations and tags,
// served through the shared AWS REST-JSON layer with IVS's rules.
package ivs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// Resource kinds; each is also the resource type in its ARN.
const (
	KindChannel           = "channel"
	KindStreamKey         = "stream-key"
	KindPlaybackKeyPair   = "playback-key"
	KindRecordingConfig   = "recording-configuration"
	KindRestrictionPolicy = "playback-restriction-policy"
	// Kinds that have no ARN of their own in the API.
	KindStream           = "stream"            // one per live channel; parent = channel
	KindStreamSession    = "stream-session"    // history; parent = channel
	KindViewerRevocation = "viewer-revocation" // parent = channel
)

// Config wires the service.
type Config struct {
	Store     store.Store
	Region    string
	AccountID string
	// IngestEndpoint is host:port of the RTMPS ingest as encoders reach it;
	// it is the channel's ingestEndpoint (rtmps://<it>/app/<streamKey>).
	IngestEndpoint string
	// SRTEndpoint is host:port of the SRT ingest (the channel's srt.endpoint).
	SRTEndpoint string
	// PlaybackBaseURL is scheme://host:port that viewers reach playback on.
	PlaybackBaseURL string
	Quotas          Quotas
	// RateLimits are per-operation requests per second (DefaultRateLimits).
	RateLimits map[string]float64
	Logger     *slog.Logger
	// Buckets checks the bucket of a new recording configuration, which is
	// CREATING until the check makes it ACTIVE or CREATE_FAILED. Nil: new
	// recording configurations are ACTIVE at once.
	Buckets BucketChecker
}

// Quotas are IVS's resource quotas (spec 05 §6.2), all configurable.
type Quotas struct {
	Channels                    int
	StreamKeysPerChannel        int
	PlaybackKeyPairs            int
	PlaybackRestrictionPolicies int
	RestrictionPolicyCountries  int
	RestrictionPolicyOrigins    int
	RecordingConfigurations     int
	ConcurrentStreams           int
	// ConcurrentViews bounds the account's viewer sessions (playback
	// enforces it; 0 = unlimited).
	ConcurrentViews int
}

// DefaultQuotas are IVS's defaults.
func DefaultQuotas() Quotas {
	return Quotas{
		Channels:                    5000,
		StreamKeysPerChannel:        1,
		PlaybackKeyPairs:            3,
		PlaybackRestrictionPolicies: 3,
		RestrictionPolicyCountries:  200,
		RestrictionPolicyOrigins:    5,
		RecordingConfigurations:     20,
		ConcurrentStreams:           100,
		ConcurrentViews:             15000,
	}
}

// Set changes one quota by its configuration name (as in the YAML file).
func (q *Quotas) Set(name string, v int) error {
	if v < 0 {
		return fmt.Errorf("quota %s: must not be negative", name)
	}
	fields := map[string]*int{
		"channels":                      &q.Channels,
		"stream-keys-per-channel":       &q.StreamKeysPerChannel,
		"playback-key-pairs":            &q.PlaybackKeyPairs,
		"playback-restriction-policies": &q.PlaybackRestrictionPolicies,
		"restriction-policy-countries":  &q.RestrictionPolicyCountries,
		"restriction-policy-origins":    &q.RestrictionPolicyOrigins,
		"recording-configurations":      &q.RecordingConfigurations,
		"concurrent-streams":            &q.ConcurrentStreams,
		"concurrent-views":              &q.ConcurrentViews,
	}
	f, ok := fields[name]
	if !ok {
		return fmt.Errorf("unknown quota %q", name)
	}
	*f = v
	return nil
}

// DefaultRateLimits are IVS's API call-rate quotas in requests per second
// per account (spec 05 §6.1). PutMetadata is further limited per channel.
func DefaultRateLimits() map[string]float64 {
	limits := map[string]float64{}
	set := func(tps float64, ops ...string) {
		for _, op := range ops {
			limits[op] = tps
		}
	}
	set(5, "BatchGetChannel", "CreateChannel", "DeleteChannel", "GetChannel", "ListChannels", "UpdateChannel")
	set(5, "CreatePlaybackRestrictionPolicy", "DeletePlaybackRestrictionPolicy", "GetPlaybackRestrictionPolicy",
		"ListPlaybackRestrictionPolicies", "UpdatePlaybackRestrictionPolicy")
	set(3, "DeletePlaybackKeyPair", "GetPlaybackKeyPair", "ImportPlaybackKeyPair", "ListPlaybackKeyPairs")
	set(2, "BatchStartViewerSessionRevocation")
	set(10, "StartViewerSessionRevocation")
	set(3, "CreateRecordingConfiguration", "DeleteRecordingConfiguration", "GetRecordingConfiguration",
		"ListRecordingConfigurations")
	set(5, "GetStream", "GetStreamSession", "ListStreams", "ListStreamSessions", "StopStream")
	set(155, "PutMetadata")
	set(5, "BatchGetStreamKey", "CreateStreamKey", "DeleteStreamKey", "GetStreamKey", "ListStreamKeys")
	set(10, "ListTagsForResource", "TagResource", "UntagResource")
	return limits
}

// PutMetadataPerChannelTPS is the per-channel PutMetadata rate (spec 05 §6.1).
const PutMetadataPerChannelTPS = 5

// Service implements the IVS API.
type Service struct {
	cfg   Config
	store store.Store
	log   *slog.Logger
	model *awsapi.Model
	res   awsapi.Resources
	// streams reaches live streams; nil until the ingest side is wired.
	streams StreamControl
	// viewers counts live viewers; nil until playback is wired.
	viewers ViewerCounter
	// playbackChanged is told after a call that changes what playback
	// enforces (set by internal/app).
	playbackChanged func()

	// Background work (bucket checks) runs on bg until Close.
	bg       context.Context
	bgCancel context.CancelFunc
	bgMu     sync.Mutex // guards bgClosed and bgWork.Add
	bgClosed bool
	bgWork   sync.WaitGroup
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("ivs: no store")
	}
	if cfg.Region == "" || cfg.AccountID == "" {
		return nil, errors.New("ivs: region and account id are required")
	}
	if cfg.Quotas == (Quotas{}) {
		cfg.Quotas = DefaultQuotas()
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = DefaultRateLimits()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	model, err := awsapi.LoadModel("ivs")
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger, model: model, bg: bg, bgCancel: cancel,
		res: awsapi.Resources{
			Store: cfg.Store, Service: "ivs", Region: cfg.Region, NotFound: notFound,
			// The kinds with an ARN of their own in the API.
			Taggable: []string{KindChannel, KindStreamKey, KindPlaybackKeyPair, KindRecordingConfig, KindRestrictionPolicy},
		}}, nil
}

// Close stops the service's background work and waits for it; call it
// before closing the store. Work cut short is picked up again by the next
// start (see ResumeBucketChecks).
func (s *Service) Close() {
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	s.bgCancel()
	s.bgWork.Wait()
}

// goBackground runs fn on the service's lifetime context, unless Close
// was called.
func (s *Service) goBackground(fn func(ctx context.Context)) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return
	}
	s.bgWork.Add(1)
	go func() {
		defer s.bgWork.Done()
		fn(s.bg)
	}()
}

// API returns the service for mounting on an awsapi.Server.
func (s *Service) API() *awsapi.Service {
	ops := map[string]awsapi.Handler{
		"CreateChannel": s.createChannel,
		"GetChannel": s.getHandler(KindChannel, "channel", func(r *store.Resource) (any, error) {
			return s.channelOut(r)
		}),
		"BatchGetChannel": s.batchGetChannel,
		"UpdateChannel":   s.updateChannel,
		"DeleteChannel":   s.deleteChannel,
		"ListChannels":    s.listChannels,

		"CreateStreamKey": s.createStreamKey,
		"GetStreamKey": s.getHandler(KindStreamKey, "streamKey", func(r *store.Resource) (any, error) {
			return streamKeyOut(r, true), nil
		}),
		"BatchGetStreamKey": s.batchGetStreamKey,
		"DeleteStreamKey":   s.deleteHandler(KindStreamKey, nil),
		"ListStreamKeys":    s.listStreamKeys,

		"ImportPlaybackKeyPair": s.importPlaybackKeyPair,
		"GetPlaybackKeyPair": s.getHandler(KindPlaybackKeyPair, "keyPair", func(r *store.Resource) (any, error) {
			return keyPairOut(r, true)
		}),
		// DeletePlaybackKeyPair answers 200 with an empty object, not 204.
		"DeletePlaybackKeyPair": s.deleteHandler(KindPlaybackKeyPair, struct{}{}),
		"ListPlaybackKeyPairs":  s.listPlaybackKeyPairs,

		"CreatePlaybackRestrictionPolicy": s.createRestrictionPolicy,
		"GetPlaybackRestrictionPolicy": s.getHandler(KindRestrictionPolicy, "playbackRestrictionPolicy", func(r *store.Resource) (any, error) {
			return policyOut(r)
		}),
		"UpdatePlaybackRestrictionPolicy": s.updateRestrictionPolicy,
		"DeletePlaybackRestrictionPolicy": s.deleteHandler(KindRestrictionPolicy, nil),
		"ListPlaybackRestrictionPolicies": s.listRestrictionPolicies,

		"CreateRecordingConfiguration": s.createRecordingConfiguration,
		"GetRecordingConfiguration": s.getHandler(KindRecordingConfig, "recordingConfiguration", func(r *store.Resource) (any, error) {
			return recordingOut(r)
		}),
		"DeleteRecordingConfiguration": s.deleteHandler(KindRecordingConfig, nil),
		"ListRecordingConfigurations":  s.listRecordingConfigurations,

		"GetStream":          s.getStream,
		"ListStreams":        s.listStreams,
		"StopStream":         s.stopStream,
		"PutMetadata":        s.putMetadata,
		"GetStreamSession":   s.getStreamSession,
		"ListStreamSessions": s.listStreamSessions,

		"StartViewerSessionRevocation":      s.startViewerSessionRevocation,
		"BatchStartViewerSessionRevocation": s.batchStartViewerSessionRevocation,

		"TagResource":         s.res.TagResource,
		"UntagResource":       s.res.UntagResource,
		"ListTagsForResource": s.res.ListTagsForResource,
	}
	// Calls that change playback rules tell playback at once, so the very
	// next playback request on this node obeys them.
	for _, name := range []string{
		"UpdateChannel", "DeleteChannel", "ImportPlaybackKeyPair", "DeletePlaybackKeyPair",
		"UpdatePlaybackRestrictionPolicy", "DeletePlaybackRestrictionPolicy",
		"StartViewerSessionRevocation", "BatchStartViewerSessionRevocation",
	} {
		op := ops[name]
		ops[name] = func(ctx context.Context, call *awsapi.Call) (any, error) {
			out, err := op(ctx, call)
			if err == nil && s.playbackChanged != nil {
				s.playbackChanged()
			}
			return out, err
		}
	}
	return &awsapi.Service{
		SigningName: "ivs",
		Model:       s.model,
		Operations:  ops,
		RateLimits:  s.cfg.RateLimits,
		OwnsARN:     s.ownsARN,
	}
}

// ownsARN tells the tag routes which ARNs are IVS low-latency resources
// (the Real-Time API signs with the same service name).
func (s *Service) ownsARN(arn string) bool {
	a, ok := parseARN(arn)
	if !ok {
		return true // let validation explain what is wrong with it
	}
	return slices.Contains(s.res.Taggable, a.Kind)
}

// arn builds the ARN of a resource of the caller's account.
func (s *Service) arn(account, kind, id string) string { return s.res.ARN(account, kind, id) }

// ARN is a parsed IVS ARN.
type ARN = awsapi.ARN

func parseARN(s string) (ARN, bool) { return awsapi.ParseARN("ivs", s) }

// ParseChannelARN returns the channel id of a channel ARN.
func ParseChannelARN(s string) (ARN, bool) {
	a, ok := parseARN(s)
	return a, ok && a.Kind == KindChannel
}

// lookup reads a resource of the caller's account, answering
// ResourceNotFoundException for anything else (another account or region,
// another kind, or missing).
func (s *Service) lookup(ctx context.Context, call *awsapi.Call, kind, arn string) (*store.Resource, error) {
	return s.lookupIn(ctx, call.Account, kind, arn)
}

func (s *Service) lookupIn(ctx context.Context, account, kind, arn string) (*store.Resource, error) {
	return s.res.Lookup(ctx, account, kind, arn)
}

var kindNames = map[string]string{
	KindChannel:           "channel",
	KindStreamKey:         "stream key",
	KindPlaybackKeyPair:   "playback key pair",
	KindRecordingConfig:   "recording configuration",
	KindRestrictionPolicy: "playback restriction policy",
	KindStreamSession:     "stream session",
}

func notFound(kind, arn string) *awsapi.Error {
	return awsapi.NotFound("The %s %s was not found.", kindNames[kind], arn)
}

// storeError maps store errors that a handler did not handle itself.
func storeError(err error) error {
	var referenced *store.ReferencedError
	switch {
	case errors.As(err, &referenced):
		return awsapi.Conflict("%s is in use by %s.", referenced.ARN, referenced.By)
	case errors.Is(err, store.ErrAlreadyExists):
		return awsapi.Conflict("The resource already exists.")
	}
	return awsapi.StoreError(err, "ivs", notFound)
}

// randomID returns n random alphanumeric characters (IVS resource ids are 12).
func randomID(n int) string { return awsapi.RandomID(n) }

// paginate lists one page of q and returns the next token when more remain.
// filters identifies the listing so a token cannot be replayed elsewhere.
func paginate(ctx context.Context, st store.Store, call *awsapi.Call, q store.Query, filters string, maxResults *int, defaultMax int, nextToken *string) ([]*store.Resource, *string, error) {
	return awsapi.Paginate(ctx, st, call, q, awsapi.Page{
		Filters: filters, MaxResults: maxResults, DefaultMax: defaultMax, NextToken: nextToken})
}

func validateTags(tags map[string]string) error { return awsapi.ValidateTags(tags) }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func tagsOrEmpty(t map[string]string) map[string]string { return awsapi.TagsOrEmpty(t) }

// listOut is a list response; nextToken is left out on the last page.
func listOut(key string, items any, next *string) map[string]any {
	return awsapi.ListOutput(key, items, next)
}

// getHandler serves Get<Resource>: {"arn": …} → {key: render(resource)}.
func (s *Service) getHandler(kind, key string, render func(*store.Resource) (any, error)) awsapi.Handler {
	return func(ctx context.Context, call *awsapi.Call) (any, error) {
		var in struct {
			Arn string `json:"arn"`
		}
		if err := call.Decode(&in); err != nil {
			return nil, err
		}
		r, err := s.lookup(ctx, call, kind, in.Arn)
		if err != nil {
			return nil, err
		}
		out, err := render(r)
		if err != nil {
			return nil, err
		}
		return map[string]any{key: out}, nil
	}
}

// deleteReferenced deletes a resource; while a channel still refers to it,
// IVS answers ConflictException.
func (s *Service) deleteReferenced(ctx context.Context, kind, arn string) error {
	err := s.store.Delete(ctx, arn)
	var referenced *store.ReferencedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &referenced):
		return awsapi.Conflict("The %s %s is still associated with channel %s; remove it from every channel first.", kindNames[kind], arn, referenced.By)
	case errors.Is(err, store.ErrNotFound):
		return notFound(kind, arn)
	}
	return storeError(err)
}

// deleteHandler serves Delete<Resource> for resources that need no check
// beyond existence and references; response is the body of a success (nil
// for the operations that answer 204).
func (s *Service) deleteHandler(kind string, response any) awsapi.Handler {
	return func(ctx context.Context, call *awsapi.Call) (any, error) {
		var in struct {
			Arn string `json:"arn"`
		}
		if err := call.Decode(&in); err != nil {
			return nil, err
		}
		if _, err := s.lookup(ctx, call, kind, in.Arn); err != nil {
			return nil, err
		}
		if err := s.deleteReferenced(ctx, kind, in.Arn); err != nil {
			return nil, err
		}
		return response, nil
	}
}
