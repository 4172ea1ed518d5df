// Package messaging serves the IVS Chat Messaging API: the WebSocket that
// the official amazon-ivs-chat-messaging SDK connects to with a chat token,
// publishes SEND_MESSAGE / DELETE_MESSAGE / DISCONNECT_USER requests on and
// receives MESSAGE / EVENT / ERROR entities from.
//
// The SDK dials exactly the URL an application passes as regionOrUrl when
// it starts with ws:// or wss:// (no path is appended), and passes the chat
// token as the only WebSocket subprotocol, which the server must echo.
// There is no greeting frame: the socket opening is the connection.
package messaging

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
)

// Control is what messaging needs of the chat control plane.
type Control interface {
	// RedeemToken spends a chat token (tokens are single use) and returns
	// what it grants; chat.ErrTokenInvalid for an unknown, used or
	// expired token, chat.ErrRoomNotFound when its room is gone.
	RedeemToken(ctx context.Context, token string) (*chat.Grant, error)
	// Room returns a room's current settings, chat.ErrRoomNotFound when
	// it does not exist.
	Room(ctx context.Context, arn string) (*chat.Room, error)
}

// Config configures a Server. Zero values take the defaults given.
type Config struct {
	Control Control // required
	// Bus fans entities out to the room's connections on every node;
	// default: a LocalBus (single node).
	Bus    Bus
	Logger *slog.Logger // default: discard
	Now    func() time.Time
	// Review reviews messages of rooms that have a messageReviewHandler;
	// nil means no handler can be reached, so each such room's
	// fallbackResult decides, as IVS does when the handler fails.
	Review ReviewFunc

	// ConnRequestsPerSecond limits the requests of one connection (IVS:
	// 10 messaging requests per second per connection); past it requests
	// are answered with 429, and a connection that keeps going twice as
	// long again is disconnected. Default 10.
	ConnRequestsPerSecond int
	// SendQueue is how many entities may wait for a slow client before it
	// is disconnected. Default 32.
	SendQueue int
	// ReadLimit caps an inbound frame; a larger one closes the
	// connection with 1009. Default 32 KiB: a request within IVS's limits
	// (500 characters, 1 KB of attributes) is far smaller even when every
	// character is \u-escaped.
	ReadLimit int64
	// WriteTimeout bounds one frame written to a client. Default 10 s.
	WriteTimeout time.Duration
	// PingInterval is how often idle connections are pinged so that dead
	// ones are noticed; negative disables. Default 30 s.
	PingInterval time.Duration
	// RoomTTL is how long a room's settings are reused before they are
	// read again (how soon UpdateRoom takes effect). Default 2 s.
	RoomTTL time.Duration
	// ControlTimeout bounds a call to Control or the Bus. Default 5 s.
	ControlTimeout time.Duration
	// ReviewTimeout bounds Review (IVS: 200 ms). Default 200 ms.
	ReviewTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Bus == nil {
		c.Bus = NewLocalBus()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	setDefault(&c.ConnRequestsPerSecond, 10)
	setDefault(&c.SendQueue, 32)
	setDefault(&c.ReadLimit, 32<<10)
	setDefault(&c.WriteTimeout, 10*time.Second)
	setDefault(&c.PingInterval, 30*time.Second)
	setDefault(&c.RoomTTL, 2*time.Second)
	setDefault(&c.ControlTimeout, 5*time.Second)
	setDefault(&c.ReviewTimeout, 200*time.Millisecond)
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Server is the messaging WebSocket endpoint (an http.Handler for the
// upgrade request) and the chat.Broadcaster the control plane drives.
type Server struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	rooms  map[string]*room
	closed bool
	active sync.WaitGroup
}

var _ chat.Broadcaster = (*Server)(nil)

// New returns a Server; it serves nothing until mounted.
func New(cfg Config) (*Server, error) {
	if cfg.Control == nil {
		return nil, errors.New("messaging: Config.Control is required")
	}
	cfg.defaults()
	return &Server{cfg: cfg, log: cfg.Logger, rooms: make(map[string]*room)}, nil
}

// ServeHTTP upgrades a chat client's request. The token is redeemed before
// the upgrade so that a bad one is refused with an HTTP status, which the
// SDK sees as a failed connection (it retries with a fresh token, then
// reports disconnect reason "socketError").
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "chat: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Checked before the token is spent on a request that cannot upgrade.
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "chat: WebSocket upgrade required", http.StatusUpgradeRequired)
		return
	}
	token := chatToken(r.Header)
	if token == "" {
		http.Error(w, "chat: the chat token goes in Sec-WebSocket-Protocol", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.active.Add(1)
	}
	s.mu.Unlock()
	if closed {
		http.Error(w, "chat: shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.active.Done()

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ControlTimeout)
	grant, err := s.cfg.Control.RedeemToken(ctx, token)
	cancel()
	switch {
	case errors.Is(err, chat.ErrTokenInvalid):
		http.Error(w, "chat: token is invalid, used or expired", http.StatusUnauthorized)
		return
	case errors.Is(err, chat.ErrRoomNotFound):
		http.Error(w, "chat: room not found", http.StatusNotFound)
		return
	case err != nil:
		s.log.Warn("chat: redeem token", "err", err)
		http.Error(w, "chat: internal error", http.StatusInternalServerError)
		return
	}
	now := s.cfg.Now()
	if !grant.SessionExpires.IsZero() && !now.Before(grant.SessionExpires) {
		http.Error(w, "chat: session expired", http.StatusUnauthorized)
		return
	}

	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// The SDK's WebSocket fails unless its subprotocol is echoed.
		Subprotocols: []string{token},
		// Chat runs on the application's pages, any origin; the token is
		// the credential, so cross-site requests gain nothing.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept wrote the response
	}
	ws.SetReadLimit(s.cfg.ReadLimit)

	c := newConn(s, ws, grant, now)
	s.join(c)
	s.log.Debug("chat: connected", "room", grant.RoomARN, "user", grant.UserID)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	closing := c.readLoop()
	s.leave(c)
	if !closing {
		c.cancel() // the client is gone: the writer has nothing to do
	}
	<-writerDone
	c.cancel()
	s.log.Debug("chat: disconnected", "room", grant.RoomARN, "user", grant.UserID)
}

