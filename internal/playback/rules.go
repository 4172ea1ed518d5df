package playback

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rules are a channel's playback rules as the control plane holds them.
// A Rules value is never modified once loaded; a change loads a new one.
type Rules struct {
	// Authorized channels play only with a playback token.
	Authorized bool
	// Keys are the account's imported playback public keys.
	Keys []PublicKey
	// Policy is the channel's playback restriction policy, or nil.
	Policy *Policy
	// Revoked maps a viewer id to the highest revoked
	// viewer-session-version (StartViewerSessionRevocation).
	Revoked map[string]int64
}

// Policy is a playback restriction policy as playback enforces it.
type Policy struct {
	// AllowedOrigins are origins with optional "*." host wildcards, or
	// "*"; empty allows every origin.
	AllowedOrigins []string
	// StrictOrigin requires a matching Origin on every request, not only
	// a browser's multivariant request.
	StrictOrigin bool
	// AllowedCountries are ISO 3166-1 alpha-2 codes; empty allows every
	// country.
	AllowedCountries []string
}

// revoked reports whether a session of viewerID at version is revoked.
func (r *Rules) revoked(viewerID string, version int64) bool {
	if viewerID == "" || len(r.Revoked) == 0 {
		return false
	}
	upTo, ok := r.Revoked[viewerID]
	return ok && version <= upTo
}

// allowsCountry reports whether viewers in country may play; an unknown
// country ("") is allowed, as IVS does.
func (p *Policy) allowsCountry(country string) bool {
	if p == nil || len(p.AllowedCountries) == 0 || country == "" {
		return true
	}
	for _, c := range p.AllowedCountries {
		if c == country {
			return true
		}
	}
	return false
}

// ErrNoChannel is what a RulesSource answers for a channel that does not
// exist.
var ErrNoChannel = errors.New("playback: no such channel")

// RulesSource loads a channel's playback rules (the control plane).
type RulesSource interface {
	PlaybackRules(ctx context.Context, channelARN string) (*Rules, error)
}

// RulesTTL is how long loaded rules are used before they are reloaded in
// the background. Changes made through this node's API apply at once
// (Invalidate); other nodes' changes, revocations included, within this.
const RulesTTL = 2 * time.Second

// rulesCache keeps every channel's rules in memory so that a request
// costs a map read: stale rules are served while one reload runs in the
// background, and a store outage keeps the last known rules (playback of
// private channels survives a control-plane outage, as IVS's FAQ hopes).
type rulesCache struct {
	source  RulesSource
	now     func() time.Time
	entries sync.Map // channel ARN → *rulesEntry
	// size counts entries, so that requests for made-up channel ids
	// cannot grow the cache without bound.
	size atomic.Int64
	// gen is bumped by invalidate(""); entries loaded before are stale.
	gen atomic.Int64
}

// maxRulesEntries bounds the cache; past it, it starts over.
const maxRulesEntries = 1 << 16

type rulesEntry struct {
	mu      sync.Mutex // held while loading the first value
	value   atomic.Pointer[rulesValue]
	loading atomic.Bool
}

type rulesValue struct {
	rules  *Rules
	err    error // ErrNoChannel, or nil
	loaded time.Time
	gen    int64
}

// get returns the channel's rules, loading them on first use.
func (c *rulesCache) get(ctx context.Context, arn string) (*Rules, error) {
	e, ok := c.entries.Load(arn)
	if !ok {
		if c.size.Load() >= maxRulesEntries {
			c.invalidate("")
		}
		var loaded bool
		if e, loaded = c.entries.LoadOrStore(arn, &rulesEntry{}); !loaded {
			c.size.Add(1)
		}
	}
	entry := e.(*rulesEntry)
	v := entry.value.Load()
	if v == nil {
		entry.mu.Lock()
		if v = entry.value.Load(); v == nil {
			var err error
			if v, err = c.load(ctx, arn); err != nil {
				entry.mu.Unlock()
				return nil, err
			}
			entry.value.Store(v)
		}
		entry.mu.Unlock()
	} else if c.now().Sub(v.loaded) > RulesTTL || v.gen != c.gen.Load() {
		if entry.loading.CompareAndSwap(false, true) {
			go func() {
				defer entry.loading.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if nv, err := c.load(ctx, arn); err == nil {
					entry.value.Store(nv)
				}
			}()
		}
	}
	return v.rules, v.err
}

// load asks the source; ErrNoChannel is kept like rules are (a player
// polling an unknown channel must not reach the store on every request).
func (c *rulesCache) load(ctx context.Context, arn string) (*rulesValue, error) {
	gen := c.gen.Load()
	r, err := c.source.PlaybackRules(ctx, arn)
	switch {
	case errors.Is(err, ErrNoChannel):
		return &rulesValue{err: ErrNoChannel, loaded: c.now(), gen: gen}, nil
	case err != nil:
		return nil, err
	}
	return &rulesValue{rules: r, loaded: c.now(), gen: gen}, nil
}

// invalidate makes the next request for arn load its rules afresh, so a
// change made on this node applies to the very next request.
func (c *rulesCache) invalidate(arn string) {
	if arn == "" {
		c.gen.Add(1)
		c.entries.Clear()
		c.size.Store(0)
		return
	}
	if _, ok := c.entries.LoadAndDelete(arn); ok {
		c.size.Add(-1)
	}
}

// originAllowed reports whether origin matches one of patterns: "*", an
// exact origin, or one whose host starts with "*." and matches any
// subdomain (not the apex). Scheme and host compare case-insensitively.
func originAllowed(patterns []string, origin string) bool {
	if origin == "" {
		return false
	}
	for _, p := range patterns {
		if p == "*" || strings.EqualFold(p, origin) {
			return true
		}
		scheme, host, ok := strings.Cut(p, "://*.")
		if !ok {
			continue
		}
		prefix := scheme + "://"
		if len(origin) <= len(prefix) || !strings.EqualFold(origin[:len(prefix)], prefix) {
			continue
		}
		rest := origin[len(prefix):]
		// rest must be "<label(s)>." + host, host compared with its port.
		if len(rest) > len(host)+1 && strings.EqualFold(rest[len(rest)-len(host):], host) &&
			rest[len(rest)-len(host)-1] == '.' && !strings.ContainsAny(rest[:len(rest)-len(host)-1], "/:@") {
			return true
		}
	}
	return false
}
