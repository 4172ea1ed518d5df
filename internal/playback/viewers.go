package playback

import (
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// ViewerWindow is how recently a viewer session must have fetched a
// playlist to count as watching. LL-HLS players reload every part (~0.25 s)
// and plain-HLS players every target duration (≤ 4 s here), so a session
// silent for 10 s has stopped.
const ViewerWindow = 10 * time.Second

// sessionParam is the query parameter with which a player reloading the
// multivariant playlist keeps its viewer session.
const sessionParam = "vs"

// Viewers keeps the live viewer sessions of every channel: a viewer is a
// client actively fetching playlists, keyed by the session id the
// multivariant playlist put in its child URLs (or anonymousKey). It
// is safe for concurrent use; a touch costs a map write under a
// per-channel lock.
type Viewers struct {
	now      func() time.Time
	channels sync.Map // channel ARN → *channelViewers
}

type channelViewers struct {
	mu       sync.Mutex
	sessions map[string]time.Time // session key → last fetch
	pruned   time.Time
	// delivered is viewer time earned since the last DrainDelivered, by
	// the viewers' country ("" unknown; delivered.go).
	delivered map[string]time.Duration
}

// NewViewers returns an empty tracker.
func NewViewers() *Viewers { return &Viewers{now: time.Now} }

// anonymousKey identifies a viewer that skipped the multivariant playlist
// (a public channel's rendition URL used directly) by its address and
// user agent.
func anonymousKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	sum := sha256.Sum256([]byte(host + "\x00" + r.UserAgent()))
	return "anon:" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Touch records that the session key fetched from channelARN now, from
// country (ISO 3166-1 alpha-2, or "" when unknown).
func (v *Viewers) Touch(channelARN, key, country string) {
	now := v.now()
	c, ok := v.channels.Load(channelARN)
	if !ok {
		c, _ = v.channels.LoadOrStore(channelARN, &channelViewers{sessions: map[string]time.Time{}})
	}
	cv := c.(*channelViewers)
	cv.mu.Lock()
	if last, ok := cv.sessions[key]; ok {
		if d := deliveredBetween(last, now); d > 0 {
			if cv.delivered == nil {
				cv.delivered = map[string]time.Duration{}
			}
			cv.delivered[country] += d
		}
	}
	cv.sessions[key] = now
	// Forget stale sessions now and then so a channel watched by many
	// short visits does not accumulate them between counts.
	if now.Sub(cv.pruned) > ViewerWindow {
		cv.pruneLocked(now)
	}
	cv.mu.Unlock()
}

// Count returns how many sessions of channelARN fetched within ViewerWindow.
func (v *Viewers) Count(channelARN string) int {
	c, ok := v.channels.Load(channelARN)
	if !ok {
		return 0
	}
	cv := c.(*channelViewers)
	cv.mu.Lock()
	defer cv.mu.Unlock()
	cv.pruneLocked(v.now())
	n := len(cv.sessions)
	if n == 0 && len(cv.delivered) == 0 {
		// Drop the empty entry (once its delivered time is drained); a later Touch recreates it. A racing Touch
		// that already holds cv is harmless: its viewer is counted again at
		// its next fetch, a fraction of a second later.
		v.channels.CompareAndDelete(channelARN, cv)
	}
	return n
}

// Total returns how many sessions of every channel fetched within
// ViewerWindow: the account's concurrent views (one account per node).
func (v *Viewers) Total() int {
	now := v.now()
	n := 0
	v.channels.Range(func(_, c any) bool {
		cv := c.(*channelViewers)
		cv.mu.Lock()
		if now.Sub(cv.pruned) > time.Second {
			cv.pruneLocked(now)
		}
		n += len(cv.sessions)
		cv.mu.Unlock()
		return true
	})
	return n
}

func (cv *channelViewers) pruneLocked(now time.Time) {
	for k, t := range cv.sessions {
		if now.Sub(t) > ViewerWindow {
			delete(cv.sessions, k)
		}
	}
	cv.pruned = now
}