// Shutdown closes every connection with 1001 (going away) and refuses new
// ones, then waits for the connections to finish or ctx to end. Hijacked
// WebSockets are not http.Server.Shutdown's business, so the app calls
// this.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.each(func(c *conn) { c.kick(websocket.StatusGoingAway, "server shutting down") })
	}
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// join adds c to its room, subscribing this node to the room on the Bus
// when c is its first local connection.
func (s *Server) join(c *conn) {
	arn := c.grant.RoomARN
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[arn]
	if r == nil {
		r = newRoom(arn)
		unsubscribe, err := s.cfg.Bus.Subscribe(arn, r.deliver)
		if err != nil {
			// The connection still works for its own requests' errors;
			// it just hears nothing until the bus is back.
			s.log.Error("chat: subscribe room", "room", arn, "err", err)
			unsubscribe = func() {}
		}
		r.unsubscribe = unsubscribe
		s.rooms[arn] = r
	}
	c.room = r
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	if s.closed {
		// Shutdown began after ServeHTTP let c in and has not seen it.
		c.kick(websocket.StatusGoingAway, "server shutting down")
	}
}

// leave removes c from its room, unsubscribing from the room with its last
// local connection. Unsubscribe runs outside the locks: the bus may be
// delivering to the room, which takes r.mu.
func (s *Server) leave(c *conn) {
	r := c.room
	s.mu.Lock()
	r.mu.Lock()
	delete(r.conns, c)
	empty := len(r.conns) == 0
	r.mu.Unlock()
	var unsubscribe func()
	if empty && s.rooms[r.arn] == r {
		delete(s.rooms, r.arn)
		unsubscribe = r.unsubscribe
	}
	s.mu.Unlock()
	if unsubscribe != nil {
		unsubscribe()
	}
}

// chatToken is the first subprotocol the client offers: the SDK offers the
// token and nothing else.
func chatToken(h http.Header) string {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				return p
			}
		}
	}
	return ""
}

// headerHas reports whether the comma-separated header name lists token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), token) {
				return true
			}
		}
	}
	return false
}
