package messaging

import (
	"context"
	"sync"
)

// Envelope is what travels between the nodes' fan-outs: one entity for
// every connection to a room, already encoded as the frame clients get, so
// that it is encoded once however many clients receive it.
type Envelope struct {
	Room  string // room ARN
	Frame []byte // a MESSAGE or EVENT entity, JSON
	// DisconnectUser, when set, closes every connection of that user in
	// Room right after Frame is delivered to it (aws:DISCONNECT_USER).
	DisconnectUser string
	// Action is the messaging operation the frame carries out (Metric*
	// constants), for the Deliveries metric; empty: not counted.
	Action string `json:",omitempty"`
	// Remote is set by the Bus on delivery: another node published the
	// envelope (its messages then draw on this node's room rate too).
	Remote bool `json:"-"`
	// RoomChanged, with no Frame, says the room's settings changed or
	// the room was deleted: every node reads them again at once, and
	// closes the room's connections if it is gone.
	RoomChanged bool `json:",omitempty"`
}

// Bus fans envelopes out to every node serving a room. Publish returns once
// the envelope is handed to every subscriber (the contract's "handed to
// every node's fan-out"); a subscriber's fn must not block.
//
// LocalBus is the single-node implementation; a NATS one (a subject per
// room) is what lets several nodes share rooms.
type Bus interface {
	Publish(ctx context.Context, env Envelope) error
	// Subscribe calls fn for every envelope published to room until the
	// returned cancel is called.
	Subscribe(room string, fn func(Envelope)) (cancel func(), err error)
}

// LocalBus is an in-process Bus: Publish calls the room's subscribers
// synchronously.
type LocalBus struct {
	mu   sync.RWMutex
	subs map[string]map[*localSub]struct{}
}

type localSub struct{ fn func(Envelope) }

// NewLocalBus returns an empty in-process bus.
func NewLocalBus() *LocalBus {
	return &LocalBus{subs: make(map[string]map[*localSub]struct{})}
}

// Publish implements Bus.
func (b *LocalBus) Publish(_ context.Context, env Envelope) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[env.Room] {
		s.fn(env)
	}
	return nil
}

// Subscribe implements Bus.
func (b *LocalBus) Subscribe(room string, fn func(Envelope)) (func(), error) {
	s := &localSub{fn: fn}
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.subs[room]
	if set == nil {
		set = make(map[*localSub]struct{})
		b.subs[room] = set
	}
	set[s] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			delete(b.subs[room], s)
			if len(b.subs[room]) == 0 {
				delete(b.subs, room)
			}
		})
	}, nil
}
