package messaging

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/testutil/natstest"
)

// natsTestPrefix is a subject prefix of this test alone: the NATS server
// may be shared with other tests and packages running at the same time.
func natsTestPrefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "openivstest." + hex.EncodeToString(b[:]) + ".chat"
}

// natsTestConn is a connection of the test's own, closed after it.
func natsTestConn(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("openivs chat test")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// dialTestBus is a bus that owns its connection, closed after the test.
func dialTestBus(t testing.TB, url, prefix string, logger *slog.Logger) *NATSBus {
	t.Helper()
	b, err := dialNATSBus(url, prefix, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// envSink collects what a subscriber gets; its fn never blocks.
type envSink struct {
	t  testing.TB
	ch chan Envelope
}

func newEnvSink(t testing.TB) *envSink { return &envSink{t: t, ch: make(chan Envelope, 1024)} }

func (s *envSink) fn(env Envelope) {
	select {
	case s.ch <- env:
	default:
		s.t.Errorf("envSink full, dropped %+v", env)
	}
}

func (s *envSink) next() Envelope {
	s.t.Helper()
	select {
	case env := <-s.ch:
		return env
	case <-time.After(5 * time.Second):
		s.t.Fatal("no envelope within 5 s")
	}
	return Envelope{}
}

func (s *envSink) empty() {
	s.t.Helper()
	select {
	case env := <-s.ch:
		s.t.Fatalf("unexpected envelope %+v", env)
	default:
	}
}

func subscribe(t testing.TB, b Bus, room string, s *envSink) func() {
	t.Helper()
	cancel, err := b.Subscribe(room, s.fn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return cancel
}

func publish(t testing.TB, b Bus, env Envelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
}

// sameEnvelope compares what was published with what was delivered,
// apart from Remote, which only delivery sets (TestNATSBusDelivers checks
// it).
func sameEnvelope(t testing.TB, got, want Envelope) {
	t.Helper()
	got.Remote = false
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got envelope %+v (frame %q), want %+v (frame %q)", got, got.Frame, want, want.Frame)
	}
}

func frame(s string) []byte { return []byte(`{"Type":"EVENT","EventName":"` + s + `"}`) }

// Every node hears a room's envelopes through its own subscription, the
// publisher's included, in the order each node published them, and
// nothing of other rooms.
func TestNATSBusDelivers(t *testing.T) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)
	a := dialTestBus(t, url, prefix, nil)
	ncB := natsTestConn(t, url)
	b := NewNATSBus(ncB, prefix, nil)
	t.Cleanup(b.Close)

	roomX := testRoom
	roomY := "arn:aws:ivschat:us-west-2:123456789012:room/other.room"
	onA, onB, onBY := newEnvSink(t), newEnvSink(t), newEnvSink(t)
	subscribe(t, a, roomX, onA)
	subscribe(t, b, roomX, onB)
	subscribe(t, b, roomY, onBY)

	// Remote: whether another node published it.
	remote := func(env Envelope, want bool) Envelope {
		t.Helper()
		if env.Remote != want {
			t.Fatalf("envelope %q: Remote %v, want %v", env.Frame, env.Remote, want)
		}
		return env
	}
	fromA := Envelope{Room: roomX, Frame: frame("from-a")}
	publish(t, a, fromA)
	sameEnvelope(t, remote(onA.next(), false), fromA)
	sameEnvelope(t, remote(onB.next(), true), fromA)
	fromB := Envelope{Room: roomX, Frame: frame("from-b")}
	publish(t, b, fromB)
	if n, err := ncB.Buffered(); err != nil || n != 0 {
		t.Fatalf("Publish returned with %d bytes not yet sent (%v)", n, err)
	}
	sameEnvelope(t, remote(onA.next(), true), fromB)
	sameEnvelope(t, remote(onB.next(), false), fromB)

	// One node's envelopes arrive everywhere in the order it sent them.
	const n = 200
	for i := range n {
		publish(t, a, Envelope{Room: roomX, Frame: frame(strings.Repeat("x", i+1))})
	}
	for _, s := range []*envSink{onA, onB} {
		for i := range n {
			if got := s.next(); !bytes.Equal(got.Frame, frame(strings.Repeat("x", i+1))) {
				t.Fatalf("envelope %d: got %q", i, got.Frame)
			}
		}
	}

	// Anything of room X leaking into Y would have arrived before the
	// markers, each published after its node's X envelopes.
	markA, markB := Envelope{Room: roomY, Frame: frame("mark-a")}, Envelope{Room: roomY, Frame: frame("mark-b")}
	publish(t, a, markA)
	publish(t, b, markB)
	got := map[string]bool{}
	for range 2 {
		got[string(onBY.next().Frame)] = true
	}
	if !got[string(markA.Frame)] || !got[string(markB.Frame)] {
		t.Fatalf("room Y got %v, want only its two markers", got)
	}
	onA.empty()
	onB.empty()
}

// DisconnectUser and RoomChanged, the headers, come through intact, even
// for user IDs that NATS headers cannot carry as they are.
func TestNATSBusHeadersRoundTrip(t *testing.T) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)
	a := dialTestBus(t, url, prefix, nil)
	b := dialTestBus(t, url, prefix, nil)
	odd := "arn:aws:ivschat:us-west-2:123456789012:room/with space%20and.dots"
	sinks := map[string]*envSink{testRoom: newEnvSink(t), odd: newEnvSink(t)}
	for room, s := range sinks {
		subscribe(t, b, room, s)
	}
	for _, env := range []Envelope{
		{Room: testRoom, Frame: frame("disconnect"), DisconnectUser: "alice"},
		{Room: testRoom, Frame: frame("disconnect"), DisconnectUser: " bob\r\nX-Evil: 1\r\n%41 ü:/ "},
		{Room: testRoom, RoomChanged: true},
		{Room: odd, Frame: frame("odd room"), DisconnectUser: "+plus+"},
		{Room: odd, RoomChanged: true},
	} {
		publish(t, a, env)
		sameEnvelope(t, sinks[env.Room].next(), env)
	}
}

