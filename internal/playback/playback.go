// Package playback serves viewers: the multivariant playlist at a
// channel's playbackUrl and the renditions' playlists and media below it.
// It owns viewer access — private-channel tokens (token.go), playback
// restriction policies and revocations (rules.go), the signed viewer
// session that authorises child requests (session.go) — and counts
// viewers (viewers.go).
package playback

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openivs/openivs/internal/hls"
)

// Streams finds a channel's live renditions (live.Manager).
type Streams interface {
	Playback(channelARN string) ([]hls.Variant, bool)
}

// CountryLookup tells a viewer's country (ISO 3166-1 alpha-2) from its
// address, or "" when it cannot (a GeoIP database).
type CountryLookup interface {
	Country(addr netip.Addr) string
}

// AddrResolver tells a request's client address (the socket peer, or
// X-Forwarded-For from a trusted proxy).
type AddrResolver interface {
	Addr(r *http.Request) netip.Addr
}

// SingleUseStore remembers the single-use tokens already played. Use
// reports whether this is the first use of uuid on the channel; it may
// forget it after exp.
type SingleUseStore interface {
	Use(ctx context.Context, channelARN, uuid string, exp time.Time) (first bool, err error)
}

// SingleUseFunc adapts a function to SingleUseStore.
type SingleUseFunc func(ctx context.Context, channelARN, uuid string, exp time.Time) (bool, error)

// Use calls f.
func (f SingleUseFunc) Use(ctx context.Context, channelARN, uuid string, exp time.Time) (bool, error) {
	return f(ctx, channelARN, uuid, exp)
}

// Handler serves /api/video/v1/<region>.<account>.channel.<id>.m3u8 and,
// below /api/video/v1/<region>.<account>.channel.<id>/[<session>/]<rendition>/,
// each rendition's playlist and media. The session path element is the
// signed viewer session the multivariant playlist minted; relative
// segment URIs in the media playlists inherit it, so the shared playlist
// bodies need no per-viewer rewriting.
type Handler struct {
	Region  string
	Streams Streams
	// Viewers, when set, counts viewer sessions: the multivariant playlist
	// mints a session into its rendition URLs and every media playlist
	// fetch renews it.
	Viewers *Viewers
	// ViewerLimit bounds the concurrent viewer sessions of the account
	// (IVS's "Concurrent views" quota, 15,000); 0 means no limit. A new
	// viewer beyond it gets 429, and OnViewerLimit is told.
	ViewerLimit   int
	OnViewerLimit func(account string, limit, attempted int)

	// Rules gives channels' authorisation, keys, restriction policies and
	// revocations; nil makes every channel public without a policy.
	Rules RulesSource
	// SessionKey signs viewer sessions; nodes serving the same viewers
	// must share it. Nil: a random key of this process.
	SessionKey []byte
	// GeoIP tells viewers' countries for allowedCountries; nil: unknown
	// (allowed, as IVS does).
	GeoIP CountryLookup
	// ClientIP tells the viewer's address; nil: the socket peer.
	ClientIP AddrResolver
	// SingleUse remembers played single-use tokens; nil: this process's
	// memory.
	SingleUse SingleUseStore
	Logger    *slog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time

	once     sync.Once
	rules    *rulesCache
	sessions *SessionSigner
	verified verifyCache
	lastKey  atomic.Pointer[string] // DER of the key that verified the last new token
}

// Prefix is the path every playback URL starts with.
const Prefix = "/api/video/v1/"

// Answers, worded like IVS's: a refusal does not say which check failed.
const (
	msgForbidden = "Forbidden: the playback token is missing or invalid, or playback is not allowed from this origin or location."
	msgNotLive   = "The channel is not live."
)

