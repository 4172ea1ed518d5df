package messaging

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
)

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9]{12}$`)
	sendTimePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

func TestSendReceive(t *testing.T) {
	h := newHarness(t)
	alice := h.connect("alice", chat.CapSendMessage)
	bob := h.connect("bob")
	carol := h.connect("carol", chat.CapSendMessage)
	h.waitConns(testRoom, 3)

	alice.sendJSON(map[string]any{
		"Action": ActionSendMessage, "RequestId": "req-1", "Content": "hello, room",
		"Attributes": map[string]string{"color": "red"},
	})
	var id string
	for _, c := range []*client{alice, bob, carol} {
		e := c.next()
		if e.Type != TypeMessage || e.Content != "hello, room" || e.RequestID != "req-1" || e.Attributes["color"] != "red" {
			t.Fatalf("got %+v", e)
		}
		if e.Sender == nil || e.Sender.UserID != "alice" || e.Sender.Attributes["name"] != "ALICE" {
			t.Fatalf("sender %+v", e.Sender)
		}
		if !idPattern.MatchString(e.ID) || !sendTimePattern.MatchString(e.SendTime) {
			t.Fatalf("id %q / send time %q not IVS-like", e.ID, e.SendTime)
		}
		if id == "" {
			id = e.ID
		} else if e.ID != id {
			t.Fatalf("ids differ: %q, %q", id, e.ID)
		}
	}

	// Several senders, each client sees every message in order.
	carol.say("c1", "one")
	carol.say("c2", "two")
	for _, c := range []*client{alice, bob, carol} {
		if a, b := c.next(), c.next(); a.Content != "one" || b.Content != "two" || a.Sender.UserID != "carol" {
			t.Fatalf("got %+v then %+v", a, b)
		}
	}
}

// TestConnectedClientHearsTheNextMessage: once a client's connection is
// open it gets every message sent after that, however long the server
// took to set the connection up (here a slow ClientIP, as a lookup
// behind a proxy could be). The connection used to join its room only
// after the upgrade was answered, and missed what came in between.
func TestConnectedClientHearsTheNextMessage(t *testing.T) {
	var slow atomic.Bool
	h := newHarness(t, func(c *Config) {
		c.ClientIP = func(*http.Request) string {
			if slow.Load() {
				time.Sleep(200 * time.Millisecond)
			}
			return "192.0.2.1"
		}
	})
	alice := h.connect("alice", chat.CapSendMessage)
	h.waitConns(testRoom, 1)
	slow.Store(true)
	for i := range 3 {
		bob := h.connect(fmt.Sprint("bob", i))
		text := fmt.Sprint("hello bob", i)
		alice.say(fmt.Sprint("r", i), text)
		if e := alice.next(); e.Content != text {
			t.Fatalf("alice got %+v", e)
		}
		if e := bob.next(); e.Type != TypeMessage || e.Content != text {
			t.Fatalf("bob%d got %+v, want the message sent once he was connected", i, e)
		}
	}
}

func TestRoomsAreSeparate(t *testing.T) {
	h := newHarness(t)
	other := "arn:aws:ivschat:us-west-2:123456789012:room/other"
	h.ctl.setRoom(chat.Room{ARN: other, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10})
	alice := h.connect("alice", chat.CapSendMessage)
	token, _, _ := h.ctl.issue(tokenSpec{Room: other, UserID: "zed"})
	zed := h.connectToken(token)
	alice.say("r", "only here")
	alice.next()
	zed.silent(100 * time.Millisecond)
}

func TestDeleteMessage(t *testing.T) {
	h := newHarness(t)
	mod := h.connect("mod", chat.CapSendMessage, chat.CapDeleteMessage)
	viewer := h.connect("viewer")
	h.waitConns(testRoom, 2)

	mod.sendJSON(map[string]any{"Action": ActionDeleteMessage, "RequestId": "del-1", "Id": "AbCdEfGh1234", "Reason": "spam"})
	for _, c := range []*client{mod, viewer} {
		e := c.next()
		if e.Type != TypeEvent || e.EventName != EventDeleteMessage || e.RequestID != "del-1" ||
			e.Attributes["MessageID"] != "AbCdEfGh1234" || e.Attributes["Reason"] != "spam" || !idPattern.MatchString(e.ID) {
			t.Fatalf("got %+v", e)
		}
	}
	// Without a reason there is no Reason attribute.
	mod.sendJSON(map[string]any{"Action": ActionDeleteMessage, "RequestId": "del-2", "Id": "AbCdEfGh1234"})
	if e := viewer.next(); e.EventName != EventDeleteMessage {
		t.Fatalf("got %+v", e)
	} else if _, ok := e.Attributes["Reason"]; ok {
		t.Fatalf("empty reason sent: %+v", e.Attributes)
	}
}

func TestDisconnectUser(t *testing.T) {
	h := newHarness(t)
	mod := h.connect("mod", chat.CapDisconnectUser, chat.CapSendMessage)
	bob1 := h.connect("bob", chat.CapSendMessage)
	bob2 := h.connect("bob")
	alice := h.connect("alice")
	h.waitConns(testRoom, 4)

	mod.sendJSON(map[string]any{"Action": ActionDisconnectUser, "RequestId": "dis-1", "UserId": "bob", "Reason": "rude"})
	for _, c := range []*client{mod, bob1, bob2, alice} {
		e := c.next()
		if e.Type != TypeEvent || e.EventName != EventDisconnectUser || e.RequestID != "dis-1" ||
			e.Attributes["UserId"] != "bob" || e.Attributes["Reason"] != "rude" {
			t.Fatalf("got %+v", e)
		}
	}
	bob1.expectClosed(websocket.StatusNormalClosure)
	bob2.expectClosed(websocket.StatusNormalClosure)
	h.waitConns(testRoom, 2)

	mod.say("after", "still here")
	if e := alice.next(); e.Content != "still here" {
		t.Fatalf("got %+v", e)
	}
}

func TestMissingCapability(t *testing.T) {
	h := newHarness(t)
	viewer := h.connect("viewer")
	other := h.connect("other")
	h.waitConns(testRoom, 2)

	viewer.say("s", "hi")
	viewer.expectError("s", CodeForbidden)
	viewer.sendJSON(map[string]any{"Action": ActionDeleteMessage, "RequestId": "d", "Id": "AbCdEfGh1234"})
	viewer.expectError("d", CodeForbidden)
	viewer.sendJSON(map[string]any{"Action": ActionDisconnectUser, "RequestId": "u", "UserId": "other"})
	viewer.expectError("u", CodeForbidden)
	// Errors go to the requester alone, and nothing was done.
	other.silent(100 * time.Millisecond)
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ConnRequestsPerSecond = 100 })
	h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 5, MaximumMessageRatePerSecond: 10})
	c := h.connect("alice", chat.CapSendMessage, chat.CapDeleteMessage, chat.CapDisconnectUser)

	for _, tc := range []struct {
		name string
		req  map[string]any
		code int
	}{
		{"too long", map[string]any{"Action": ActionSendMessage, "Content": "123456"}, CodeBadRequest},
		{"no content", map[string]any{"Action": ActionSendMessage}, CodeBadRequest},
		{"empty content", map[string]any{"Action": ActionSendMessage, "Content": ""}, CodeBadRequest},
		{"content not a string", map[string]any{"Action": ActionSendMessage, "Content": 5}, CodeBadRequest},
		{"attribute not a string", map[string]any{"Action": ActionSendMessage, "Content": "x", "Attributes": map[string]any{"a": 1}}, CodeBadRequest},
		{"attributes too large", map[string]any{"Action": ActionSendMessage, "Content": "x", "Attributes": map[string]string{"a": strings.Repeat("x", 1024)}}, CodePayloadTooLarge},
		{"unknown action", map[string]any{"Action": "SHOUT"}, CodeBadRequest},
		{"no action", map[string]any{"Content": "x"}, CodeBadRequest},
		{"delete without id", map[string]any{"Action": ActionDeleteMessage}, CodeBadRequest},
		{"delete long reason", map[string]any{"Action": ActionDeleteMessage, "Id": "x", "Reason": strings.Repeat("r", 257)}, CodeBadRequest},
		{"disconnect without user", map[string]any{"Action": ActionDisconnectUser}, CodeBadRequest},
	} {
		tc.req["RequestId"] = tc.name
		c.sendJSON(tc.req)
		c.expectError(tc.name, tc.code)
	}

	// The limit is in characters, not bytes: five two-byte runes pass.
	c.say("runes", "ééééé")
	if e := c.next(); e.Type != TypeMessage || e.Content != "ééééé" {
		t.Fatalf("got %+v", e)
	}
}

func TestRoomSettingsFollowUpdates(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := newHarness(t, withClock(clock))
	c := h.connect("alice", chat.CapSendMessage)
	c.say("1", "123456")
	c.next()
	h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 5, MaximumMessageRatePerSecond: 10})
	clock.Advance(h.srv.cfg.RoomTTL)
	c.say("2", "123456")
	c.expectError("2", CodeBadRequest)
}

func TestRoomRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := newHarness(t, withClock(clock))
	h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 3})
	alice := h.connect("alice", chat.CapSendMessage)
	bob := h.connect("bob", chat.CapSendMessage)
	h.waitConns(testRoom, 2)

	// The budget is the room's, whoever spends it.
	alice.say("a1", "1")
	alice.say("a2", "2")
	bob.say("b1", "3")
	for range 3 {
		alice.next()
		bob.next()
	}
	bob.say("b2", "4")
	bob.expectError("b2", CodeTooManyRequests)
	alice.say("a3", "5")
	alice.expectError("a3", CodeTooManyRequests)

	clock.Advance(time.Second)
	bob.say("b3", "6")
	if e := alice.next(); e.Content != "6" {
		t.Fatalf("got %+v", e)
	}
}

func TestConnectionFlood(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := newHarness(t, withClock(clock))
	h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 1000})
	flooder := h.connect("flooder", chat.CapSendMessage)
	victim := h.connect("victim", chat.CapSendMessage)
	h.waitConns(testRoom, 2)

	// ConnRequestsPerSecond (10) pass, the next 20 are answered 429, the
	// one after that ends the connection; the clock stands still.
	for i := range 31 {
		flooder.say(fmt.Sprint(i), "spam")
	}
	for i := range 10 {
		if e := victim.next(); e.Type != TypeMessage || e.RequestID != fmt.Sprint(i) {
			t.Fatalf("victim got %+v", e)
		}
	}
	for range 10 {
		flooder.next()
	}
	for i := 10; i < 30; i++ {
		flooder.expectError(fmt.Sprint(i), CodeTooManyRequests)
	}
	flooder.expectClosed(websocket.StatusPolicyViolation)
	h.waitConns(testRoom, 1)

	victim.say("v", "still works")
	if e := victim.next(); e.Content != "still works" {
		t.Fatalf("got %+v", e)
	}
}

func TestConnectionRateRecovers(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	h := newHarness(t, withClock(clock))
	h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 1000})
	c := h.connect("alice", chat.CapSendMessage)
	for i := range 11 {
		c.say(fmt.Sprint(i), "x")
	}
	for range 10 {
		c.next()
	}
	c.expectError("10", CodeTooManyRequests)
	clock.Advance(time.Second)
	c.say("later", "x")
	if e := c.next(); e.RequestID != "later" || e.Type != TypeMessage {
		t.Fatalf("got %+v", e)
	}
}

func TestGarbageDisconnectsOnlySender(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   websocket.MessageType
		frame []byte
		code  websocket.StatusCode
	}{
		{"not json", websocket.MessageText, []byte("hello?"), websocket.StatusInvalidFramePayloadData},
		{"json array", websocket.MessageText, []byte(`["SEND_MESSAGE"]`), websocket.StatusInvalidFramePayloadData},
		{"truncated json", websocket.MessageText, []byte(`{"Action":"SEND_MESSAGE"`), websocket.StatusInvalidFramePayloadData},
		{"binary", websocket.MessageBinary, []byte(`{"Action":"SEND_MESSAGE","Content":"x"}`), websocket.StatusUnsupportedData},
		{"oversized", websocket.MessageText, []byte(`{"Content":"` + strings.Repeat("x", 64<<10) + `"}`), websocket.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			bad := h.connect("bad", chat.CapSendMessage)
			good := h.connect("good", chat.CapSendMessage)
			h.waitConns(testRoom, 2)
			if tc.code == websocket.StatusMessageTooBig {
				// The server stops reading mid-frame and closes: the
				// write may fail and the 1009 be lost in a reset.
				_ = bad.ws.Write(context.Background(), tc.typ, tc.frame)
				<-bad.done
				if got := websocket.CloseStatus(bad.err); got != tc.code && got != -1 {
					t.Fatalf("ended with %v, want %d or no close frame", bad.err, tc.code)
				}
			} else {
				bad.sendRaw(tc.typ, tc.frame)
				bad.expectClosed(tc.code)
			}
			h.waitConns(testRoom, 1)
			good.say("g", "fine")
			if e := good.next(); e.Content != "fine" {
				t.Fatalf("got %+v", e)
			}
		})
	}
}

func TestSlowClientDisconnectedAlone(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SendQueue = 4 })
	fast := h.connect("fast")
	// slow completes the handshake and then never reads.
	token, _, _ := h.ctl.issue(tokenSpec{UserID: "slow"})
	slow := rawDial(t, h, token)
	defer slow.Close()
	h.waitConns(testRoom, 2)

	big := map[string]string{"pad": strings.Repeat("x", 32<<10)}
	ctx := context.Background()
	for i := 0; h.conns(testRoom) == 2; i++ {
		if i == 5000 {
			t.Fatal("slow client still connected after 5000 events (160 MB)")
		}
		id, err := h.srv.SendEvent(ctx, testRoom, "app:big", big)
		if err != nil {
			t.Fatal(err)
		}
		// fast keeps up: it has each event before the next is sent.
		if e := fast.next(); e.ID != id {
			t.Fatalf("fast got %+v, want event %s", e, id)
		}
	}
	id, _ := h.srv.SendEvent(ctx, testRoom, "app:small", nil)
	if e := fast.next(); e.ID != id {
		t.Fatalf("fast got %+v", e)
	}
}

func TestTokens(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	status := func(token string) int {
		t.Helper()
		ws, resp, err := h.dial(ctx, token)
		if err == nil {
			_ = ws.CloseNow()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode
	}

	token, _, _ := h.ctl.issue(tokenSpec{UserID: "alice"})
	if got := status(token); got != http.StatusSwitchingProtocols {
		t.Fatalf("fresh token: %d", got)
	}
	if got := status(token); got != http.StatusUnauthorized {
		t.Fatalf("used token: %d, want 401", got)
	}
	expired, _, _ := h.ctl.issue(tokenSpec{UserID: "alice", Expired: true})
	if got := status(expired); got != http.StatusUnauthorized {
		t.Fatalf("expired token: %d, want 401", got)
	}
	if got := status("nonsense"); got != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d, want 401", got)
	}
	gone, _, _ := h.ctl.issue(tokenSpec{UserID: "alice", Room: testRoom + "-deleted"})
	if got := status(gone); got != http.StatusNotFound {
		t.Fatalf("token of a deleted room: %d, want 404", got)
	}

	// No subprotocol at all.
	if _, resp, err := websocket.Dial(ctx, h.url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %v %v", resp, err)
	}
	// A plain GET does not spend the token.
	plain, _, _ := h.ctl.issue(tokenSpec{UserID: "alice"})
	req, _ := http.NewRequest(http.MethodGet, h.hs.URL+"/chat", nil)
	req.Header.Set("Sec-WebSocket-Protocol", plain)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d, want 426", resp.StatusCode)
	}
	if got := status(plain); got != http.StatusSwitchingProtocols {
		t.Fatalf("token after a plain GET: %d", got)
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t)
	token, _, _ := h.ctl.issue(tokenSpec{UserID: "alice", SessionSeconds: 0.3})
	c := h.connectToken(token)
	start := time.Now()
	e := c.next()
	if e.Type != TypeError || e.ErrorCode != CodeUnauthorized || e.RequestID != "" {
		t.Fatalf("got %+v, want the 401 ERROR the SDK reconnects on", e)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("expired after %v", d)
	}
	c.expectClosed(websocket.StatusNormalClosure)
}

func TestBroadcaster(t *testing.T) {
	h := newHarness(t)
	alice := h.connect("alice")
	bob := h.connect("bob")
	h.waitConns(testRoom, 2)
	ctx := context.Background()

	id, err := h.srv.SendEvent(ctx, testRoom, "app:poll", map[string]string{"question": "?"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if e := c.next(); e.Type != TypeEvent || e.ID != id || e.EventName != "app:poll" || e.Attributes["question"] != "?" || e.RequestID != "" {
			t.Fatalf("got %+v", e)
		}
	}
	id, err = h.srv.DeleteMessage(ctx, testRoom, "AbCdEfGh1234", "")
	if err != nil {
		t.Fatal(err)
	}
	if e := bob.next(); e.ID != id || e.EventName != EventDeleteMessage || e.Attributes["MessageID"] != "AbCdEfGh1234" {
		t.Fatalf("got %+v", e)
	}
	alice.next()
	if err := h.srv.DisconnectUser(ctx, testRoom, "bob", "bye"); err != nil {
		t.Fatal(err)
	}
	if e := bob.next(); e.EventName != EventDisconnectUser || e.Attributes["UserId"] != "bob" || e.Attributes["Reason"] != "bye" {
		t.Fatalf("got %+v", e)
	}
	bob.expectClosed(websocket.StatusNormalClosure)
	if e := alice.next(); e.EventName != EventDisconnectUser {
		t.Fatalf("got %+v", e)
	}
	// A room without listeners is no error.
	if _, err := h.srv.SendEvent(ctx, "arn:aws:ivschat:us-west-2:123456789012:room/empty", "x", nil); err != nil {
		t.Fatal(err)
	}
}

func TestReview(t *testing.T) {
	handler := func(fallback string) chat.Room {
		return chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10,
			ReviewHandler: &chat.ReviewHandler{URI: "arn:aws:lambda:us-west-2:123456789012:function:review", FallbackResult: fallback}}
	}
	t.Run("no reviewer, fallback decides", func(t *testing.T) {
		h := newHarness(t)
		h.ctl.setRoom(handler("DENY"))
		c := h.connect("alice", chat.CapSendMessage)
		c.say("1", "hi")
		c.expectError("1", CodeNotAcceptable)

		h2 := newHarness(t)
		h2.ctl.setRoom(handler("ALLOW"))
		c2 := h2.connect("alice", chat.CapSendMessage)
		c2.say("1", "hi")
		if e := c2.next(); e.Type != TypeMessage {
			t.Fatalf("got %+v", e)
		}
	})
	t.Run("reviewer", func(t *testing.T) {
		h := newHarness(t, func(cfg *Config) {
			cfg.Review = func(_ context.Context, room *chat.Room, msg *Message, ip string) (ReviewResult, error) {
				switch msg.Content {
				case "bad":
					return ReviewResult{Allow: false}, nil
				case "broken":
					return ReviewResult{}, errors.New("lambda failed")
				}
				return ReviewResult{Allow: true, Content: strings.ToUpper(msg.Content), Attributes: map[string]string{"reviewed": room.ReviewHandler.URI, "ip": ip}}, nil
			}
		})
		h.ctl.setRoom(handler("DENY"))
		c := h.connect("alice", chat.CapSendMessage)
		c.say("1", "bad")
		c.expectError("1", CodeNotAcceptable)
		c.say("2", "broken") // fallback DENY
		c.expectError("2", CodeNotAcceptable)
		c.say("3", "good")
		if e := c.next(); e.Content != "GOOD" || e.Attributes["reviewed"] == "" || e.Attributes["ip"] != "127.0.0.1" {
			t.Fatalf("got %+v", e)
		}
	})
}

func TestShutdown(t *testing.T) {
	h := newHarness(t)
	c := h.connect("alice")
	h.waitConns(testRoom, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expectClosed(websocket.StatusGoingAway)
	token, _, _ := h.ctl.issue(tokenSpec{UserID: "alice"})
	if _, resp, err := h.dial(ctx, token); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v %v", resp, err)
	}
}

// rawDial performs the WebSocket handshake on a bare TCP connection and
// returns it unread: a client that never reads, and one whose memory is
// next to nothing (for measuring the server's share).
func rawDial(t testing.TB, h *harness, token string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", h.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(nc, "GET /chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
		h.hs.Listener.Addr(), token)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return nc
}

func TestNewNeedsControl(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without Control succeeded")
	}
}

// gatedBus is a LocalBus whose Subscribe to one room waits for release,
// as a NATS subscription waits for a slow server.
type gatedBus struct {
	*LocalBus
	room    string
	release chan struct{}
	waiting chan struct{} // closed when Subscribe starts waiting
}

func (b *gatedBus) Subscribe(room string, fn func(Envelope)) (func(), error) {
	if room == b.room {
		close(b.waiting)
		<-b.release
	}
	return b.LocalBus.Subscribe(room, fn)
}

// TestSlowSubscribeHoldsUpOnlyItsRoom: while the bus is slow to subscribe
// this node to a room, clients of other rooms connect as usual; the
// room's own clients connect once it is subscribed, and hear each other.
func TestSlowSubscribeHoldsUpOnlyItsRoom(t *testing.T) {
	bus := &gatedBus{LocalBus: NewLocalBus(), room: testRoom, release: make(chan struct{}), waiting: make(chan struct{})}
	h := newHarness(t, func(c *Config) { c.Bus = bus })
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(bus.release) }) }
	t.Cleanup(release) // before the harness's Shutdown, should the test fail early
	other := "arn:aws:ivschat:us-west-2:123456789012:room/other"
	h.ctl.setRoom(chat.Room{ARN: other, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10})

	joined := make(chan *client, 2)
	for _, user := range []string{"alice", "carol"} {
		token, _, _ := h.ctl.issue(tokenSpec{UserID: user, Capabilities: []string{chat.CapSendMessage}})
		go func() {
			ws, _, err := h.dial(context.Background(), token)
			if err != nil {
				t.Errorf("%s: %v", user, err)
				joined <- nil
				return
			}
			t.Cleanup(func() { _ = ws.CloseNow() })
			joined <- newClient(t, ws)
		}()
	}
	<-bus.waiting

	// Another room's client is not held up behind the slow subscribe.
	token, _, _ := h.ctl.issue(tokenSpec{Room: other, UserID: "zed", Capabilities: []string{chat.CapSendMessage}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ws, _, err := h.dial(ctx, token)
	if err != nil {
		t.Fatalf("a client of another room, while this node subscribes to the first: %v", err)
	}
	zed := newClient(t, ws)
	t.Cleanup(func() { _ = ws.CloseNow() })
	zed.say("z", "not waiting")
	if e := zed.next(); e.Content != "not waiting" {
		t.Fatalf("zed got %+v", e)
	}
	select {
	case <-joined:
		t.Fatal("a client of the room connected before the room was subscribed")
	default:
	}

	release()
	alice, carol := <-joined, <-joined
	if alice == nil || carol == nil {
		t.FailNow()
	}
	alice.say("a", "both joined")
	for _, c := range []*client{alice, carol} {
		if e := c.next(); e.Content != "both joined" {
			t.Fatalf("got %+v", e)
		}
	}
}