// After cancel, fn is not called again; other subscriptions of the room,
// on the same connection, go on.
func TestNATSBusCancel(t *testing.T) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)
	nc := natsTestConn(t, url)
	a := NewNATSBus(nc, prefix, nil)
	b := dialTestBus(t, url, prefix, nil)
	first, second := newEnvSink(t), newEnvSink(t)
	cancelFirst := subscribe(t, a, testRoom, first)
	cancelSecond := subscribe(t, a, testRoom, second)
	if n := nc.NumSubscriptions(); n != 2 {
		t.Fatalf("%d NATS subscriptions, want 2", n)
	}

	e1 := Envelope{Room: testRoom, Frame: frame("1")}
	publish(t, b, e1)
	sameEnvelope(t, first.next(), e1)
	sameEnvelope(t, second.next(), e1)

	cancelFirst()
	cancelFirst() // harmless
	if n := nc.NumSubscriptions(); n != 1 {
		t.Fatalf("%d NATS subscriptions after cancel, want 1", n)
	}
	e2 := Envelope{Room: testRoom, Frame: frame("2")}
	publish(t, b, e2)
	sameEnvelope(t, second.next(), e2)
	// Cancel guarantees that fn runs no more once it returns, so
	// nothing can still be on its way to first.
	first.empty()

	cancelSecond()
	if n := nc.NumSubscriptions(); n != 0 {
		t.Fatalf("%d NATS subscriptions, want 0", n)
	}
}

