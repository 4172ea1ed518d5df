package ivs

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/openivs/openivs/internal/store"
)

// Kinds playback keeps in the store, never visible through the API.
const (
	// KindSingleUseToken marks a played single-use token (parent =
	// channel), so that every node sharing the store refuses a replay.
	KindSingleUseToken = "single-use-token"
	// KindPlaybackSessionKey holds the key that signs viewer sessions,
	// shared by the nodes of a cluster.
	KindPlaybackSessionKey = "playback-session-key"
)

// PlaybackKey is an imported playback public key.
type PlaybackKey struct {
	Key *ecdsa.PublicKey
	DER []byte
}

// PlaybackAccess is what playback enforces for a channel.
type PlaybackAccess struct {
	Authorized bool
	Keys       []PlaybackKey // the account's
	Policy     *RestrictionPolicy
	// Revoked maps viewer ids to the highest revoked session version.
	Revoked map[string]int64
}

// PlaybackAccess loads a channel's playback rules; store.ErrNotFound when
// the channel does not exist.
func (s *Service) PlaybackAccess(ctx context.Context, channelARN string) (*PlaybackAccess, error) {
	r, err := s.store.Get(ctx, channelARN)
	if err != nil {
		return nil, err
	}
	if r.Kind != KindChannel {
		return nil, store.ErrNotFound
	}
	d, err := decodeChannel(r)
	if err != nil {
		return nil, err
	}
	out := &PlaybackAccess{Authorized: d.Authorized}
	if d.PlaybackRestrictionPolicyArn != "" {
		p, err := s.store.Get(ctx, d.PlaybackRestrictionPolicyArn)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			var pd policyDoc
			if err := json.Unmarshal(p.Doc, &pd); err != nil {
				return nil, err
			}
			out.Policy = &pd
		}
	}
	if d.Authorized {
		if out.Keys, err = s.playbackKeys(ctx, r.Account); err != nil {
			return nil, err
		}
	}
	// Revocations apply to public channels too: a viewer id can only come
	// from a token, but a channel made public again keeps its list.
	revs, err := s.store.List(ctx, store.Query{Kind: KindViewerRevocation, Parent: channelARN})
	if err != nil {
		return nil, err
	}
	for _, rv := range revs {
		var rd revocationDoc
		if err := json.Unmarshal(rv.Doc, &rd); err != nil {
			return nil, err
		}
		if out.Revoked == nil {
			out.Revoked = make(map[string]int64, len(revs))
		}
		out.Revoked[rd.ViewerID] = rd.VersionsUpTo
	}
	return out, nil
}

// playbackKeys returns every imported playback key of an account;
// playback tokens are verified against each (they carry no key id).
func (s *Service) playbackKeys(ctx context.Context, account string) ([]PlaybackKey, error) {
	items, err := s.store.List(ctx, store.Query{Kind: KindPlaybackKeyPair, Account: account})
	if err != nil {
		return nil, err
	}
	keys := make([]PlaybackKey, 0, len(items))
	for _, r := range items {
		var d keyPairDoc
		if err := json.Unmarshal(r.Doc, &d); err != nil {
			return nil, err
		}
		pub, der, err := parsePlaybackPublicKey(d.PublicKey)
		if err != nil {
			return nil, err
		}
		keys = append(keys, PlaybackKey{Key: pub, DER: der})
	}
	return keys, nil
}

// singleUseDoc is a played single-use token.
type singleUseDoc struct {
	Expires time.Time `json:"expires"`
}

// UseSingleUseToken records the first playback of a single-use token on
// a channel; false means it was played before (on any node sharing the
// store). The record is pruned after the token's expiry.
func (s *Service) UseSingleUseToken(ctx context.Context, channelARN, uuid string, exp time.Time) (bool, error) {
	a, ok := parseARN(channelARN)
	if !ok {
		return false, errors.New("ivs: bad channel ARN")
	}
	sum := sha256.Sum256([]byte(channelARN + "\x00" + uuid))
	doc, _ := json.Marshal(singleUseDoc{Expires: exp.UTC()})
	err := s.store.Insert(ctx, &store.Resource{
		ARN:  s.arn(a.Account, KindSingleUseToken, hex.EncodeToString(sum[:16])),
		Kind: KindSingleUseToken, Account: a.Account, Parent: channelARN, Doc: doc,
	}, store.Quota{})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrAlreadyExists):
		return false, nil
	default:
		return false, err
	}
}

// PruneSingleUseTokens forgets played single-use tokens past their
// expiry (they can no longer be played anyway).
func (s *Service) PruneSingleUseTokens(ctx context.Context, now time.Time) (int, error) {
	items, err := s.store.List(ctx, store.Query{Kind: KindSingleUseToken})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range items {
		var d singleUseDoc
		if json.Unmarshal(r.Doc, &d) == nil && now.Before(d.Expires) {
			continue
		}
		if err := s.store.Delete(ctx, r.ARN); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// PlaybackSessionKey returns the key that signs viewer sessions, creating
// it on first use; every node sharing the store gets the same one.
func (s *Service) PlaybackSessionKey(ctx context.Context) ([]byte, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	doc, _ := json.Marshal(key)
	r, err := store.GetOrInsert(ctx, s.store, &store.Resource{
		ARN: s.arn(s.cfg.AccountID, KindPlaybackSessionKey, "default"), Kind: KindPlaybackSessionKey, Account: s.cfg.AccountID, Doc: doc,
	})
	if err != nil {
		return nil, err
	}
	key = nil
	if err := json.Unmarshal(r.Doc, &key); err != nil || len(key) < 32 {
		return nil, errors.New("ivs: the stored playback session key is damaged")
	}
	return key, nil
}

// SetPlaybackRulesListener connects playback (called by internal/app):
// fn is called after every API call that changes what playback enforces.
func (s *Service) SetPlaybackRulesListener(fn func()) { s.playbackChanged = fn }
