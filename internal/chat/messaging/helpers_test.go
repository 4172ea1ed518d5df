package messaging

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
)

const testRoom = "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234"

// fakeControl stands in for the control plane: it mints single-use tokens
// and serves room settings, as the contract asks of the real one.
type fakeControl struct {
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]fakeToken
	rooms  map[string]*chat.Room
	lookup int // Room calls
}

type fakeToken struct {
	grant   chat.Grant
	expires time.Time // the token's own expiry (not the session's)
}

func newFakeControl(now func() time.Time) *fakeControl {
	return &fakeControl{
		now:    now,
		tokens: make(map[string]fakeToken),
		rooms: map[string]*chat.Room{testRoom: {
			ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10,
		}},
	}
}

// tokenSpec is what a test (or the Node harness, as JSON) asks a token for.
type tokenSpec struct {
	Room         string            `json:"room"`
	UserID       string            `json:"userId"`
	Capabilities []string          `json:"capabilities"`
	Attributes   map[string]string `json:"attributes"`
	// SessionSeconds defaults to an hour.
	SessionSeconds float64 `json:"sessionSeconds"`
	// Expired mints a token that is already past its expiry.
	Expired bool `json:"expired"`
}

// issue mints a token, URL-safe base64 like every subprotocol must be.
func (f *fakeControl) issue(spec tokenSpec) (token string, tokenExpires, sessionExpires time.Time) {
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	now := f.now()
	if spec.Room == "" {
		spec.Room = testRoom
	}
	session := time.Hour
	if spec.SessionSeconds > 0 {
		session = time.Duration(spec.SessionSeconds * float64(time.Second))
	}
	tokenExpires = now.Add(5 * time.Minute)
	if spec.Expired {
		tokenExpires = now.Add(-time.Second)
	}
	sessionExpires = now.Add(session)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = fakeToken{
		grant: chat.Grant{
			RoomARN: spec.Room, UserID: spec.UserID, Attributes: spec.Attributes,
			Capabilities: spec.Capabilities, SessionExpires: sessionExpires,
		},
		expires: tokenExpires,
	}
	return token, tokenExpires, sessionExpires
}

func (f *fakeControl) RedeemToken(_ context.Context, token string) (*chat.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[token]
	if !ok {
		return nil, chat.ErrTokenInvalid
	}
	delete(f.tokens, token) // single use, valid or not
	if !f.now().Before(t.expires) {
		return nil, chat.ErrTokenInvalid
	}
	if _, ok := f.rooms[t.grant.RoomARN]; !ok {
		return nil, chat.ErrRoomNotFound
	}
	g := t.grant
	return &g, nil
}

func (f *fakeControl) Room(_ context.Context, arn string) (*chat.Room, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookup++
	r, ok := f.rooms[arn]
	if !ok {
		return nil, chat.ErrRoomNotFound
	}
	cp := *r
	return &cp, nil
}

func (f *fakeControl) setRoom(r chat.Room) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rooms[r.ARN] = &r
}

// fakeClock is a settable clock for the rate limits.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a Server behind an httptest server at /chat.
type harness struct {
	t   *testing.T
	ctl *fakeControl
	srv *Server
	hs  *httptest.Server
	mux *http.ServeMux // serves GET /chat; tests may add routes
	url string         // ws://host:port/chat
}

type harnessOption func(*Config)

func withClock(c *fakeClock) harnessOption { return func(cfg *Config) { cfg.Now = c.Now } }

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	cfg := Config{PingInterval: -1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Control = newFakeControl(cfg.Now)
	return serveHarness(t, cfg)
}

// serveHarness serves a messaging server built from cfg (whose Control is
// a *fakeControl) at GET /chat of a test HTTP server, shut down at cleanup.
func serveHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /chat", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	h := &harness{ctl: cfg.Control.(*fakeControl), srv: srv, hs: hs, mux: mux, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/chat"}
	if tt, ok := t.(*testing.T); ok {
		h.t = tt
	}
	return h
}

// dial opens a WebSocket with token as its subprotocol, as the SDK does.
func (h *harness) dial(ctx context.Context, token string) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, h.url, &websocket.DialOptions{Subprotocols: []string{token}})
}