// lockedBuffer is a log destination for goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Whatever else lands on a room's subject is logged and dropped: the
// subscriber goes on with the next good envelope.
func TestNATSBusDropsMalformed(t *testing.T) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := dialTestBus(t, url, prefix, logger)
	s := newEnvSink(t)
	subscribe(t, b, testRoom, s)

	raw := natsTestConn(t, url)
	subject := b.subject(testRoom)
	hdr := func(kv ...string) nats.Header {
		h := nats.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, m := range []*nats.Msg{
		{Data: frame("no headers")},
		{Header: hdr("Other", "x"), Data: frame("no room")},
		{Header: hdr(hdrRoom, "arn:aws:ivschat:us-west-2:123456789012:room/colliding"), Data: frame("another room")},
		{Header: hdr(hdrRoom, "%zz"), Data: frame("bad escape")},
		{Header: hdr(hdrRoom, testRoom, hdrDisconnectUser, "%"), Data: frame("bad user escape")},
		{Header: hdr(hdrRoom, testRoom, hdrRoomChanged, "yes"), Data: frame("bad flag")},
		{Header: hdr(hdrRoom, testRoom, hdrAction, "Shout"), Data: frame("unknown action")},
		{Header: hdr(hdrRoom, testRoom)}, // no frame
		{Header: hdr(hdrRoom, testRoom, hdrDisconnectUser, "bob")},
	} {
		m.Subject = subject
		if err := raw.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	good := Envelope{Room: testRoom, Frame: frame("good"), Action: MetricSendMessage}
	if err := raw.PublishMsg(encodeEnvelope(subject, good)); err != nil {
		t.Fatal(err)
	}
	// Published in order on one connection: had any bad one got through,
	// it would come first.
	sameEnvelope(t, s.next(), good)
	for _, want := range []string{"malformed", "another room", "no room header", "no frame", "room-changed header", "action header"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

// A subscriber that falls past the pending limits loses envelopes, and
// the logs say so (here fn blocks on purpose, which real ones must not).
func TestNATSBusSlowConsumerLogged(t *testing.T) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	b := dialTestBus(t, url, prefix, logger)
	release := make(chan struct{})
	got := make(chan Envelope, 100)
	cancel, err := b.Subscribe(testRoom, func(env Envelope) {
		if string(env.Frame) == string(frame("first")) {
			<-release
		}
		got <- env
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	var sub *nats.Subscription
	b.mu.Lock()
	for s := range b.subs { // the only one
		sub = s.sub
	}
	b.mu.Unlock()
	if err := sub.SetPendingLimits(2, 1<<20); err != nil { // test-sized
		t.Fatal(err)
	}

	publish(t, b, Envelope{Room: testRoom, Frame: frame("first")})
	for range 10 {
		publish(t, b, Envelope{Room: testRoom, Frame: frame("burst")})
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "slow consumer") {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("no slow consumer error logged:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	// Once the backlog is worked off, the next envelope is not dropped.
	for msgs, _, err := sub.Pending(); msgs != 0; msgs, _, err = sub.Pending() {
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("%d envelopes still pending (%v)", msgs, err)
		}
		time.Sleep(time.Millisecond)
	}
	publish(t, b, Envelope{Room: testRoom, Frame: frame("after")})
	n := 0
	for done := false; !done; {
		select {
		case env := <-got:
			if done = string(env.Frame) == string(frame("after")); !done {
				n++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the subscriber did not recover")
		}
	}
	if n >= 11 {
		t.Fatalf("all %d envelopes delivered, none dropped", n)
	}
	if !strings.Contains(logs.String(), "dropped room envelopes") {
		t.Fatalf("drops not logged:\n%s", logs.String())
	}
}

// tcpProxy stands between a NATS client and the server so that a test can
// cut the client off and let it back.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, u); u.Close(); c.Close() }()
		}
	}()
}

// stop refuses new connections and cuts the open ones.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restart listens again on the same address.
func (p *tcpProxy) restart() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

func waitStatus(t *testing.T, nc *nats.Conn, want nats.Status, is bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for (nc.Status() == want) != is {
		if time.Now().After(deadline) {
			t.Fatalf("NATS connection is %s", nc.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With NATS out of reach, Publish says so at once instead of waiting out
// ctx or buffering; a room subscribed meanwhile works once NATS is back.
func TestNATSBusUnavailable(t *testing.T) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "nats://" + ln.Addr().String()
	ln.Close()
	if _, err := DialNATSBus(nowhere+", "+nowhere, nil); err == nil {
		t.Fatal("DialNATSBus to nowhere succeeded")
	}

	proxy := startTCPProxy(t, strings.TrimPrefix(url, "nats://"))
	nc := natsTestConn(t, "nats://"+proxy.addr,
		// The default reconnect buffer, as an application's shared
		// connection would have: the bus must not wait on it.
		nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if len(nc.DiscoveredServers()) > 0 {
		t.Skip("the NATS server advertises cluster members: the client would reconnect around the proxy")
	}
	bus := NewNATSBus(nc, prefix, nil)
	t.Cleanup(bus.Close)
	other := dialTestBus(t, url, prefix, nil)
	before, during := newEnvSink(t), newEnvSink(t)
	subscribe(t, bus, testRoom, before)
	otherRoom := testRoom + "-2"

	proxy.stop()
	waitStatus(t, nc, nats.CONNECTED, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err = bus.Publish(ctx, Envelope{Room: testRoom, Frame: frame("lost")})
	if err == nil {
		t.Fatal("Publish while NATS is unreachable succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Publish took %v to fail", d)
	}
	t.Logf("Publish while disconnected: %v", err)
	start = time.Now()
	subscribe(t, bus, otherRoom, during)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Subscribe while disconnected took %v", d)
	}

	proxy.restart()
	waitStatus(t, nc, nats.CONNECTED, true)
	// The reconnect resends the subscriptions; a flush of nc after it
	// means the server has them.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for room, s := range map[string]*envSink{testRoom: before, otherRoom: during} {
		env := Envelope{Room: room, Frame: frame("back")}
		publish(t, other, env)
		sameEnvelope(t, s.next(), env)
	}

	// A closed connection, an ended ctx, a closed bus: errors, no panic.
	done, stop := context.WithCancel(context.Background())
	stop()
	if err := other.Publish(done, Envelope{Room: testRoom, Frame: frame("x")}); err == nil {
		t.Fatal("Publish with an ended ctx succeeded")
	}
	nc.Close()
	if err := bus.Publish(ctx, Envelope{Room: testRoom, Frame: frame("x")}); err == nil {
		t.Fatal("Publish on a closed connection succeeded")
	}
	if _, err := bus.Subscribe(testRoom, func(Envelope) {}); err == nil {
		t.Fatal("Subscribe on a closed connection succeeded")
	}
	other.Close()
	if err := other.Publish(ctx, Envelope{Room: testRoom, Frame: frame("x")}); err == nil {
		t.Fatal("Publish on a closed bus succeeded")
	}
	if _, err := other.Subscribe(testRoom, func(Envelope) {}); err == nil {
		t.Fatal("Subscribe on a closed bus succeeded")
	}
}

// deleteFakeRoom deletes a room of the fake control plane.
func deleteFakeRoom(f *fakeControl, arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rooms, arn)
}

// newNATSNode is a Server on its own NATS connection, sharing ctl (the
// control plane every node shares), behind its own httptest server.
// RoomTTL is long so that only RoomChanged can make it read a room again.
func newNATSNode(t *testing.T, ctl *fakeControl, natsURL, prefix string) *harness {
	t.Helper()
	bus := dialTestBus(t, natsURL, prefix, nil) // closed after the server
	return serveHarness(t, Config{Control: ctl, Bus: bus, PingInterval: -1, RoomTTL: time.Hour})
}

// newNATSPair is two nodes sharing a control plane and a NATS server.
func newNATSPair(t *testing.T) (ctl *fakeControl, node1, node2 *harness) {
	url, prefix := natstest.URL(t), natsTestPrefix(t)
	ctl = newFakeControl(time.Now)
	return ctl, newNATSNode(t, ctl, url, prefix), newNATSNode(t, ctl, url, prefix)
}

func TestNATSNodesShareRoom(t *testing.T) {
	_, node1, node2 := newNATSPair(t)
	alice := node1.connect("alice", chat.CapSendMessage)
	carol := node1.connect("carol")
	bob := node2.connect("bob", chat.CapSendMessage)
	node1.waitConns(testRoom, 2)
	node2.waitConns(testRoom, 1)

	alice.say("a1", "hello from node 1")
	var id string
	for _, c := range []*client{alice, carol, bob} {
		e := c.next()
		if e.Type != TypeMessage || e.Content != "hello from node 1" || e.RequestID != "a1" || e.Sender == nil || e.Sender.UserID != "alice" {
			t.Fatalf("got %+v", e)
		}
		if id == "" {
			id = e.ID
		} else if e.ID != id {
			t.Fatalf("ids differ: %q, %q", id, e.ID)
		}
	}
	bob.say("b1", "hello from node 2")
	for _, c := range []*client{alice, carol, bob} {
		if e := c.next(); e.Type != TypeMessage || e.Content != "hello from node 2" || e.Sender.UserID != "bob" {
			t.Fatalf("got %+v", e)
		}
	}
}

func TestNATSDeleteMessageAcrossNodes(t *testing.T) {
	_, node1, node2 := newNATSPair(t)
	viewer := node1.connect("viewer")
	mod := node2.connect("mod", chat.CapDeleteMessage)
	node1.waitConns(testRoom, 1)
	node2.waitConns(testRoom, 1)

	mod.sendJSON(map[string]any{"Action": ActionDeleteMessage, "RequestId": "del-1", "Id": "AbCdEfGh1234", "Reason": "spam"})
	for _, c := range []*client{viewer, mod} {
		if e := c.next(); e.Type != TypeEvent || e.EventName != EventDeleteMessage || e.RequestID != "del-1" ||
			e.Attributes["MessageID"] != "AbCdEfGh1234" || e.Attributes["Reason"] != "spam" {
			t.Fatalf("got %+v", e)
		}
	}
}

func TestNATSDisconnectUserAcrossNodes(t *testing.T) {
	_, node1, node2 := newNATSPair(t)
	alice := node1.connect("alice")
	carol := node1.connect("carol")
	bob := node2.connect("bob")
	node1.waitConns(testRoom, 2)
	node2.waitConns(testRoom, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node2.srv.DisconnectUser(ctx, testRoom, "alice", "bye"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, carol, bob} {
		if e := c.next(); e.Type != TypeEvent || e.EventName != EventDisconnectUser ||
			e.Attributes["UserId"] != "alice" || e.Attributes["Reason"] != "bye" {
			t.Fatalf("got %+v", e)
		}
	}
	alice.expectClosed(websocket.StatusNormalClosure)
	node1.waitConns(testRoom, 1)
	node2.waitConns(testRoom, 1)
}

func TestNATSRoomChangedAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("deleted", func(t *testing.T) {
		ctl, node1, node2 := newNATSPair(t)
		alice := node1.connect("alice")
		bob := node2.connect("bob")
		node1.waitConns(testRoom, 1)
		node2.waitConns(testRoom, 1)
		deleteFakeRoom(ctl, testRoom)
		if err := node2.srv.RoomChanged(ctx, testRoom); err != nil {
			t.Fatal(err)
		}
		alice.expectClosed(websocket.StatusNormalClosure)
		bob.expectClosed(websocket.StatusNormalClosure) // the publishing node hears itself
		node1.waitConns(testRoom, 0)
	})
	t.Run("settings", func(t *testing.T) {
		ctl, node1, node2 := newNATSPair(t)
		alice := node1.connect("alice", chat.CapSendMessage)
		node1.waitConns(testRoom, 1)
		alice.say("1", "123456")
		if e := alice.next(); e.Type != TypeMessage {
			t.Fatalf("got %+v", e)
		}
		ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 5, MaximumMessageRatePerSecond: 10})
		// node 1 still holds the old settings (RoomTTL is an hour)...
		alice.say("2", "123456")
		if e := alice.next(); e.Type != TypeMessage {
			t.Fatalf("got %+v, want the old limit still applied", e)
		}
		if err := node2.srv.RoomChanged(ctx, testRoom); err != nil {
			t.Fatal(err)
		}
		// ...until RoomChanged reaches it, which it has once an event
		// node 2 published after it has (NATS keeps one node's order).
		id, err := node2.srv.SendEvent(ctx, testRoom, "app:marker", nil)
		if err != nil {
			t.Fatal(err)
		}
		if e := alice.next(); e.ID != id {
			t.Fatalf("got %+v, want the marker event", e)
		}
		alice.say("3", "123456")
		alice.expectError("3", CodeBadRequest)
		alice.say("4", "12345")
		if e := alice.next(); e.Type != TypeMessage || e.RequestID != "4" {
			t.Fatalf("got %+v", e)
		}
	})
}

// RoomChanged on one node with the default LocalBus: the same effects,
// synchronously.
func TestRoomChangedLocalBus(t *testing.T) {
	ctx := context.Background()
	longTTL := func(c *Config) { c.RoomTTL = time.Hour }
	t.Run("deleted", func(t *testing.T) {
		h := newHarness(t, longTTL)
		alice := h.connect("alice")
		bob := h.connect("bob")
		h.waitConns(testRoom, 2)
		deleteFakeRoom(h.ctl, testRoom)
		if err := h.srv.RoomChanged(ctx, testRoom); err != nil {
			t.Fatal(err)
		}
		alice.expectClosed(websocket.StatusNormalClosure)
		bob.expectClosed(websocket.StatusNormalClosure)
		h.waitConns(testRoom, 0)
	})
	t.Run("settings", func(t *testing.T) {
		h := newHarness(t, longTTL)
		alice := h.connect("alice", chat.CapSendMessage)
		alice.say("1", "123456")
		if e := alice.next(); e.Type != TypeMessage {
			t.Fatalf("got %+v", e)
		}
		h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 5, MaximumMessageRatePerSecond: 10})
		alice.say("2", "123456")
		if e := alice.next(); e.Type != TypeMessage {
			t.Fatalf("got %+v, want the old limit still applied", e)
		}
		if err := h.srv.RoomChanged(ctx, testRoom); err != nil {
			t.Fatal(err)
		}
		alice.say("3", "123456")
		alice.expectError("3", CodeBadRequest)
	})
	if err := (&Server{}).RoomChanged(ctx, ""); err == nil {
		t.Fatal("RoomChanged without a room succeeded")
	}
}

// BenchmarkNATSBusRoundTrip: one envelope published on one node (flushed)
// until another node's subscriber has it. ns/op is the cross-node latency
// a chat message adds.
func BenchmarkNATSBusRoundTrip(b *testing.B) {
	url, prefix := natstest.URL(b), natsTestPrefix(b)
	a := dialTestBus(b, url, prefix, nil)
	other := dialTestBus(b, url, prefix, nil)
	got := make(chan struct{}, 1)
	cancel, err := other.Subscribe(testRoom, func(Envelope) { got <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	env := Envelope{Room: testRoom, Frame: mustJSON(newEvent("", "app:bench", map[string]string{"k": "v"}, time.Now()))}
	ctx := context.Background()
	for b.Loop() {
		if err := a.Publish(ctx, env); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}

// TestNATSRoomRateAcrossNodes: a room's maximumMessageRatePerSecond holds
// across the nodes: the messages another node admitted draw on this
// node's budget for the room as well.
func TestNATSRoomRateAcrossNodes(t *testing.T) {
	ctl, node1, node2 := newNATSPair(t)
	ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 2})
	alice := node1.connect("alice", chat.CapSendMessage)
	bob := node2.connect("bob", chat.CapSendMessage)
	heard := func(content string) {
		t.Helper()
		for _, c := range []*client{alice, bob} {
			if e := c.next(); e.Type != TypeMessage || e.Content != content {
				t.Fatalf("got %+v, want message %q", e, content)
			}
		}
	}
	bob.say("b0", "bob's first")     // node 2: 1 of 2 left
	heard("bob's first")             // (node 1 has no sender yet, so no budget)
	alice.say("a1", "alice's first") // node 1: 1 of 2 left; node 2: 0
	heard("alice's first")
	bob.say("b1", "one too many")
	bob.expectError("b1", CodeTooManyRequests)
}
