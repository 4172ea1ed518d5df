package messaging

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
)

func released(c *Config) { c.ReleaseHandler = true }

// TestReleasedHandler: with ReleaseHandler, ServeHTTP returns once the
// socket is open and the connection behaves as before.
func TestReleasedHandler(t *testing.T) {
	t.Run("handler returns, connection works", func(t *testing.T) {
		h := newHarness(t, released)
		var inHandler atomic.Int64
		h.mux.HandleFunc("GET /chat-counted", func(w http.ResponseWriter, r *http.Request) {
			inHandler.Add(1)
			defer inHandler.Add(-1)
			h.srv.ServeHTTP(w, r)
		})
		h.url += "-counted"
		alice := h.connect("alice", chat.CapSendMessage)
		bob := h.connect("bob")
		h.waitConns(testRoom, 2)
		// The handlers return just after the upgrade (the connections
		// joined their room before it).
		waitFor(t, func() bool { return inHandler.Load() == 0 })
		if n := h.srv.Connections(); n != 2 {
			t.Fatalf("Connections() = %d, want 2", n)
		}
		alice.say("1", "hello")
		for _, c := range []*client{alice, bob} {
			if e := c.next(); e.Type != TypeMessage || e.Content != "hello" {
				t.Fatalf("got %+v", e)
			}
		}
		bob.ws.Close(websocket.StatusNormalClosure, "")
		h.waitConns(testRoom, 1)
		waitFor(t, func() bool { return h.srv.Connections() == 1 })
	})
	t.Run("disconnect user", func(t *testing.T) {
		h := newHarness(t, released)
		mod := h.connect("mod", chat.CapDisconnectUser)
		bob := h.connect("bob")
		h.waitConns(testRoom, 2)
		mod.sendJSON(map[string]any{"Action": ActionDisconnectUser, "RequestId": "d", "UserId": "bob"})
		if e := bob.next(); e.EventName != EventDisconnectUser {
			t.Fatalf("got %+v", e)
		}
		bob.expectClosed(websocket.StatusNormalClosure)
		h.waitConns(testRoom, 1)
	})
	t.Run("garbage", func(t *testing.T) {
		h := newHarness(t, released)
		bad := h.connect("bad")
		bad.sendRaw(websocket.MessageText, []byte("hello?"))
		bad.expectClosed(websocket.StatusInvalidFramePayloadData)
	})
	t.Run("slow client", func(t *testing.T) {
		h := newHarness(t, released, func(c *Config) { c.SendQueue = 4 })
		fast := h.connect("fast")
		token, _, _ := h.ctl.issue(tokenSpec{UserID: "slow"})
		slow := rawDial(t, h, token)
		defer slow.Close()
		h.waitConns(testRoom, 2)
		big := map[string]string{"pad": strings.Repeat("x", 32<<10)}
		for i := 0; h.conns(testRoom) == 2; i++ {
			if i == 5000 {
				t.Fatal("slow client still connected after 5000 events")
			}
			id, err := h.srv.SendEvent(context.Background(), testRoom, "app:big", big)
			if err != nil {
				t.Fatal(err)
			}
			if e := fast.next(); e.ID != id {
				t.Fatalf("fast got %+v", e)
			}
		}
	})
	t.Run("session expiry", func(t *testing.T) {
		h := newHarness(t, released)
		token, _, _ := h.ctl.issue(tokenSpec{UserID: "alice", SessionSeconds: 0.2})
		c := h.connectToken(token)
		if e := c.next(); e.Type != TypeError || e.ErrorCode != CodeUnauthorized {
			t.Fatalf("got %+v", e)
		}
		c.expectClosed(websocket.StatusNormalClosure)
	})
	t.Run("shutdown", func(t *testing.T) {
		h := newHarness(t, released)
		c := h.connect("alice")
		h.waitConns(testRoom, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		c.expectClosed(websocket.StatusGoingAway)
		if n := h.srv.Connections(); n != 0 {
			t.Fatalf("Connections() = %d after Shutdown", n)
		}
	})
}

// TestMaxConnections: past the limit the upgrade is refused with 429
// and the token is not spent.
func TestMaxConnections(t *testing.T) {
	for _, release := range []bool{false, true} {
		t.Run(fmt.Sprint("release=", release), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.MaxConnections = 2; c.ReleaseHandler = release })
			h.connect("a")
			b := h.connect("b")
			h.waitConns(testRoom, 2)
			token, _, _ := h.ctl.issue(tokenSpec{UserID: "c"})
			_, resp, err := h.dial(context.Background(), token)
			if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("third connection: %v %v", resp, err)
			}
			b.ws.Close(websocket.StatusNormalClosure, "")
			waitFor(t, func() bool { return h.srv.Connections() == 1 })
			h.connectToken(token) // not spent by the refusal
		})
	}
}

