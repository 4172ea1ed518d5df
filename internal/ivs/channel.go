package ivs

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// channelDoc is what the store keeps for a channel: the settings a user can
// change plus the SRT passphrase. Endpoints and URLs are derived on output so
// that they follow the server's configuration.
type channelDoc struct {
	Name                         string                        `json:"name"`
	Type                         string                        `json:"type"`
	LatencyMode                  string                        `json:"latencyMode"`
	Authorized                   bool                          `json:"authorized"`
	InsecureIngest               bool                          `json:"insecureIngest"`
	Preset                       string                        `json:"preset"`
	ContainerFormat              string                        `json:"containerFormat"`
	RecordingConfigurationArn    string                        `json:"recordingConfigurationArn"`
	PlaybackRestrictionPolicyArn string                        `json:"playbackRestrictionPolicyArn"`
	MultitrackInputConfiguration *MultitrackInputConfiguration `json:"multitrackInputConfiguration,omitempty"`
	SRTPassphrase                string                        `json:"srtPassphrase"`
}

// Channel is the API's Channel shape.
type Channel struct {
	Arn                          string                        `json:"arn"`
	Name                         string                        `json:"name"`
	LatencyMode                  string                        `json:"latencyMode"`
	Type                         string                        `json:"type"`
	RecordingConfigurationArn    string                        `json:"recordingConfigurationArn"`
	IngestEndpoint               string                        `json:"ingestEndpoint"`
	PlaybackURL                  string                        `json:"playbackUrl"`
	Authorized                   bool                          `json:"authorized"`
	Tags                         map[string]string             `json:"tags"`
	InsecureIngest               bool                          `json:"insecureIngest"`
	Preset                       string                        `json:"preset"`
	SRT                          *SRT                          `json:"srt"`
	PlaybackRestrictionPolicyArn string                        `json:"playbackRestrictionPolicyArn"`
	MultitrackInputConfiguration *MultitrackInputConfiguration `json:"multitrackInputConfiguration,omitempty"`
	ContainerFormat              string                        `json:"containerFormat"`
	AdConfigurationArn           string                        `json:"adConfigurationArn"`
}

// ChannelSummary is the API's ChannelSummary shape (ListChannels).
type ChannelSummary struct {
	Arn                          string            `json:"arn"`
	Name                         string            `json:"name"`
	LatencyMode                  string            `json:"latencyMode"`
	Authorized                   bool              `json:"authorized"`
	RecordingConfigurationArn    string            `json:"recordingConfigurationArn"`
	Tags                         map[string]string `json:"tags"`
	InsecureIngest               bool              `json:"insecureIngest"`
	Type                         string            `json:"type"`
	Preset                       string            `json:"preset"`
	PlaybackRestrictionPolicyArn string            `json:"playbackRestrictionPolicyArn"`
	AdConfigurationArn           string            `json:"adConfigurationArn"`
}

// SRT is the channel's SRT ingest endpoint and passphrase.
type SRT struct {
	Endpoint   string `json:"endpoint"`
	Passphrase string `json:"passphrase"`
}

// MultitrackInputConfiguration is the API shape of the same name.
type MultitrackInputConfiguration struct {
	Enabled           bool   `json:"enabled"`
	MaximumResolution string `json:"maximumResolution,omitempty"`
	Policy            string `json:"policy,omitempty"`
}

// channelSettings are the members CreateChannel and UpdateChannel share.
type channelSettings struct {
	Name                         *string                       `json:"name"`
	Type                         *string                       `json:"type"`
	LatencyMode                  *string                       `json:"latencyMode"`
	Authorized                   *bool                         `json:"authorized"`
	InsecureIngest               *bool                         `json:"insecureIngest"`
	Preset                       *string                       `json:"preset"`
	ContainerFormat              *string                       `json:"containerFormat"`
	RecordingConfigurationArn    *string                       `json:"recordingConfigurationArn"`
	PlaybackRestrictionPolicyArn *string                       `json:"playbackRestrictionPolicyArn"`
	MultitrackInputConfiguration *MultitrackInputConfiguration `json:"multitrackInputConfiguration"`
	AdConfigurationArn           *string                       `json:"adConfigurationArn"`
}

const (
	typeBasic      = "BASIC"
	typeStandard   = "STANDARD"
	typeAdvancedSD = "ADVANCED_SD"
	typeAdvancedHD = "ADVANCED_HD"
	presetHigher   = "HIGHER_BANDWIDTH_DELIVERY"
)

func isAdvanced(t string) bool { return t == typeAdvancedSD || t == typeAdvancedHD }