// connect mints a token for user with caps and connects with it.
func (h *harness) connect(user string, caps ...string) *client {
	h.t.Helper()
	token, _, _ := h.ctl.issue(tokenSpec{UserID: user, Capabilities: caps, Attributes: map[string]string{"name": strings.ToUpper(user)}})
	return h.connectToken(token)
}

func (h *harness) connectToken(token string) *client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := h.dial(ctx, token)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	if ws.Subprotocol() != token {
		h.t.Fatalf("subprotocol %q, want the token echoed", ws.Subprotocol())
	}
	ws.SetReadLimit(1 << 20)
	h.t.Cleanup(func() { _ = ws.CloseNow() })
	return newClient(h.t, ws)
}

// conns counts the room's connections on the server.
func (h *harness) conns(arn string) int {
	h.srv.mu.Lock()
	r := h.srv.rooms[arn]
	h.srv.mu.Unlock()
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.conns)
}

// waitConns waits until the room has n connections on the server.
func (h *harness) waitConns(arn string, n int) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.conns(arn) != n {
		if time.Now().After(deadline) {
			h.t.Fatalf("room has %d connections, want %d", h.conns(arn), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client is a test WebSocket client; a goroutine reads everything into
// in, because a timed-out read would close a coder/websocket connection.
type client struct {
	t    *testing.T
	ws   *websocket.Conn
	in   chan entity
	done chan struct{}
	err  error // why reading ended; set before done is closed
}

func newClient(t *testing.T, ws *websocket.Conn) *client {
	c := &client{t: t, ws: ws, in: make(chan entity, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			typ, b, err := ws.Read(context.Background())
			if err != nil {
				c.err = err
				return
			}
			var e entity
			if typ != websocket.MessageText || json.Unmarshal(b, &e) != nil {
				c.err = errors.New("server sent a frame that is no JSON text: " + string(b))
				return
			}
			c.in <- e
		}
	}()
	return c
}

// entity is any server entity, decoded loosely.
type entity struct {
	Type         string
	ID           string `json:"Id"`
	RequestID    string `json:"RequestId"`
	Content      string
	Attributes   map[string]string
	SendTime     string
	Sender       *Sender
	EventName    string
	ErrorCode    int
	ErrorMessage string
}

func (c *client) sendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.MessageText, b)
}

func (c *client) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// say sends a SEND_MESSAGE request.
func (c *client) say(requestID, content string) {
	c.t.Helper()
	c.sendJSON(map[string]any{"Action": ActionSendMessage, "RequestId": requestID, "Content": content})
}

// next returns the next entity.
func (c *client) next() entity {
	c.t.Helper()
	select {
	case e := <-c.in:
		return e
	default:
	}
	select {
	case e := <-c.in:
		return e
	case <-c.done:
		select {
		case e := <-c.in:
			return e
		default:
		}
		c.t.Fatalf("connection ended: %v", c.err)
	case <-time.After(5 * time.Second):
		c.t.Fatal("no entity within 5 s")
	}
	return entity{}
}

// expectError reads the next entity and checks it is an ERROR with code
// for requestID.
func (c *client) expectError(requestID string, code int) entity {
	c.t.Helper()
	e := c.next()
	if e.Type != TypeError || e.ErrorCode != code || e.RequestID != requestID {
		c.t.Fatalf("got %+v, want ERROR %d for request %q", e, code, requestID)
	}
	if e.ID == "" || e.ErrorMessage == "" {
		c.t.Fatalf("ERROR without Id or ErrorMessage: %+v", e)
	}
	return e
}

// expectClosed skips what is left and checks the connection ends with
// close code.
func (c *client) expectClosed(code websocket.StatusCode) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("connection still open, want close code %d", code)
	}
	if got := websocket.CloseStatus(c.err); got != code {
		c.t.Fatalf("connection ended with %v (%v), want close code %d", got, c.err, code)
	}
}

// silent checks that nothing arrives within d.
func (c *client) silent(d time.Duration) {
	c.t.Helper()
	select {
	case e := <-c.in:
		c.t.Fatalf("unexpected entity %+v", e)
	case <-c.done:
		c.t.Fatalf("connection ended: %v", c.err)
	case <-time.After(d):
	}
}
