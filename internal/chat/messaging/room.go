package messaging

import (
	"context"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/chat"
)

// room is one room's fan-out on this node: its local connections, fed by
// the Bus, plus the room-wide send rate limit and a short-lived copy of
// the room's settings.
type room struct {
	arn string
	obs Observer
	// subscribed is closed once the Bus subscription is made (by the
	// room's first joiner); unsubscribe is set before.
	subscribed  chan struct{}
	unsubscribe func()
	// changed runs (without blocking) when the room's settings change.
	changed func()

	mu    sync.RWMutex
	conns map[*conn]struct{}
	// deleted: the control plane said the room is gone; late joiners
	// are closed.
	deleted bool

	// settingsMu serializes Control.Room look-ups and guards the fields
	// below it.
	settingsMu sync.Mutex
	settings   *chat.Room
	fetched    time.Time

	// rateMu guards the room's maximumMessageRatePerSecond budget, which
	// the messages of every node draw on (apart from deliver's lock, so
	// that the Bus is never held up by a control-plane look-up).
	rateMu   sync.Mutex
	rate     bucket
	rateInit bool
	now      func() time.Time
}

func newRoom(arn string, obs Observer, now func() time.Time) *room {
	return &room{arn: arn, obs: obs, now: now, subscribed: make(chan struct{}), conns: make(map[*conn]struct{})}
}

// deliver hands env to every local connection without blocking: a
// connection whose queue is full is disconnected instead of slowing the
// room down.
func (r *room) deliver(env Envelope) {
	if env.RoomChanged {
		r.forgetSettings()
		if r.changed != nil {
			r.changed()
		}
		return
	}
	if env.Remote && env.Action == MetricSendMessage {
		r.spendRemoteMessage()
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for c := range r.conns {
		if env.DisconnectUser != "" && c.grant.UserID == env.DisconnectUser {
			c.sendThenClose(env.Frame, closeDisconnected, "disconnected by moderator")
			continue
		}
		c.send(env.Frame)
	}
	if n := len(r.conns); n > 0 && env.Action != "" {
		r.obs.Delivered(env.Action, n)
	}
}

// each calls fn for every local connection.
func (r *room) each(fn func(*conn)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for c := range r.conns {
		fn(c)
	}
}

// lookup returns the room's settings, asking the control plane at most once
// per ttl so that UpdateRoom takes effect within ttl.
func (r *room) lookup(ctx context.Context, ctl Control, ttl time.Duration, now time.Time) (*chat.Room, error) {
	r.settingsMu.Lock()
	defer r.settingsMu.Unlock()
	if r.settings != nil && now.Sub(r.fetched) < ttl {
		return r.settings, nil
	}
	settings, err := ctl.Room(ctx, r.arn)
	if err != nil {
		return nil, err
	}
	r.settings, r.fetched = settings, now
	return settings, nil
}

// forgetSettings makes the next lookup ask the control plane.
func (r *room) forgetSettings() {
	r.settingsMu.Lock()
	r.settings = nil
	r.settingsMu.Unlock()
}

// allowMessage takes one message from the room's
// maximumMessageRatePerSecond budget.
func (r *room) allowMessage(perSecond int, now time.Time) bool {
	if perSecond <= 0 {
		return true
	}
	r.rateMu.Lock()
	defer r.rateMu.Unlock()
	if !r.rateInit {
		r.rate, r.rateInit = newBucket(perSecond, perSecond, now), true
	}
	r.rate.setRate(perSecond)
	return r.rate.allow(now)
}

// spendRemoteMessage draws a message another node admitted to the room
// from this node's budget too, so that the room's rate holds across the
// nodes: every node with a sender in the room hears every message.
func (r *room) spendRemoteMessage() {
	r.rateMu.Lock()
	defer r.rateMu.Unlock()
	if r.rateInit { // no budget yet: no local sender so far
		r.rate.spend(r.now())
	}
}
