package messaging

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultNATSSubjectPrefix is where NATSBus publishes unless told
// otherwise: one subject below it per room.
const DefaultNATSSubjectPrefix = "openivs.chat"

// The envelope's fields other than Frame travel as NATS headers, so that
// the frame, which is already the JSON every client gets, is the message
// data as is: no second encoding, nothing to copy, and `nats sub` shows
// the chat traffic readably. Header values are escaped (see escapeHeader)
// because user IDs are arbitrary strings and NATS header values lose
// newlines and surrounding spaces.
const (
	hdrRoom           = "Openivs-Room"
	hdrDisconnectUser = "Openivs-Disconnect-User"
	hdrRoomChanged    = "Openivs-Room-Changed"
	hdrAction         = "Openivs-Action"
	hdrOrigin         = "Openivs-Origin" // the publishing bus's id
)

const (
	// natsPendingMsgs and natsPendingBytes bound what may wait for one
	// room's subscriber on this node before NATS drops envelopes (a slow
	// consumer). fn does not block, so a backlog only builds when the
	// node is starved of CPU; a room can still burst (a moderator's
	// SendEvent storm, hundreds of senders), and a dropped envelope is a
	// chat line lost for every local client, so the room gets room: 64 MiB
	// is thousands of the largest frames. The message count is what bounds
	// envelopes without data (RoomChanged), which the byte limit ignores.
	natsPendingMsgs  = 1 << 16
	natsPendingBytes = 64 << 20

	// natsFlushTimeout bounds Publish's wait for the server when ctx has
	// no deadline, and Subscribe's wait for its interest to be registered.
	natsFlushTimeout = 5 * time.Second
	// natsDrainTimeout bounds Close of a connection the bus owns.
	natsDrainTimeout = 5 * time.Second
)

var errBusClosed = errors.New("chat bus: closed")

// NATSBus is a Bus over core NATS, which lets several nodes serve the same
// rooms: one subject per room, and every node, the publisher included,
// hears a room's envelopes only through its own subscription, so that its
// own clients' messages and everyone else's reach its clients in the one
// order NATS delivers them, never the local ones ahead.
//
// Delivery is core NATS: at most once, in publish order per publishing
// node. NATS orders nothing across publishers, so two nodes' messages
// sent at the same instant may interleave differently on different
// nodes (as they may within IVS itself). A node cut off from NATS
// misses what is sent meanwhile, as IVS clients miss what is sent while
// they reconnect; chat has no history to replay.
type NATSBus struct {
	nc     *nats.Conn
	owned  chan struct{} // closed once an owned nc is closed; nil when nc is not ours
	prefix string
	log    *slog.Logger
	// id marks what this bus publishes (hdrOrigin), so that its
	// subscribers tell the other nodes' envelopes from its own.
	id string

	mu     sync.Mutex
	closed atomic.Bool // set under mu, read without it by Publish
	subs   map[*natsSub]struct{}
}

var _ Bus = (*NATSBus)(nil)

// NewNATSBus returns a bus on nc, which it does not own: Close leaves nc
// open. subjectPrefix defaults to DefaultNATSSubjectPrefix; nodes must use
// the same one to share rooms. nc must not be set to NoEcho, or a node's
// clients would not hear one another.
func NewNATSBus(nc *nats.Conn, subjectPrefix string, logger *slog.Logger) *NATSBus {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	subjectPrefix = strings.TrimSuffix(subjectPrefix, ".")
	if subjectPrefix == "" {
		subjectPrefix = DefaultNATSSubjectPrefix
	}
	if nc.Opts.NoEcho {
		logger.Error("chat: the NATS connection is NoEcho: this node's clients will not hear each other")
	}
	return &NATSBus{nc: nc, prefix: subjectPrefix, log: logger, id: rand.Text(), subs: make(map[*natsSub]struct{})}
}

// DialNATSBus connects to NATS (url may list several servers, comma
// separated) and returns a bus that owns the connection: Close drains and
// closes it. The connection reconnects forever.
func DialNATSBus(url string, logger *slog.Logger) (*NATSBus, error) {
	return dialNATSBus(url, DefaultNATSSubjectPrefix, logger)
}

