package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/chat/chatlog"
	"github.com/openivs/openivs/internal/chat/messaging"
	"github.com/openivs/openivs/internal/chat/review"
	"github.com/openivs/openivs/internal/clientip"
	"github.com/openivs/openivs/internal/metrics"
)

// chatNode is IVS Chat on this node: the control plane (mounted on the API
// server) and the messaging WebSocket at GET /chat.
type chatNode struct {
	svc  *chat.Service
	api  *awsapi.Service
	msgs *messaging.Server
	// demoTokens mints tokens for the player page's chat panel.
	demoTokens http.Handler
	// closers run on shutdown, after the HTTP servers stop, last first.
	closers []func(context.Context) error
	// maxConns is the chat-concurrent-connections quota (0: unlimited),
	// which messaging enforces on the open connections of this node and,
	// with --nats-url, of the other nodes (as they last reported them).
	maxConns int64
}

// startChat builds IVS Chat: the control plane on the API server, the
// messaging server its operations drive, and what rooms need around them
// (fan-out bus, review handlers, logging).
func (a *App) startChat(ctx context.Context) (node *chatNode, err error) {
	svc, err := chat.New(chat.Config{
		Store: a.store, Region: a.cfg.Region, AccountID: a.cfg.AccountID,
		Quotas: a.chatQuotas(), RateLimits: a.chatRateLimits(),
		Logger: a.log.With("component", "chat"),
	})
	if err != nil {
		return nil, err
	}
	api := svc.API()
	if err := a.api.Mount(api); err != nil {
		return nil, err
	}
	proxies, err := clientip.ParseTrusted(a.cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	// Rooms' messageReviewHandler Lambda ARNs, served by the HTTP
	// endpoints --chat-review-handler maps them to; an unmapped one fails
	// every review, so the room's fallbackResult decides, as in IVS.
	reviewer, err := review.New(review.Config{
		Handlers: a.cfg.ReviewHandlers(),
		Logger:   a.log.With("component", "chat-review"),
	})
	if err != nil {
		return nil, fmt.Errorf("--chat-review-handler: %w", err)
	}
	node = &chatNode{svc: svc, api: api, maxConns: int64(a.chatQuotas().ConcurrentConnections)}
	defer func() {
		if err != nil {
			_ = node.closeSinks(ctx)
		}
	}()

	// Fan-out: in-process, or through NATS so that nodes sharing the
	// store also share rooms (a subject per room).
	var bus messaging.Bus = messaging.NewLocalBus()
	var natsBus *messaging.NATSBus
	if a.cfg.NATSURL != "" {
		natsBus, err = messaging.DialNATSBus(a.cfg.NATSURL, a.log.With("component", "chat-nats"))
		if err != nil {
			return nil, fmt.Errorf("--nats-url: %w", err)
		}
		node.closers = append(node.closers, func(context.Context) error { natsBus.Close(); return nil })
		bus = natsBus
	}
	// The other nodes' connections count toward the quota too (set
	// below, once this node's messaging exists to count its own).
	var peers atomic.Pointer[messaging.PeerConnections]
	// Chat logging: the node that publishes an entity records it for the
	// room's logging configurations — CloudWatch Logs and Firehose into
	// --chat-log-dir, S3 into the object store recordings use.
	logs, err := chatlog.New(chatlog.Config{
		Dir: a.cfg.ChatLogPath(), Buckets: a.recordings,
		Rooms: svc.Room, Destination: svc.LoggingDestination,
		Region: a.cfg.Region, AccountID: a.cfg.AccountID,
		Logger:             a.log.With("component", "chat-logging"),
		OnDestinationError: chatObserver{a.metrics}.LogDestinationFailed,
	})
	if err != nil {
		return nil, err
	}
	node.closers = append(node.closers, logs.Close)
	bus = logs.Wrap(bus)

	msgs, err := messaging.New(messaging.Config{
		Control:  svc,
		Bus:      bus,
		Review:   reviewer.Review,
		Observer: chatObserver{a.metrics},
		Logger:   a.log.With("component", "chat-messaging"),
		ClientIP: func(r *http.Request) string { return proxies.Addr(r).String() },
		// The handler returns once the socket is open, so that net/http
		// lets go of the request: an idle chat connection costs ~12 KB
		// instead of ~37 KB (docs/benchmarks.md, Chat).
		ReleaseHandler: true,
		MaxConnections: int(node.maxConns),
		PeerConnections: func() int {
			if p := peers.Load(); p != nil {
				return p.Others()
			}
			return 0
		},
	})
	if err != nil {
		return nil, err
	}
	node.msgs = msgs
	if natsBus != nil {
		cluster, err := svc.ClusterID(ctx)
		if err != nil {
			return nil, err
		}
		p, err := natsBus.ShareConnections(cluster, msgs.Connections, 0)
		if err != nil {
			return nil, fmt.Errorf("--nats-url: %w", err)
		}
		peers.Store(p)
		node.closers = append(node.closers, func(context.Context) error { p.Stop(); return nil })
	}
	a.metrics.ObserveChatConnections(msgs.Connections)
	node.demoTokens = svc.DemoTokenHandler()
	svc.SetBroadcaster(msgs)
	svc.SetRoomListener(func(roomARN string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := msgs.RoomChanged(ctx, roomARN); err != nil {
			a.log.Warn("chat: announcing a room change", "room", roomARN, "err", err)
		}
	})
	return node, nil
}

// serveChat is GET /chat, the messaging WebSocket (503 before Start).
func (a *App) serveChat(w http.ResponseWriter, r *http.Request) {
	if a.chat == nil {
		http.Error(w, "chat: not started", http.StatusServiceUnavailable)
		return
	}
	a.chat.msgs.ServeHTTP(w, r)
}

// serveChatDemoToken is POST /chat-demo/token (503 before Start).
func (a *App) serveChatDemoToken(w http.ResponseWriter, r *http.Request) {
	if a.chat == nil {
		http.Error(w, "chat: not started", http.StatusServiceUnavailable)
		return
	}
	a.chat.demoTokens.ServeHTTP(w, r)
}

// closeSockets closes every chat WebSocket (1001, going away: the SDK
// reconnects, to another node behind a load balancer).
func (c *chatNode) closeSockets(ctx context.Context) error {
	if c == nil {
		return nil
	}
	drainCtx, cancel := context.WithTimeout(ctx, drainGrace)
	defer cancel()
	return c.msgs.Shutdown(drainCtx)
}

// closeSinks flushes and closes what the rooms were writing to; after the
// HTTP servers, so that no API call publishes any more.
func (c *chatNode) closeSinks(ctx context.Context) error {
	if c == nil {
		return nil
	}
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- { // the reverse of their opening
		errs = append(errs, c.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// pruneEvery calls prune with the time every interval until ctx ends;
// what it removes is logged at debug level, failures at error.
func (a *App) pruneEvery(ctx context.Context, interval time.Duration, what string, prune func(context.Context, time.Time) (int, error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := prune(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.log.Error("pruning "+what, "err", err)
		} else if n > 0 {
			a.log.Debug("pruned "+what, "count", n)
		}
	}
}

func (a *App) chatQuotas() chat.Quotas {
	q := chat.DefaultQuotas()
	for _, name := range chat.QuotaNames() {
		if v, ok := a.cfg.Quotas[name]; ok {
			_ = q.Set(name, v) // validated by config
		}
	}
	return q
}

func (a *App) chatRateLimits() map[string]float64 {
	limits := chat.DefaultRateLimits()
	for name, v := range a.cfg.RateLimits {
		limits[name] = v
	}
	return limits
}

// isChatQuota reports whether a `quotas:` name is IVS Chat's.
func isChatQuota(name string) bool {
	for _, q := range chat.QuotaNames() {
		if q == name {
			return true
		}
	}
	return false
}

// chatObserver exports what messaging counts as IVS Chat's metrics.
type chatObserver struct{ m *metrics.Registry }

func (o chatObserver) Request(action string)          { o.m.ChatRequest(action) }
func (o chatObserver) Delivered(action string, n int) { o.m.ChatDelivered(action, n) }

func (o chatObserver) ReviewFailed(uri string, err error) {
	o.m.ChatReviewError(uri, errors.Is(err, review.ErrInvalidResponse))
}

// LogDestinationFailed is chatlog's OnDestinationError.
func (o chatObserver) LogDestinationFailed(config string, err error) {
	o.m.ChatLogError(config,
		errors.Is(err, blob.ErrAccessDenied) || errors.Is(err, fs.ErrPermission),
		errors.Is(err, blob.ErrNoSuchBucket))
}