// TestPing: clients that read answer the server's pings and stay; a
// client that never answers is cut off within PingInterval × 1.5 +
// WriteTimeout and a sweep.
func TestPing(t *testing.T) {
	for _, release := range []bool{false, true} {
		t.Run(fmt.Sprint("release=", release), func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.PingInterval = 50 * time.Millisecond
				c.WriteTimeout = 300 * time.Millisecond
				c.ReleaseHandler = release
			})
			alive := h.connect("alive", chat.CapSendMessage)
			token, _, _ := h.ctl.issue(tokenSpec{UserID: "dead"})
			dead := rawDial(t, h, token)
			defer dead.Close()
			h.waitConns(testRoom, 2)
			start := time.Now()
			h.waitConns(testRoom, 1)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("unanswered pings cut the client after %v", d)
			}
			// Several intervals later the reading client is still there.
			time.Sleep(300 * time.Millisecond)
			alive.say("1", "still here")
			if e := alive.next(); e.Content != "still here" {
				t.Fatalf("got %+v", e)
			}
		})
	}
}

// TestRequestInHandshakePacket: a request the client sends right behind
// its handshake, before the 101 arrives, is served, with the released
// connection's small buffers too.
func TestRequestInHandshakePacket(t *testing.T) {
	for _, release := range []bool{false, true} {
		t.Run(fmt.Sprint("release=", release), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.ReleaseHandler = release })
			token, _, _ := h.ctl.issue(tokenSpec{UserID: "eager", Capabilities: []string{chat.CapSendMessage}})
			nc, err := net.Dial("tcp", h.hs.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			req := fmt.Sprintf("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n", token)
			packet := append([]byte(req), maskedText([]byte(`{"Action":"SEND_MESSAGE","RequestId":"early","Content":"first"}`))...)
			if _, err := nc.Write(packet); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %v %v", resp, err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var e entity
			if err := json.Unmarshal(readServerFrame(t, br), &e); err != nil || e.RequestID != "early" || e.Content != "first" {
				t.Fatalf("got %+v (%v)", e, err)
			}
		})
	}
}

// maskedText is a client's text frame.
func maskedText(payload []byte) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// readServerFrame reads one unfragmented, unmasked frame's payload.
func readServerFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFailedUpgradeLeavesNoTrace: a connection joins its room before the
// upgrade is answered; when the upgrade then fails (here an unsupported
// WebSocket version), it leaves the room and the connection count again,
// and the room works for the next client.
func TestFailedUpgradeLeavesNoTrace(t *testing.T) {
	h := newHarness(t, released)
	token, _, _ := h.ctl.issue(tokenSpec{UserID: "old-client"})
	nc, err := net.Dial("tcp", h.hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Protocol: %s\r\n\r\n", token)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("upgraded a WebSocket version 8 handshake")
	}
	waitFor(t, func() bool { return h.srv.Connections() == 0 && h.conns(testRoom) == 0 })

	alice := h.connect("alice", chat.CapSendMessage)
	alice.say("1", "still works")
	if e := alice.next(); e.Content != "still works" {
		t.Fatalf("got %+v", e)
	}
	waitFor(t, func() bool { return h.srv.Connections() == 1 && h.conns(testRoom) == 1 })
}