func dialNATSBus(url, prefix string, logger *slog.Logger) (*NATSBus, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	closed := make(chan struct{})
	nc, err := nats.Connect(url,
		nats.Name("openivs chat"),
		nats.MaxReconnects(-1),
		// Nothing is buffered while reconnecting: Publish reports the
		// outage to its caller (an API call, a client's request) instead
		// of delivering minutes late, or never.
		nats.ReconnectBufSize(-1),
		nats.DrainTimeout(natsDrainTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("chat: NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("chat: NATS reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			// ErrSlowConsumer lands here once per overflow; the
			// subscription itself logs how many envelopes were lost.
			logger.Warn("chat: NATS error", "subject", subject, "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	)
	if err != nil {
		return nil, fmt.Errorf("chat bus: connecting to NATS %s: %w", redactNATSURL(url), err)
	}
	b := NewNATSBus(nc, prefix, logger)
	b.owned = closed
	return b, nil
}

// Close stops the bus: its subscriptions end, and a connection it owns is
// drained and closed (Close waits for that, within a few seconds). Publish
// and Subscribe fail afterwards.
func (b *NATSBus) Close() {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return
	}
	subs := make([]*natsSub, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	if b.owned == nil {
		for _, s := range subs {
			s.cancel()
		}
		return
	}
	// Drain delivers what has arrived and flushes what was published;
	// when it cannot (reconnecting), it closes at once.
	if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionReconnecting) {
		b.nc.Close()
	}
	select {
	case <-b.owned:
	case <-time.After(natsDrainTimeout + time.Second):
		b.nc.Close()
	}
	for _, s := range subs {
		s.stop()
	}
}

// subject is the room's subject. ARNs hold '.', which NATS reads as a
// token separator, and may hold anything else an ARN allows, so the room
// is hashed into one token; a collision is harmless because subscribers
// check the room carried in the message.
func (b *NATSBus) subject(room string) string {
	sum := sha256.Sum256([]byte(room))
	return b.prefix + "." + hex.EncodeToString(sum[:16])
}

// Publish implements Bus. It returns once the NATS server has the
// envelope (a flush, bounded by ctx), so a SendEvent answered 200 has left
// this node; a NATS outage is an error rather than a silent loss.
func (b *NATSBus) Publish(ctx context.Context, env Envelope) error {
	if env.Room == "" {
		return errNoRoom
	}
	if b.closed.Load() {
		return errBusClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("chat bus: publish to room %s: %w", env.Room, err)
	}
	// A flush while reconnecting would wait for ctx to end; say so now.
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("chat bus: publish to room %s: NATS connection is %s", env.Room, st)
	}
	m := encodeEnvelope(b.subject(env.Room), env)
	m.Header.Set(hdrOrigin, b.id)
	if err := b.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("chat bus: publish to room %s: %w", env.Room, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, natsFlushTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("chat bus: publish to room %s: NATS did not confirm: %w", env.Room, err)
	}
	return nil
}

// Subscribe implements Bus with one NATS subscription per call; fn runs on
// that subscription's goroutine, one envelope at a time. Subscribe returns
// once the NATS server knows of the interest (when connected), so that
// whatever any node publishes after a client has joined reaches it.
func (b *NATSBus) Subscribe(room string, fn func(Envelope)) (func(), error) {
	if room == "" {
		return nil, errNoRoom
	}
	if b.closed.Load() {
		return nil, errBusClosed
	}
	s := &natsSub{bus: b, room: room, fn: fn}
	sub, err := b.nc.Subscribe(b.subject(room), s.handle)
	if err != nil {
		return nil, fmt.Errorf("chat bus: subscribe to room %s: %w", room, err)
	}
	s.sub = sub
	if err := sub.SetPendingLimits(natsPendingMsgs, natsPendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("chat bus: subscribe to room %s: %w", room, err)
	}
	b.mu.Lock()
	if b.closed.Load() { // Close ran meanwhile and did not see s
		b.mu.Unlock()
		_ = sub.Unsubscribe()
		return nil, errBusClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	if b.nc.IsConnected() {
		// Failing here would leave the room deaf although the
		// subscription works as soon as NATS catches up.
		if err := b.nc.FlushTimeout(natsFlushTimeout); err != nil {
			b.log.Warn("chat: NATS did not confirm a room subscription", "room", room, "err", err)
		}
	}
	return s.cancel, nil
}

// natsSub is one Subscribe call.
type natsSub struct {
	bus  *NATSBus
	room string
	fn   func(Envelope)
	sub  *nats.Subscription

	// mu is held while fn runs, so that once cancel returns fn is not
	// running and will not run again, as with LocalBus.
	mu      sync.Mutex
	stopped bool

	dropped int // the subscription's goroutine only
}

// handle is the NATS callback: decode, check, hand to fn.
func (s *natsSub) handle(m *nats.Msg) {
	s.noteDropped(m.Sub)
	env, err := decodeEnvelope(m)
	if err != nil {
		s.bus.log.Debug("chat: dropped a malformed NATS envelope", "subject", m.Subject, "room", s.room, "err", err)
		return
	}
	env.Remote = m.Header.Get(hdrOrigin) != s.bus.id
	if env.Room != s.room {
		s.bus.log.Debug("chat: dropped a NATS envelope of another room (subject hash collision)",
			"subject", m.Subject, "room", s.room, "other", env.Room)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.fn(env)
	}
}

// noteDropped logs envelopes NATS dropped because this subscription fell
// more than the pending limits behind: the local clients missed them.
func (s *natsSub) noteDropped(sub *nats.Subscription) {
	if sub == nil {
		return
	}
	n, err := sub.Dropped()
	if err != nil || n <= s.dropped {
		return
	}
	s.bus.log.Warn("chat: NATS dropped room envelopes (slow consumer)", "room", s.room, "dropped", n-s.dropped)
	s.dropped = n
}

func (s *natsSub) cancel() {
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		s.bus.log.Warn("chat: NATS unsubscribe", "room", s.room, "err", err)
	}
	s.stop()
}

// stop makes sure fn is not called again.
func (s *natsSub) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
}

func encodeEnvelope(subject string, env Envelope) *nats.Msg {
	h := nats.Header{hdrRoom: {escapeHeader(env.Room)}}
	if env.DisconnectUser != "" {
		h[hdrDisconnectUser] = []string{escapeHeader(env.DisconnectUser)}
	}
	if env.RoomChanged {
		h[hdrRoomChanged] = []string{"1"}
	}
	if env.Action != "" {
		h[hdrAction] = []string{env.Action}
	}
	return &nats.Msg{Subject: subject, Header: h, Data: env.Frame}
}

func decodeEnvelope(m *nats.Msg) (Envelope, error) {
	var env Envelope
	room, err := url.PathUnescape(m.Header.Get(hdrRoom))
	if err != nil {
		return env, fmt.Errorf("room header: %w", err)
	}
	if room == "" {
		return env, errors.New("no room header")
	}
	user, err := url.PathUnescape(m.Header.Get(hdrDisconnectUser))
	if err != nil {
		return env, fmt.Errorf("disconnect-user header: %w", err)
	}
	switch v := m.Header.Get(hdrRoomChanged); v {
	case "":
	case "1":
		env.RoomChanged = true
	default:
		return env, fmt.Errorf("room-changed header %q", v)
	}
	switch a := m.Header.Get(hdrAction); a {
	case "", MetricSendMessage, MetricDeleteMessage, MetricDisconnectUser, MetricSendEvent:
		env.Action = a
	default:
		return env, fmt.Errorf("action header %q", a)
	}
	if len(m.Data) == 0 && !env.RoomChanged {
		// An empty frame would reach every client as an empty text frame.
		return env, errors.New("no frame")
	}
	env.Room, env.DisconnectUser = room, user
	if len(m.Data) > 0 {
		env.Frame = m.Data
	}
	return env, nil
}

// escapeHeader percent-encodes what a NATS header value cannot carry as
// is: controls (CR, LF end the header), spaces (trimmed at the ends),
// non-ASCII, and '%' itself. ARNs pass through unchanged and readable.
// url.PathUnescape reverses it.
func escapeHeader(s string) string {
	const hexDigits = "0123456789ABCDEF"
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' {
			sb.WriteByte('%')
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&15])
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// redactNATSURL drops credentials from NATS URLs for messages.
func redactNATSURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		u = strings.TrimSpace(u)
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				u = u[:scheme+3] + "…@" + u[at+1:]
			}
		}
		parts[i] = u
	}
	return strings.Join(parts, ",")
}
