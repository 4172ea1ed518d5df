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
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	// Observer is told what IVS Chat's CloudWatch metrics count; nil:
	// nobody.
	Observer Observer

	// ClientIP is the address of a connecting client, which review
	// handlers get as Sender.Ip; default: the socket peer.
	ClientIP func(*http.Request) string

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
	// PingInterval is how often connections are pinged so that dead ones
	// are noticed (and proxies see traffic); negative disables. Default
	// 30 s. One sweep of the server pings the connections whose turn has
	// come, spread over the interval.
	PingInterval time.Duration
	// RoomTTL is how long a room's settings are reused before they are
	// read again (how soon UpdateRoom takes effect). Default 2 s.
	RoomTTL time.Duration
	// ControlTimeout bounds a call to Control or the Bus. Default 5 s.
	ControlTimeout time.Duration
	// ReviewTimeout bounds Review (IVS: 200 ms). Default 200 ms.
	ReviewTimeout time.Duration

	// MaxConnections bounds the open connections (IVS's
	// chat-concurrent-connections quota): this server's plus
	// PeerConnections'; past it the upgrade is refused with 429 before the
	// token is spent. 0: unlimited.
	MaxConnections int
	// PeerConnections, when set, is the number of connections the other
	// nodes serving the account hold (NATSBus.ShareConnections).
	PeerConnections func() int
	// ReleaseHandler makes ServeHTTP return as soon as the WebSocket is
	// open, the connection living on in a goroutine of its own. net/http
	// then frees what it holds for the request until its handler returns
	// (two 4 KiB buffers, the request, the handler's stack), and the
	// socket gets 1 KiB buffers instead: an idle connection costs about a
	// third as much (docs/benchmarks.md, Chat). ServeHTTP's duration then
	// no longer counts
	// connections: use MaxConnections and Connections instead. Shutdown
	// waits for the connections either way.
	ReleaseHandler bool
}

// Buffer sizes of a released connection's socket. Requests are small
// (the SDK's are a few hundred bytes) and a MESSAGE fits in one write;
// larger frames just take more system calls.
const (
	releasedReadBuffer  = 1 << 10
	releasedWriteBuffer = 1 << 10
)

func (c *Config) defaults() {
	if c.Bus == nil {
		c.Bus = NewLocalBus()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Observer == nil {
		c.Observer = noObserver{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ClientIP == nil {
		c.ClientIP = peerIP
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

	mu       sync.Mutex
	rooms    map[string]*room
	closed   bool
	pingStop chan struct{} // closed by Shutdown; nil until the sweep starts
	active   sync.WaitGroup
	conns    atomic.Int64 // open connections and upgrades under way
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
	if n := s.conns.Add(1); s.cfg.MaxConnections > 0 && n+s.peerConnections() > int64(s.cfg.MaxConnections) {
		s.conns.Add(-1)
		http.Error(w, "chat: concurrent chat connections quota exceeded", http.StatusTooManyRequests)
		return
	}
	connected := false
	defer func() {
		if !connected {
			s.conns.Add(-1)
		}
	}()

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

	// The connection joins its room before the upgrade is answered: a
	// client that sees itself connected gets every message sent after
	// that. What arrives before the socket is open waits in its queue.
	c := newConn(s, grant, now)
	c.ip = s.cfg.ClientIP(r)
	s.join(c)

	uw := &upgradeWriter{ResponseWriter: w, small: s.cfg.ReleaseHandler}
	ws, err := websocket.Accept(uw, r, &websocket.AcceptOptions{
		// The SDK's WebSocket fails unless its subprotocol is echoed.
		Subprotocols: []string{token},
		// Chat runs on the application's pages, any origin; the token is
		// the credential, so cross-site requests gain nothing.
		InsecureSkipVerify: true,
	})
	if err != nil {
		c.abandon()
		return // Accept wrote the response
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	c.attach(ws, uw.nc)
	connected = true
	s.log.Debug("chat: connected", "room", grant.RoomARN, "user", grant.UserID)
	run := func() {
		c.serve()
		s.conns.Add(-1)
		s.log.Debug("chat: disconnected", "room", grant.RoomARN, "user", grant.UserID)
	}
	if !s.cfg.ReleaseHandler {
		run()
		return
	}
	s.active.Add(1) // while the handler's own count still holds
	go func() {
		defer s.active.Done()
		run()
	}()
}

// peerConnections is what the other nodes hold (0 without peers).
func (s *Server) peerConnections() int64 {
	if s.cfg.PeerConnections == nil {
		return 0
	}
	return int64(s.cfg.PeerConnections())
}

// Connections is the number of open connections (and upgrades under way)
// of this server.
func (s *Server) Connections() int {
	return int(s.conns.Load())
}

// upgradeWriter hands coder/websocket the hijacked socket, keeping it for
// write deadlines, and with small set swaps net/http's 4 KiB buffers for
// small ones (which only pays when the handler returns and net/http lets
// go of its own).
type upgradeWriter struct {
	http.ResponseWriter
	small bool
	nc    net.Conn
}

func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	u.nc = nc
	if u.small {
		brw = smallBuffers(nc, brw)
	}
	return nc, brw, nil
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (u *upgradeWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// smallBuffers returns buffers of the released sizes for nc carrying over
// what brw holds: bytes the client sent right behind its handshake stay
// buffered (coder/websocket reads them first), and anything unflushed is
// flushed. When that does not fit, brw is kept as it is.
func smallBuffers(nc net.Conn, brw *bufio.ReadWriter) *bufio.ReadWriter {
	if brw.Writer.Buffered() > 0 && brw.Writer.Flush() != nil {
		return brw
	}
	n := brw.Reader.Buffered()
	if n > releasedReadBuffer {
		return brw
	}
	r := bufio.NewReaderSize(nc, releasedReadBuffer)
	if n > 0 {
		early, _ := brw.Reader.Peek(n)
		r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), nc), releasedReadBuffer)
		// One read from the bytes.Reader makes them Buffered, without
		// touching the socket.
		if _, err := r.Peek(n); err != nil {
			return brw
		}
	}
	return bufio.NewReadWriter(r, bufio.NewWriterSize(nc, releasedWriteBuffer))
}

// Shutdown closes every connection with 1001 (going away) and refuses new
// ones, then waits for the connections to finish or ctx to end. Hijacked
// WebSockets are not http.Server.Shutdown's business, so the app calls
// this.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed && s.pingStop != nil {
		close(s.pingStop)
	}
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

// RoomChanged tells every node that a room's settings changed or that it
// was deleted (the control plane's room listener): they stop using their
// cached copy, and a deleted room's connections are closed.
func (s *Server) RoomChanged(ctx context.Context, roomARN string) error {
	if roomARN == "" {
		return errNoRoom
	}
	return s.cfg.Bus.Publish(ctx, Envelope{Room: roomARN, RoomChanged: true})
}

// recheckRoom reads a changed room's settings; when the room is gone, its
// connections here are closed normally (the SDK reports serverDisconnect).
func (s *Server) recheckRoom(r *room) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ControlTimeout)
	defer cancel()
	_, err := r.lookup(ctx, s.cfg.Control, s.cfg.RoomTTL, s.cfg.Now())
	switch {
	case errors.Is(err, chat.ErrRoomNotFound):
		// Marked first: a connection whose handshake finished before the
		// deletion may join after this sweep, and join closes it then.
		r.mu.Lock()
		r.deleted = true
		r.mu.Unlock()
		r.each(func(c *conn) { c.kick(websocket.StatusNormalClosure, "room deleted") })
	case err != nil:
		s.log.Warn("chat: look up changed room", "room", r.arn, "err", err)
	}
}

