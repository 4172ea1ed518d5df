package ivs

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// StreamKey is the API's StreamKey shape; Value is the secret that
// authorises ingest.
type StreamKey struct {
	Arn        string            `json:"arn"`
	Value      string            `json:"value,omitempty"`
	ChannelArn string            `json:"channelArn"`
	Tags       map[string]string `json:"tags"`
}

type streamKeyDoc struct {
	Value string `json:"value"`
}

func streamKeyOut(r *store.Resource, withValue bool) *StreamKey {
	k := &StreamKey{Arn: r.ARN, ChannelArn: r.Parent, Tags: tagsOrEmpty(r.Tags)}
	if withValue {
		var d streamKeyDoc
		_ = json.Unmarshal(r.Doc, &d)
		k.Value = d.Value
	}
	return k
}

// newStreamKeyValue makes a key in IVS's sk_<region>_<random> form.
func (s *Service) newStreamKeyValue() string {
	return "sk_" + s.cfg.Region + "_" + randomID(36)
}

func (s *Service) insertStreamKey(ctx context.Context, account, channelARN string, tags map[string]string) (*store.Resource, error) {
	value := s.newStreamKeyValue()
	doc, _ := json.Marshal(streamKeyDoc{Value: value})
	r := &store.Resource{
		ARN: s.arn(account, KindStreamKey, randomID(12)), Kind: KindStreamKey, Account: account,
		Parent: channelARN, Unique: value, Tags: tags, Doc: doc,
	}
	err := s.store.Insert(ctx, r, store.Quota{Max: s.cfg.Quotas.StreamKeysPerChannel, PerParent: true})
	switch {
	case errors.Is(err, store.ErrQuotaExceeded):
		return nil, awsapi.QuotaExceeded("Channel %s already has the maximum of %d stream key(s).", channelARN, s.cfg.Quotas.StreamKeysPerChannel)
	case err != nil:
		return nil, storeError(err)
	}
	return r, nil
}

func (s *Service) createStreamKey(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ChannelArn string            `json:"channelArn"`
		Tags       map[string]string `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call, KindChannel, in.ChannelArn); err != nil {
		return nil, err
	}
	r, err := s.insertStreamKey(ctx, call.Account, in.ChannelArn, in.Tags)
	if err != nil {
		return nil, err
	}
	return map[string]any{"streamKey": streamKeyOut(r, true)}, nil
}

func (s *Service) batchGetStreamKey(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Arns []string `json:"arns"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	keys, errs, err := s.batchGet(ctx, call, KindStreamKey, in.Arns, func(r *store.Resource) (any, error) {
		return streamKeyOut(r, true), nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"streamKeys": keys, "errors": errs}, nil
}

func (s *Service) listStreamKeys(ctx context.Context, call *awsapi.Call) (any, error) {
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
	q := store.Query{Kind: KindStreamKey, Account: call.Account, Parent: in.ChannelArn}
	items, next, err := paginate(ctx, s.store, call, q, in.ChannelArn, in.MaxResults, 50, in.NextToken)
	if err != nil {
		return nil, err
	}
	keys := make([]*StreamKey, 0, len(items))
	for _, r := range items {
		keys = append(keys, streamKeyOut(r, false))
	}
	return listOut("streamKeys", keys, next), nil
}
