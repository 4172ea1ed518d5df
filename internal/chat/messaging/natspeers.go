package messaging

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The chat-concurrent-connections quota is the account's, across all its
// rooms, so nodes sharing rooms must count each other's connections: each
// one publishes its count on <prefix>.nodes.<cluster> every interval, and
// adds up what the others of its cluster (the nodes sharing its store)
// last said. A node not heard from for peerTTLIntervals intervals is gone;
// one that stops cleanly says 0 first. The total is at most one interval
// old, so a burst of connections spread over several nodes can pass the
// quota for that long.
const (
	DefaultPeerInterval = time.Second
	peerTTLIntervals    = 3
	hdrNode             = "Openivs-Node"
	// maxPeerCount bounds a count another node reports.
	maxPeerCount = 1 << 30
)

// PeerConnections shares this node's connection count with the other
// nodes on a NATSBus and sums theirs.
type PeerConnections struct {
	bus      *NATSBus
	subject  string
	id       string
	local    func() int
	interval time.Duration
	sub      *nats.Subscription

	mu    sync.Mutex
	peers map[string]peerCount

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

type peerCount struct {
	n    int
	seen time.Time
}

// ShareConnections starts publishing local() every interval (default
// DefaultPeerInterval) to the other nodes of cluster (letters, digits, '-'
// and '_': one NATS subject token) and listening to theirs. Stop ends it.
func (b *NATSBus) ShareConnections(cluster string, local func() int, interval time.Duration) (*PeerConnections, error) {
	if !validToken(cluster) {
		return nil, fmt.Errorf("chat bus: cluster %q is not one NATS subject token", cluster)
	}
	if interval <= 0 {
		interval = DefaultPeerInterval
	}
	if b.closed.Load() {
		return nil, errBusClosed
	}
	p := &PeerConnections{
		bus: b, subject: b.prefix + ".nodes." + cluster, id: rand.Text(), local: local, interval: interval,
		peers: make(map[string]peerCount), stop: make(chan struct{}), done: make(chan struct{}),
	}
	sub, err := b.nc.Subscribe(p.subject, p.handle)
	if err != nil {
		return nil, fmt.Errorf("chat bus: subscribe to node counts: %w", err)
	}
	p.sub = sub
	go p.run()
	return p, nil
}

func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Others is the sum of the other nodes' last counts.
func (p *PeerConnections) Others() int {
	cutoff := time.Now().Add(-peerTTLIntervals * p.interval)
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for id, c := range p.peers {
		if c.seen.Before(cutoff) {
			delete(p.peers, id)
			continue
		}
		total += c.n
	}
	return total
}

// Stop tells the other nodes this one has no connections left and stops
// sharing. Call it before the bus closes.
func (p *PeerConnections) Stop() {
	p.stopOnce.Do(func() {
		close(p.stop)
		<-p.done
		_ = p.sub.Unsubscribe()
		p.publish(0)
		_ = p.bus.nc.FlushTimeout(natsFlushTimeout)
	})
}

func (p *PeerConnections) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	p.publish(p.local())
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.publish(p.local())
		}
	}
}

func (p *PeerConnections) publish(n int) {
	if p.bus.closed.Load() || p.bus.nc.Status() != nats.CONNECTED {
		return // the others expire this node's count; it says it again once back
	}
	m := &nats.Msg{Subject: p.subject, Header: nats.Header{hdrNode: {p.id}}, Data: strconv.AppendInt(nil, int64(n), 10)}
	if err := p.bus.nc.PublishMsg(m); err != nil {
		p.bus.log.Debug("chat: publishing the node's connection count", "err", err)
	}
}

func (p *PeerConnections) handle(m *nats.Msg) {
	id, n, err := decodePeerCount(m)
	if err != nil {
		p.bus.log.Debug("chat: dropped a malformed node count", "err", err)
		return
	}
	if id == p.id {
		return
	}
	p.mu.Lock()
	if n == 0 {
		delete(p.peers, id)
	} else {
		p.peers[id] = peerCount{n: n, seen: time.Now()}
	}
	p.mu.Unlock()
}

// decodePeerCount reads another node's count message.
func decodePeerCount(m *nats.Msg) (id string, n int, err error) {
	id = m.Header.Get(hdrNode)
	if id == "" || len(id) > 64 {
		return "", 0, errors.New("no node id, or too long")
	}
	n, err = strconv.Atoi(string(m.Data))
	if err != nil || n < 0 || n > maxPeerCount {
		return "", 0, fmt.Errorf("count %.20q", m.Data)
	}
	return id, n, nil
}