// apply merges the settings present in in into d, then checks the rules
// that tie fields together.
func (in *channelSettings) apply(d *channelDoc) error {
	if in.AdConfigurationArn != nil && *in.AdConfigurationArn != "" {
		return awsapi.Validation("adConfigurationArn: ad configurations are not supported by this server.")
	}
	oldType := d.Type
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&d.Name, in.Name)
	set(&d.Type, in.Type)
	set(&d.LatencyMode, in.LatencyMode)
	set(&d.Preset, in.Preset)
	set(&d.ContainerFormat, in.ContainerFormat)
	set(&d.RecordingConfigurationArn, in.RecordingConfigurationArn)
	set(&d.PlaybackRestrictionPolicyArn, in.PlaybackRestrictionPolicyArn)
	if in.Authorized != nil {
		d.Authorized = *in.Authorized
	}
	if in.InsecureIngest != nil {
		d.InsecureIngest = *in.InsecureIngest
	}
	if in.MultitrackInputConfiguration != nil {
		m := *in.MultitrackInputConfiguration
		if m.Policy == "" {
			m.Policy = "ALLOW"
		}
		if m.MaximumResolution == "" {
			m.MaximumResolution = "FULL_HD"
		}
		d.MultitrackInputConfiguration = &m
	}

	switch {
	case isAdvanced(d.Type):
		if d.Preset == "" {
			d.Preset = presetHigher
		}
	case in.Preset != nil && *in.Preset != "":
		return awsapi.Validation("preset: a transcode preset can be set only for ADVANCED_SD and ADVANCED_HD channels, not %s.", d.Type)
	default:
		// Moving away from an advanced type drops its preset.
		if isAdvanced(oldType) || d.Preset != "" {
			d.Preset = ""
		}
	}
	if m := d.MultitrackInputConfiguration; m != nil && m.Enabled {
		if d.Type != typeStandard {
			return awsapi.Validation("multitrackInputConfiguration: multitrack input is supported only on STANDARD channels, not %s.", d.Type)
		}
		if d.ContainerFormat != "FRAGMENTED_MP4" {
			return awsapi.Validation("containerFormat: must be FRAGMENTED_MP4 when multitrackInputConfiguration is enabled.")
		}
	}
	return nil
}

func (d *channelDoc) refs() []string {
	var refs []string
	if d.RecordingConfigurationArn != "" {
		refs = append(refs, d.RecordingConfigurationArn)
	}
	if d.PlaybackRestrictionPolicyArn != "" {
		refs = append(refs, d.PlaybackRestrictionPolicyArn)
	}
	return refs
}