func (h *Handler) setup() {
	h.once.Do(func() {
		if h.Now == nil {
			h.Now = time.Now
		}
		if h.Logger == nil {
			h.Logger = slog.New(slog.DiscardHandler)
		}
		key := h.SessionKey
		if len(key) == 0 {
			key = make([]byte, 32)
			_, _ = rand.Read(key)
		}
		h.sessions = NewSessionSigner(key)
		if h.Rules != nil {
			h.rules = &rulesCache{source: h.Rules, now: h.Now}
		}
		if h.SingleUse == nil {
			h.SingleUse = &memorySingleUse{used: map[string]time.Time{}}
		}
	})
}

// Invalidate makes the next request for channelARN ("" for every
// channel) use its rules afresh: the API calls it after a change.
func (h *Handler) Invalidate(channelARN string) {
	h.setup()
	if h.rules != nil {
		h.rules.invalidate(channelARN)
	}
}

// public are the rules of every channel when Handler.Rules is nil.
var public = &Rules{}

// channelRules returns the cached rules of arn.
func (h *Handler) channelRules(ctx context.Context, arn string) (*Rules, error) {
	if h.rules == nil {
		return public, nil
	}
	return h.rules.get(ctx, arn)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.setup()
	// Errors too are readable cross-origin, so that a player can tell 403
	// from 404 from 429; a restricted channel's answers name the origin
	// instead (setCORS).
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		// CORS preflight: playback is GET only, with no credentials.
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, Prefix)
	stream, sub, _ := strings.Cut(rest, "/")
	if sub == "" {
		stream = strings.TrimSuffix(stream, ".m3u8")
	}
	arn, ok := h.channelARN(stream)
	if !ok {
		writeError(w, http.StatusNotFound, "no such channel")
		return
	}
	rules, err := h.channelRules(r.Context(), arn)
	switch {
	case errors.Is(err, ErrNoChannel):
		writeError(w, http.StatusNotFound, "no such channel")
		return
	case err != nil:
		h.Logger.Error("playback: loading channel rules", "channel", arn, "err", err)
		writeError(w, http.StatusServiceUnavailable, "playback rules are unavailable; retry")
		return
	}
	if sub == "" {
		h.serveMultivariant(w, r, arn, stream, rules)
		return
	}
	h.serveChild(w, r, arn, sub, rules)
}

// deny answers 403 and logs why at debug level (never the token).
func (h *Handler) deny(w http.ResponseWriter, arn, why string, err error) {
	h.Logger.Debug("playback refused", "channel", arn, "why", why, "err", err)
	writeError(w, http.StatusForbidden, msgForbidden)
}