// join adds c to its room, subscribing this node to the room on the Bus
// when c is its first local connection. It returns once the room is
// subscribed, so that c hears whatever is sent to the room after that.
func (s *Server) join(c *conn) {
	arn := c.grant.RoomARN
	s.mu.Lock()
	r := s.rooms[arn]
	first := r == nil
	if first {
		r = newRoom(arn, s.cfg.Observer, s.cfg.Now)
		r.changed = func() { go s.recheckRoom(r) }
		s.rooms[arn] = r
	}
	c.room = r
	r.mu.Lock()
	r.conns[c] = struct{}{}
	deleted := r.deleted
	r.mu.Unlock()
	if deleted {
		// The room was deleted between this client's token and its join.
		c.kick(websocket.StatusNormalClosure, "room deleted")
	}
	if s.cfg.PingInterval > 0 && s.pingStop == nil && !s.closed {
		s.pingStop = make(chan struct{})
		go s.pingLoop(s.pingStop)
	}
	if s.closed {
		// Shutdown began after ServeHTTP let c in and has not seen it.
		c.kick(websocket.StatusGoingAway, "server shutting down")
	}
	s.mu.Unlock()

	// Subscribing may be a round trip to NATS: it runs outside s.mu, so
	// that other rooms' clients come and go meanwhile, and the room's
	// other joiners wait for it.
	if !first {
		<-r.subscribed
		return
	}
	unsubscribe, err := s.cfg.Bus.Subscribe(arn, r.deliver)
	if err != nil {
		// The connection still works for its own requests' errors;
		// it just hears nothing until the bus is back.
		s.log.Error("chat: subscribe room", "room", arn, "err", err)
		unsubscribe = func() {}
	}
	r.unsubscribe = unsubscribe // read by leave, after a joiner saw subscribed closed
	close(r.subscribed)
	// A deletion announced before this node was subscribed (between the
	// token's redemption and now) was not heard: ask once.
	r.changed()
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

// pingLoop pings every connection once per PingInterval until stop is
// closed: one goroutine for the server instead of a ticker per
// connection. It wakes eight times an interval and pings the connections
// whose turn has come.
func (s *Server) pingLoop(stop <-chan struct{}) {
	tick := time.NewTicker(max(s.cfg.PingInterval/8, time.Millisecond))
	defer tick.Stop()
	var conns []*conn
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		conns = conns[:0]
		s.mu.Lock()
		for _, r := range s.rooms {
			r.each(func(c *conn) { conns = append(conns, c) })
		}
		s.mu.Unlock()
		now := time.Now()
		for _, c := range conns {
			c.pingIfDue(now)
		}
		clear(conns) // let closed connections go
	}
}

// pingDelay is how long a new connection waits for its first ping: one
// interval and up to half another, so that connections opened together
// are not all pinged together.
func (s *Server) pingDelay() time.Duration {
	return s.cfg.PingInterval + rand.N(s.cfg.PingInterval/2+1)
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

// peerIP is the host part of the request's socket peer.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