func decodeChannel(r *store.Resource) (*channelDoc, error) {
	var d channelDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// PlaybackURL is where viewers load a channel's multivariant playlist.
func (s *Service) PlaybackURL(account, channelID string) string {
	return s.cfg.PlaybackBaseURL + "/api/video/v1/" + s.cfg.Region + "." + account + ".channel." + channelID + ".m3u8"
}

func (s *Service) channelOut(r *store.Resource) (*Channel, error) {
	d, err := decodeChannel(r)
	if err != nil {
		return nil, err
	}
	a, _ := parseARN(r.ARN)
	ch := &Channel{
		Arn: r.ARN, Name: d.Name, LatencyMode: d.LatencyMode, Type: d.Type,
		RecordingConfigurationArn: d.RecordingConfigurationArn, IngestEndpoint: s.cfg.IngestEndpoint,
		PlaybackURL: s.PlaybackURL(r.Account, a.ID), Authorized: d.Authorized, Tags: tagsOrEmpty(r.Tags),
		InsecureIngest: d.InsecureIngest, Preset: d.Preset,
		SRT:                          &SRT{Endpoint: s.cfg.SRTEndpoint, Passphrase: d.SRTPassphrase},
		PlaybackRestrictionPolicyArn: d.PlaybackRestrictionPolicyArn,
		MultitrackInputConfiguration: d.MultitrackInputConfiguration, ContainerFormat: d.ContainerFormat,
	}
	return ch, nil
}

func summarizeChannel(r *store.Resource) (*ChannelSummary, error) {
	d, err := decodeChannel(r)
	if err != nil {
		return nil, err
	}
	return &ChannelSummary{
		Arn: r.ARN, Name: d.Name, LatencyMode: d.LatencyMode, Authorized: d.Authorized,
		RecordingConfigurationArn: d.RecordingConfigurationArn, Tags: tagsOrEmpty(r.Tags),
		InsecureIngest: d.InsecureIngest, Type: d.Type, Preset: d.Preset,
		PlaybackRestrictionPolicyArn: d.PlaybackRestrictionPolicyArn,
	}, nil
}

// checkRefs answers ResourceNotFoundException for a recording configuration
// or restriction policy that is not the caller's.
func (s *Service) checkRefs(ctx context.Context, account string, d *channelDoc) error {
	if d.RecordingConfigurationArn != "" {
		if _, err := s.lookupIn(ctx, account, KindRecordingConfig, d.RecordingConfigurationArn); err != nil {
			return err
		}
	}
	if d.PlaybackRestrictionPolicyArn != "" {
		if _, err := s.lookupIn(ctx, account, KindRestrictionPolicy, d.PlaybackRestrictionPolicyArn); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) createChannel(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		channelSettings
		Tags map[string]string `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	ch, key, err := s.create(ctx, call.Account, &in.channelSettings, in.Tags)
	if err != nil {
		return nil, err
	}
	out, err := s.channelOut(ch)
	if err != nil {
		return nil, err
	}
	return map[string]any{"channel": out, "streamKey": streamKeyOut(key, true)}, nil
}

// CreateChannel makes a channel from Go (tools such as the ingest
// benchmark, and tests) with the same defaults and rules as the API; it
// returns the channel ARN and its stream key.
func (s *Service) CreateChannel(ctx context.Context, account, name, channelType string, insecureIngest bool) (arn, streamKey string, err error) {
	return s.CreateChannelIn(ctx, account, name, channelType, "", insecureIngest)
}

// CreateChannelIn is CreateChannel with a container format ("TS",
// "FRAGMENTED_MP4"; empty for the default).
func (s *Service) CreateChannelIn(ctx context.Context, account, name, channelType, containerFormat string, insecureIngest bool) (arn, streamKey string, err error) {
	in := channelSettings{Name: &name, Type: &channelType, InsecureIngest: &insecureIngest}
	if containerFormat != "" {
		in.ContainerFormat = &containerFormat
	}
	ch, key, err := s.create(ctx, account, &in, nil)
	if err != nil {
		return "", "", err
	}
	return ch.ARN, streamKeyOut(key, true).Value, nil
}

// create makes a channel and its stream key.
func (s *Service) create(ctx context.Context, account string, in *channelSettings, tags map[string]string) (ch, key *store.Resource, err error) {
	d := &channelDoc{Type: typeStandard, LatencyMode: "LOW", ContainerFormat: "TS"}
	if err := in.apply(d); err != nil {
		return nil, nil, err
	}
	if err := validateTags(tags); err != nil {
		return nil, nil, err
	}
	if err := s.checkRefs(ctx, account, d); err != nil {
		return nil, nil, err
	}
	d.SRTPassphrase = randomID(41)
	doc, _ := json.Marshal(d)
	ch = &store.Resource{
		ARN: s.arn(account, KindChannel, randomID(12)), Kind: KindChannel, Account: account,
		Name: d.Name, Refs: d.refs(), Tags: tags, Doc: doc,
	}
	if err := s.store.Insert(ctx, ch, store.Quota{Max: s.cfg.Quotas.Channels}); err != nil {
		if errors.Is(err, store.ErrQuotaExceeded) {
			return nil, nil, awsapi.QuotaExceeded("Channel quota of %d has been reached.", s.cfg.Quotas.Channels)
		}
		return nil, nil, storeError(err)
	}
	key, err = s.insertStreamKey(ctx, account, ch.ARN, nil)
	if err != nil {
		// Without its key the channel is useless; undo it rather than leave half a create.
		if derr := s.store.Delete(context.WithoutCancel(ctx), ch.ARN); derr != nil {
			s.log.Error("undoing channel create", "channel", ch.ARN, "err", derr)
		}
		return nil, nil, err
	}
	return ch, key, nil
}

// BatchError is the API's per-ARN error in batch responses.
type BatchError struct {
	Arn     string `json:"arn"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Service) batchGet(ctx context.Context, call *awsapi.Call, kind string, arns []string, each func(*store.Resource) (any, error)) ([]any, []BatchError, error) {
	items := []any{}
	errs := []BatchError{}
	seen := map[string]bool{}
	for _, arn := range arns {
		if seen[arn] {
			continue
		}
		seen[arn] = true
		r, err := s.lookup(ctx, call, kind, arn)
		if err != nil {
			var ae *awsapi.Error
			if errors.As(err, &ae) {
				errs = append(errs, BatchError{Arn: arn, Code: ae.Code, Message: ae.Message})
				continue
			}
			return nil, nil, err
		}
		out, err := each(r)
		if err != nil {
			return nil, nil, err
		}
		items = append(items, out)
	}
	return items, errs, nil
}

func (s *Service) batchGetChannel(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Arns []string `json:"arns"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	channels, errs, err := s.batchGet(ctx, call, KindChannel, in.Arns, func(r *store.Resource) (any, error) {
		return s.channelOut(r)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"channels": channels, "errors": errs}, nil
}

// isLive reports whether the channel has a live stream.
func (s *Service) isLive(ctx context.Context, channelARN string) (bool, error) {
	streams, err := s.store.List(ctx, store.Query{Kind: KindStream, Parent: channelARN, Limit: 1})
	return len(streams) > 0, err
}

func (s *Service) updateChannel(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Arn string `json:"arn"`
		channelSettings
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	current, err := s.lookup(ctx, call, KindChannel, in.Arn)
	if err != nil {
		return nil, err
	}
	if live, err := s.isLive(ctx, in.Arn); err != nil {
		return nil, err
	} else if live {
		return nil, awsapi.Conflict("Channel %s is live; stop the stream before updating the channel.", in.Arn)
	}
	// Check the merged settings before writing; the store re-checks that the
	// referenced resources still exist inside its transaction.
	preview, err := decodeChannel(current)
	if err != nil {
		return nil, err
	}
	if err := in.apply(preview); err != nil {
		return nil, err
	}
	if err := s.checkRefs(ctx, call.Account, preview); err != nil {
		return nil, err
	}
	updated, err := s.store.Update(ctx, in.Arn, func(r *store.Resource) error {
		d, err := decodeChannel(r)
		if err != nil {
			return err
		}
		if err := in.apply(d); err != nil {
			return err
		}
		r.Doc, _ = json.Marshal(d)
		r.Name, r.Refs = d.Name, d.refs()
		return nil
	})
	if err != nil {
		return nil, storeError(err)
	}
	out, err := s.channelOut(updated)
	if err != nil {
		return nil, err
	}
	return map[string]any{"channel": out}, nil
}

func (s *Service) deleteChannel(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Arn string `json:"arn"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call, KindChannel, in.Arn); err != nil {
		return nil, err
	}
	if live, err := s.isLive(ctx, in.Arn); err != nil {
		return nil, err
	} else if live {
		return nil, awsapi.Conflict("Channel %s is live; call StopStream and wait for the stream to end before deleting it.", in.Arn)
	}
	return nil, s.deleteReferenced(ctx, KindChannel, in.Arn)
}

func (s *Service) listChannels(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		FilterByName                         *string `json:"filterByName"`
		FilterByRecordingConfigurationArn    *string `json:"filterByRecordingConfigurationArn"`
		FilterByPlaybackRestrictionPolicyArn *string `json:"filterByPlaybackRestrictionPolicyArn"`
		FilterByAdConfigurationArn           *string `json:"filterByAdConfigurationArn"`
		MaxResults                           *int    `json:"maxResults"`
		NextToken                            *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	q := store.Query{Kind: KindChannel, Account: call.Account}
	filters := 0
	for _, f := range []*string{in.FilterByName, in.FilterByRecordingConfigurationArn, in.FilterByPlaybackRestrictionPolicyArn, in.FilterByAdConfigurationArn} {
		if f != nil && *f != "" {
			filters++
		}
	}
	if filters > 1 {
		return nil, awsapi.Conflict("Channel list filters are mutually exclusive and cannot be used together.")
	}
	switch {
	case str(in.FilterByName) != "":
		q.Name = *in.FilterByName
	case str(in.FilterByRecordingConfigurationArn) != "":
		q.Ref = *in.FilterByRecordingConfigurationArn
	case str(in.FilterByPlaybackRestrictionPolicyArn) != "":
		q.Ref = *in.FilterByPlaybackRestrictionPolicyArn
	case str(in.FilterByAdConfigurationArn) != "":
		return map[string]any{"channels": []any{}}, nil // no ad configurations exist here
	}
	items, next, err := paginate(ctx, s.store, call, q, "name="+q.Name+"\x00ref="+q.Ref, in.MaxResults, 100, in.NextToken)
	if err != nil {
		return nil, err
	}
	channels := make([]*ChannelSummary, 0, len(items))
	for _, r := range items {
		c, err := summarizeChannel(r)
		if err != nil {
			return nil, err
		}
		channels = append(channels, c)
	}
	return listOut("channels", channels, next), nil
}