// clientAddr is the viewer's address.
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	if h.ClientIP != nil {
		return h.ClientIP.Addr(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// country is the viewer's country, "" when unknown (no --geoip-db).
func (h *Handler) country(r *http.Request) string {
	if h.GeoIP == nil {
		return ""
	}
	return h.GeoIP.Country(h.clientAddr(r))
}

// policyAllows applies a restriction policy to one request: countries
// always; origins on the multivariant request, or on every request with
// strict enforcement (which also requires the Origin header).
func (h *Handler) policyAllows(p *Policy, r *http.Request, origin string, multivariant bool) bool {
	if p == nil {
		return true
	}
	if len(p.AllowedCountries) > 0 && h.GeoIP != nil && !p.allowsCountry(h.GeoIP.Country(h.clientAddr(r))) {
		return false
	}
	return originCheck(p.AllowedOrigins, p.StrictOrigin, origin, multivariant)
}

// originCheck applies an origin list: without strict enforcement only
// the multivariant request of a browser (which sends Origin) is checked;
// with it every request must carry a matching Origin.
func originCheck(allowed []string, strict bool, origin string, multivariant bool) bool {
	if !strict && (!multivariant || origin == "") {
		return true
	}
	if origin == "" {
		return false
	}
	return len(allowed) == 0 || originAllowed(allowed, origin)
}

// setCORS answers the browser: the request's own origin when a policy or
// token restricts origins (it passed the checks to get here), else "*".
func setCORS(w http.ResponseWriter, origin string, restricted bool) {
	if restricted && origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

// serveMultivariant checks the viewer (restriction policy, then the token
// of an authorized channel), mints its viewer session and lists the
// stream's renditions it may play, highest first; the audio-only
// rendition of BASIC and STANDARD channels only when the viewer asks with
// ?allow_audio_only=true.
func (h *Handler) serveMultivariant(w http.ResponseWriter, r *http.Request, arn, stream string, rules *Rules) {
	now := h.Now()
	origin := r.Header.Get("Origin")
	if !h.policyAllows(rules.Policy, r, origin, true) {
		h.deny(w, arn, "restriction policy", nil)
		return
	}
	restricted := rules.Policy != nil && (len(rules.Policy.AllowedOrigins) > 0 || rules.Policy.StrictOrigin)
	sess := Session{Expires: now.Add(SessionLifetime)}
	var claims *Claims
	if rules.Authorized {
		v, err := h.verify(r.URL.Query().Get("token"), rules.Keys, now)
		if err != nil {
			h.deny(w, arn, "token", err)
			return
		}
		claims = &v.Claims
		switch {
		case claims.ChannelARN != arn:
			h.deny(w, arn, "token", errors.New("token is for another channel"))
			return
		case !originCheck(claims.AllowOrigins, claims.StrictOrigin, origin, true):
			h.deny(w, arn, "token origin", nil)
			return
		case rules.revoked(claims.ViewerID, claims.ViewerSessionVersion):
			h.deny(w, arn, "viewer session revoked", nil)
			return
		}
		restricted = restricted || len(claims.AllowOrigins) > 0 || claims.StrictOrigin
		sess.StrictOrigin = claims.StrictOrigin
		if sess.StrictOrigin {
			sess.OriginHash = hashOrigin(origin)
		}
		sess.ViewerID, sess.ViewerSessionVersion = claims.ViewerID, claims.ViewerSessionVersion
		sess.MaximumResolution = claims.MaximumResolution
	}
	setCORS(w, origin, restricted)
	variants, ok := h.Streams.Playback(arn)
	if !ok {
		writeError(w, http.StatusNotFound, msgNotLive)
		return
	}
	// A player reloading the multivariant playlist with its session keeps
	// its id (and is counted once); what it may play comes from this
	// request's checks.
	if old, ok := h.sessions.Verify(arn, r.URL.Query().Get(sessionParam), now); ok {
		sess.ID = old.ID
	}
	isNew := sess.ID == ""
	if isNew && h.Viewers != nil && h.ViewerLimit > 0 {
		if n := h.Viewers.Total(); n >= h.ViewerLimit {
			if h.OnViewerLimit != nil {
				h.OnViewerLimit(accountOf(arn), h.ViewerLimit, n+1)
			}
			writeError(w, http.StatusTooManyRequests, "the concurrent viewers limit of this account is reached")
			return
		}
	}
	list := h.renditions(r, stream, variants, claims)
	if len(list) == 0 {
		h.deny(w, arn, "no rendition within the token's maximum resolution", nil)
		return
	}
	// Single use is spent last: a token that was refused, or asked for an
	// offline channel, can still be used.
	if claims != nil && claims.SingleUseUUID != "" {
		first, err := h.SingleUse.Use(r.Context(), arn, claims.SingleUseUUID, time.Unix(claims.Exp, 0))
		if err != nil {
			h.Logger.Error("playback: recording a single-use token", "channel", arn, "err", err)
			writeError(w, http.StatusServiceUnavailable, "playback rules are unavailable; retry")
			return
		}
		if !first {
			h.deny(w, arn, "single-use token replayed", nil)
			return
		}
	}
	if isNew {
		sess.ID = newSessionID()
	}
	param := h.sessions.Mint(arn, sess)
	if h.Viewers != nil {
		h.Viewers.Touch(arn, sess.ID, h.country(r))
	}
	for i := range list {
		list[i].URI = stream + "/" + param + "/" + list[i].URI
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "private, no-store") // one viewer's session
	_, _ = w.Write(hls.MultivariantPlaylist(list))
}

// renditions lists the variants the viewer may play, URIs relative to
// the stream ("<rendition>/playlist.m3u8").
func (h *Handler) renditions(r *http.Request, stream string, variants []hls.Variant, claims *Claims) []hls.Rendition {
	allowAudioOnly := r.URL.Query().Get("allow_audio_only") == "true"
	maxHeight := 0
	if claims != nil {
		maxHeight = claims.MaxHeight()
	}
	var list []hls.Rendition
	for _, v := range variants {
		if v.OnRequest && !(v.AudioOnly && allowAudioOnly) {
			continue
		}
		info := v.Packager.Info()
		measured := info.FrameRate > 0
		if maxHeight > 0 && !v.AudioOnly && shortSide(v, info) > maxHeight {
			continue
		}
		if info.Bandwidth <= 0 {
			info.Bandwidth, info.AverageBandwidth = v.Bandwidth, v.Bandwidth
		}
		if info.FrameRate <= 0 && !v.AudioOnly {
			info.FrameRate = v.FrameRate
		}
		name := v.Name
		if v.Source && measured || name == "" {
			name = renditionName(info) // what the packager measured
		}
		list = append(list, hls.Rendition{
			Name: name, URI: v.Path + "/" + hls.PlaylistName, Info: info, AudioOnly: v.AudioOnly,
		})
	}
	return list
}

// shortSide is a rendition's resolution class ("720" of 720p): the short
// side of its picture, as measured, else as planned.
func shortSide(v hls.Variant, info hls.RenditionInfo) int {
	w, h := info.Width, info.Height
	if w == 0 || h == 0 {
		w, h = v.Width, v.Height
	}
	if w == 0 || h == 0 {
		// Not measured yet: unknown size counts as too large for a
		// capped viewer rather than leaking a high rendition.
		return 1 << 30
	}
	return min(w, h)
}

// serveChild serves a rendition's playlist or media:
// "[<session>/]<rendition>/<resource>".
func (h *Handler) serveChild(w http.ResponseWriter, r *http.Request, arn, sub string, rules *Rules) {
	parts := strings.Split(sub, "/")
	param := ""
	if len(parts) == 3 {
		param, parts = parts[0], parts[1:]
	}
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		writeError(w, http.StatusNotFound, "no such rendition")
		return
	}
	path, resource := parts[0], parts[1]
	variants, ok := h.Streams.Playback(arn)
	if !ok {
		writeError(w, http.StatusNotFound, msgNotLive)
		return
	}
	var variant *hls.Variant
	for i := range variants {
		if variants[i].Path == path {
			variant = &variants[i]
			break
		}
	}
	if variant == nil {
		writeError(w, http.StatusNotFound, "no such rendition")
		return
	}
	origin := r.Header.Get("Origin")
	sess, ok, why := h.authorizeChild(r, arn, rules, param, origin, variant)
	if why != "" {
		h.deny(w, arn, why, nil)
		return
	}
	restricted := rules.Policy != nil && (len(rules.Policy.AllowedOrigins) > 0 || rules.Policy.StrictOrigin) || sess.StrictOrigin
	setCORS(w, origin, restricted)
	if h.Viewers != nil && resource == hls.PlaylistName {
		key := sess.ID
		if !ok {
			key = anonymousKey(r)
		}
		h.Viewers.Touch(arn, key, h.country(r))
	}
	variant.Packager.ServeMedia(w, r, resource)
}

// authorizeChild checks a child request: the restriction policy's
// countries and strict origin, and on an authorized channel the signed
// session (revocation, strict origin, maximum resolution). why is empty
// when the request may proceed; ok tells whether param was a valid
// session (public channels count sessionless viewers too).
func (h *Handler) authorizeChild(r *http.Request, arn string, rules *Rules, param, origin string, v *hls.Variant) (sess Session, ok bool, why string) {
	if !h.policyAllows(rules.Policy, r, origin, false) {
		return sess, false, "restriction policy"
	}
	if param != "" {
		sess, ok = h.sessions.Verify(arn, param, h.Now())
	}
	if !rules.Authorized {
		return sess, ok, ""
	}
	switch {
	case !ok:
		return sess, false, "no valid viewer session"
	case rules.revoked(sess.ViewerID, sess.ViewerSessionVersion):
		return sess, ok, "viewer session revoked"
	case sess.StrictOrigin && (origin == "" || hashOrigin(origin) != sess.OriginHash):
		return sess, ok, "origin differs from the session's"
	case sess.MaximumResolution != "" && !v.AudioOnly &&
		shortSide(*v, v.Packager.Info()) > resolutionClasses[sess.MaximumResolution]:
		return sess, ok, "rendition above the token's maximum resolution"
	}
	return sess, ok, ""
}

// verifyCache remembers verified tokens by digest so that the ES384
// verification (~0.6 ms) is paid once per token, not per request: many
// viewers of a paid event may share one token, and players reload.
type verifyCache struct {
	mu      sync.Mutex
	entries map[[32]byte]*Verified
}

// verifyCacheSize bounds the cache; when full it starts over.
const verifyCacheSize = 8192

// verify checks a token with the cache: a cached token is re-checked
// against the clock and against the current keys (a deleted key's tokens
// stop working).
func (h *Handler) verify(token string, keys []PublicKey, now time.Time) (*Verified, error) {
	if token == "" || len(token) > MaxTokenLen {
		return VerifyToken(token, keys, now) // the error, without hashing junk
	}
	c := &h.verified
	d := tokenDigest(token)
	c.mu.Lock()
	v := c.entries[d]
	c.mu.Unlock()
	if v != nil {
		if err := v.checkTimes(now); err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k.DER == v.Key {
				return v, nil
			}
		}
	}
	// Tokens carry no key id: try the key that verified the last new
	// token first, so an account with several keys (one signing, others
	// kept for rotation) pays one ES384 verification, not up to three.
	if last := h.lastKey.Load(); last != nil && len(keys) > 1 && keys[0].DER != *last {
		if i := slices.IndexFunc(keys, func(k PublicKey) bool { return k.DER == *last }); i > 0 {
			ordered := make([]PublicKey, 0, len(keys))
			ordered = append(append(append(ordered, keys[i]), keys[:i]...), keys[i+1:]...)
			keys = ordered
		}
	}
	v, err := VerifyToken(token, keys, now)
	if err != nil {
		return nil, err
	}
	h.lastKey.Store(&v.Key)
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= verifyCacheSize {
		c.entries = make(map[[32]byte]*Verified)
	}
	c.entries[d] = v
	c.mu.Unlock()
	return v, nil
}

// memorySingleUse remembers single-use tokens in this process only.
type memorySingleUse struct {
	mu     sync.Mutex
	used   map[string]time.Time // channel + uuid → exp
	pruned time.Time
}

func (m *memorySingleUse) Use(_ context.Context, channelARN, uuid string, exp time.Time) (bool, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.pruned) > time.Minute {
		for k, e := range m.used {
			if now.After(e) {
				delete(m.used, k)
			}
		}
		m.pruned = now
	}
	key := channelARN + "\x00" + uuid
	if _, ok := m.used[key]; ok {
		return false, nil
	}
	m.used[key] = exp
	return true, nil
}

// channelARN turns "<region>.<account>.channel.<id>" into the channel ARN.
func (h *Handler) channelARN(stream string) (string, bool) {
	parts := strings.Split(stream, ".")
	if len(parts) != 4 || parts[0] != h.Region || parts[2] != "channel" || parts[1] == "" || parts[3] == "" {
		return "", false
	}
	return "arn:aws:ivs:" + parts[0] + ":" + parts[1] + ":channel/" + parts[3], true
}

// accountOf returns the account of a channel ARN.
func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// renditionName names the passthrough rendition as IVS does ("720p30")
// from what its packager measured.
func renditionName(info hls.RenditionInfo) string {
	short := min(info.Width, info.Height)
	fps := int(info.FrameRate + 0.5)
	if fps == 0 {
		fps = 30
	}
	return hls.RenditionName(short, fps)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
