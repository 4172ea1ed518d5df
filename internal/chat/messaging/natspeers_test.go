package messaging

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/testutil/natstest"
)

// waitOthers waits until p counts want connections on the other nodes.
func waitOthers(t *testing.T, p *PeerConnections, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Others() != want {
		if time.Now().After(deadline) {
			t.Fatalf("other nodes hold %d connections, want %d", p.Others(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPeerConnections: nodes on one NATS learn each other's connection
// counts, not their own; a node that stops says 0 at once, and one that
// goes silent is forgotten after a few intervals; garbage on the subject
// is ignored.
func TestPeerConnections(t *testing.T) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)
	const every = 50 * time.Millisecond
	var n1, n2, n3 atomic.Int64
	n1.Store(3)
	n2.Store(5)
	n3.Store(7)
	share := func(n *atomic.Int64) *PeerConnections {
		p, err := dialTestBus(t, url, prefix, nil).ShareConnections("c1", func() int { return int(n.Load()) }, every)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return p
	}
	p1, p2 := share(&n1), share(&n2)
	waitOthers(t, p1, 5)
	waitOthers(t, p2, 3)

	n2.Store(9)
	waitOthers(t, p1, 9)

	// Another cluster on the same prefix, or the same cluster under
	// another prefix, is not counted.
	for _, other := range []struct{ prefix, cluster string }{{prefix, "c2"}, {natsTestPrefix(t), "c1"}} {
		p, err := dialTestBus(t, url, other.prefix, nil).ShareConnections(other.cluster, func() int { return 100 }, every)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
	}
	if _, err := dialTestBus(t, url, prefix, nil).ShareConnections("a.b", func() int { return 1 }, every); err == nil {
		t.Error("a cluster of two subject tokens was accepted")
	}

	// Garbage on the subject changes nothing.
	raw := natsTestConn(t, url)
	for _, m := range []*nats.Msg{
		{Data: []byte("12")}, // no node id
		{Header: nats.Header{hdrNode: {"x"}}, Data: []byte("-1")},
		{Header: nats.Header{hdrNode: {"x"}}, Data: []byte("1e9")},
		{Header: nats.Header{hdrNode: {"x"}}, Data: []byte("99999999999999")},
	} {
		m.Subject = prefix + ".nodes.c1"
		if err := raw.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	p3 := share(&n3)
	waitOthers(t, p1, 16)
	waitOthers(t, p3, 12)

	// A clean stop is heard at once (well inside the expiry).
	p2.Stop()
	waitOthers(t, p1, 7)

	// A node that goes silent (its bus closed without Stop) is dropped
	// after peerTTLIntervals.
	silent, err := dialNATSBus(url, prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := silent.ShareConnections("c1", func() int { return 4 }, every)
	if err != nil {
		t.Fatal(err)
	}
	waitOthers(t, p1, 11)
	silent.Close() // publishes no more; Stop after Close says nothing
	ps.Stop()
	waitOthers(t, p1, 7)
}

// TestQuotaCountsPeerConnections: the server refuses a connection when its
// own and the other nodes' connections reach MaxConnections.
func TestQuotaCountsPeerConnections(t *testing.T) {
	var others atomic.Int64
	h := newHarness(t, func(c *Config) {
		c.MaxConnections = 3
		c.PeerConnections = func() int { return int(others.Load()) }
	})
	others.Store(2)
	h.connect("alice")
	token, _, _ := h.ctl.issue(tokenSpec{UserID: "bob", Capabilities: []string{chat.CapSendMessage}})
	_, resp, err := h.dial(t.Context(), token)
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("a 4th connection in all (2 on other nodes) over a quota of 3: resp %v err %v", resp, err)
	}
	others.Store(1)
	h.connect("carol")
}
