package chat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

const (
	// tokenPrefix makes a chat token recognizable (in a leaked log, a
	// secret scanner); the rest is 48 random bytes, unpadded base64url,
	// so the whole token is also a valid WebSocket subprotocol.
	tokenPrefix     = "ivschat.v1."
	tokenRandomLen  = 48
	maxAttributeLen = 1024 // attributes: "The maximum length of this field is 1 KB total."
	// DefaultSessionDuration: sessionDurationInMinutes "Default: 60 (1 hour)".
	DefaultSessionDuration = 60 * time.Minute
)

var tokenLen = len(tokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenRandomLen)

// tokenDoc is an unredeemed chat token. The store holds only the token's
// SHA-256, so its contents cannot be replayed from a database dump.
type tokenDoc struct {
	UserID         string            `json:"userId"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Capabilities   []string          `json:"capabilities"`
	TokenExpires   time.Time         `json:"tokenExpires"`
	SessionExpires time.Time         `json:"sessionExpires"`
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// attributesLen is the size that the 1 KB attribute limits apply to: the
// UTF-8 bytes of every key and value.
func attributesLen(attrs map[string]string) int {
	n := 0
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return n
}

func (s *Service) createChatToken(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		RoomIdentifier           string            `json:"roomIdentifier"`
		UserID                   string            `json:"userId"`
		Attributes               map[string]string `json:"attributes"`
		Capabilities             []string          `json:"capabilities"`
		SessionDurationInMinutes *int              `json:"sessionDurationInMinutes"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if n := attributesLen(in.Attributes); n > maxAttributeLen {
		return nil, validation("attributes", "the attributes are %d bytes long; at most %d are allowed.", n, maxAttributeLen)
	}
	if _, err := s.lookup(ctx, call.Account, KindRoom, in.RoomIdentifier); err != nil {
		return nil, err
	}
	session := DefaultSessionDuration
	if in.SessionDurationInMinutes != nil {
		session = time.Duration(*in.SessionDurationInMinutes) * time.Minute
	}
	t, err := s.issueToken(ctx, call.Account, in.RoomIdentifier, tokenDoc{
		UserID: in.UserID, Attributes: in.Attributes, Capabilities: dedupe(in.Capabilities),
	}, session)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"token":                 t.Token,
		"tokenExpirationTime":   isoTime(t.TokenExpires),
		"sessionExpirationTime": isoTime(t.SessionExpires),
	}, nil
}

// issuedToken is a chat token just minted, with its two deadlines.
type issuedToken struct {
	Token                        string
	TokenExpires, SessionExpires time.Time
}

// issueToken mints a chat token for the room roomARN of account (looked
// up by the caller) granting d's user, attributes and capabilities for a
// session of the given length. CreateChatToken and the chat demo's token
// endpoint both mint through it.
func (s *Service) issueToken(ctx context.Context, account, roomARN string, d tokenDoc, session time.Duration) (*issuedToken, error) {
	// Millisecond precision: what the response shows is what is enforced.
	now := s.now().UTC().Truncate(time.Millisecond)
	d.TokenExpires, d.SessionExpires = now.Add(s.cfg.TokenValidity), now.Add(session)
	raw := make([]byte, tokenRandomLen)
	_, _ = rand.Read(raw) // never fails (crypto/rand contract)
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	hash := tokenHash(token)
	doc, _ := json.Marshal(d)
	err := s.store.Insert(ctx, &store.Resource{
		ARN: s.arn(account, KindChatToken, hash), Kind: KindChatToken, Account: account,
		Parent: roomARN, Unique: hash, Doc: doc,
	}, store.Quota{})
	if err != nil {
		// The room was deleted since the look-up: *MissingError.
		return nil, storeError(err)
	}
	return &issuedToken{Token: token, TokenExpires: d.TokenExpires, SessionExpires: d.SessionExpires}, nil
}

// RedeemToken spends a chat token for one messaging connection. A token
// works once: the store's delete of its record succeeds for exactly one
// caller, on whichever node sharing the store. Errors: ErrTokenInvalid
// (unknown, malformed, already used or expired), ErrRoomNotFound.
func (s *Service) RedeemToken(ctx context.Context, token string) (*Grant, error) {
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return nil, ErrTokenInvalid
	}
	r, err := s.store.GetByUnique(ctx, KindChatToken, tokenHash(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrTokenInvalid
	} else if err != nil {
		return nil, err
	}
	// Spend it first, expired or not: a token is never looked at twice.
	if err := s.store.Delete(ctx, r.ARN); errors.Is(err, store.ErrNotFound) {
		return nil, ErrTokenInvalid // another connection spent it first
	} else if err != nil {
		return nil, err
	}
	var d tokenDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(d.TokenExpires) || !now.Before(d.SessionExpires) {
		return nil, ErrTokenInvalid
	}
	room, err := s.Room(ctx, r.Parent)
	if err != nil {
		return nil, err
	}
	caps := d.Capabilities
	if caps == nil {
		caps = []string{}
	}
	return &Grant{
		RoomARN: room.ARN, UserID: d.UserID, Attributes: d.Attributes,
		Capabilities: caps, SessionExpires: d.SessionExpires,
	}, nil
}

// pruneBatch bounds how many token records PruneChatTokens reads at once.
const pruneBatch = 1000

// PruneChatTokens deletes the tokens that expired unredeemed before now
// and returns how many it deleted; call it now and then.
func (s *Service) PruneChatTokens(ctx context.Context, now time.Time) (int, error) {
	n := 0
	var cursor int64
	for {
		items, err := s.store.List(ctx, store.Query{Kind: KindChatToken, AfterSeq: cursor, Limit: pruneBatch})
		if err != nil {
			return n, err
		}
		for _, r := range items {
			var d tokenDoc
			if json.Unmarshal(r.Doc, &d) == nil && now.Before(d.TokenExpires) {
				continue
			}
			if err := s.store.Delete(ctx, r.ARN); errors.Is(err, store.ErrNotFound) {
				continue // redeemed or pruned meanwhile
			} else if err != nil {
				return n, err
			}
			n++
		}
		if len(items) < pruneBatch {
			return n, nil
		}
		cursor = items[len(items)-1].Seq
	}
}
