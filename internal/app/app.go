// Package app is the composition root of openivs: it turns a config.Config
// into running services — data dir, store, root credentials, TLS
// certificate, listeners, the AWS API server and the IVS control plane — and
// starts and stops them. It is the only package that knows every other one.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/config"
	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/geoip"
	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/ingest/rtmp"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/live"
	"github.com/openivs/openivs/internal/metrics"
	"github.com/openivs/openivs/internal/playback"
	"github.com/openivs/openivs/internal/store"
	"github.com/openivs/openivs/internal/transcode"
	"github.com/openivs/openivs/internal/webui"
)

// App is one openivs node.
type App struct {
	cfg   config.Config
	log   *slog.Logger
	store store.Store
	creds RootCredentials
	cert  tls.Certificate
	api   *awsapi.Server
	ivs   *ivs.Service
	live  *live.Manager
	// viewers counts viewer sessions for GetStream.viewerCount.
	viewers *playback.Viewers
	// metrics is the Prometheus registry (GET /metrics; metrics.go).
	metrics *metrics.Registry
	// callHooks see every finished API call (see onCall); set before Start.
	callHooks []func(awsapi.CallRecord)
	// audit is the audit log of API calls (see audit.go).
	audit auditLog
	// recordings is the object store recordings go to (and, with
	// --audit-s3-bucket, the audit log): S3 with --s3-* credentials, else
	// DATA_DIR/recordings (blobStore in audit.go).
	recordings blob.Store
	// outbox delivers events to the sinks (events.go); outboxStop ends it.
	outbox     *events.Outbox
	outboxStop func()
	natsSink   *events.NATS
	// viewerBreaches throttles Concurrent Viewers limit breaches.
	viewerBreaches breachThrottle
	// playback serves viewers (playback.go); geoip is its --geoip-db.
	playback *playback.Handler
	geoip    *geoip.DB
	// chat is IVS Chat (chat.go).
	chat *chatNode

	// Bound by Start.
	httpLn  net.Listener
	httpsLn net.Listener // nil when --https-addr is empty
	rtmpLn  net.Listener
	rtmpsLn net.Listener // TLS over the raw RTMPS socket
	// publisher is what the ingest servers admit encoders through; it
	// points at the live manager once that exists.
	publisher lazyPublisher
	ports     map[string]int

	httpSrv  *http.Server
	httpsSrv *http.Server

	ready   atomic.Bool
	started bool
	bg      sync.WaitGroup
	stop    context.CancelFunc // stops background goroutines

	shutdownOnce sync.Once
	shutdownErr  error
}

// New prepares a node: it creates the data dir, opens the store, resolves
// the root credentials and the TLS certificate. Nothing listens until Start.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// A ports.json left by an earlier run would point at dead ports; scripts
	// wait for it to appear.
	if err := os.Remove(filepath.Join(cfg.DataDir, portsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale ports.json: %w", err)
	}
	a := &App{cfg: cfg, log: logger}
	a.initMetrics()

	creds, err := resolveCredentials(cfg.DataDir, cfg.AccessKeyID, cfg.SecretAccessKey)
	if err != nil {
		return nil, err
	}
	a.creds = creds
	if creds.Generated {
		logger.Info("generated root credentials", "access_key_id", creds.AccessKeyID, "file", creds.Source)
	}

	cert, err := loadOrCreateCertificate(cfg.DataDir, cfg.TLSCert, cfg.TLSKey, cfg.PublicHost, time.Now())
	if err != nil {
		return nil, err
	}
	a.cert = cert

	st, err := store.Open(ctx, cfg.Store, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	a.store = st

	if a.recordings, err = a.blobStore(); err != nil {
		_ = st.Close()
		return nil, err
	}
	if err := a.openAudit(); err != nil {
		_ = st.Close()
		return nil, err
	}

	a.api = awsapi.NewServer(awsapi.Options{
		Region:            cfg.Region,
		Credentials:       &credentialStore{root: creds, account: cfg.AccountID},
		MaxBodyBytes:      cfg.MaxBodyBytes,
		TokenSecret:       paginationKey(creds.SecretAccessKey),
		DisableRateLimits: cfg.DisableRateLimits,
		Logger:            logger,
		OnCall:            a.onCall,
	})
	return a, nil
}

// paginationKey derives the pagination-token key from the root secret, so
// tokens survive restarts without another secret to keep.
func paginationKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("openivs pagination"))
	return m.Sum(nil)
}

// Start binds every listener (":0" picks a free port), builds the services
// that need the actual ports, writes DATA_DIR/ports.json and serves. When
// it returns nil, /healthz answers 200.
func (a *App) Start(ctx context.Context) (err error) {
	if a.started {
		return errors.New("app: already started")
	}
	a.started = true
	defer func() {
		if err != nil {
			a.closeListeners()
		}
	}()
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = cancel
	if err := a.bind(bgCtx); err != nil {
		return err
	}

	svc, err := ivs.New(ivs.Config{
		Store:           a.store,
		Region:          a.cfg.Region,
		AccountID:       a.cfg.AccountID,
		IngestEndpoint:  net.JoinHostPort(a.cfg.PublicHost, strconv.Itoa(a.ports["rtmps"])),
		SRTEndpoint:     net.JoinHostPort(a.cfg.PublicHost, strconv.Itoa(a.ports["srt"])),
		PlaybackBaseURL: a.PlaybackBaseURL(),
		Quotas:          a.quotas(),
		RateLimits:      a.rateLimits(),
		Logger:          a.log,
		Buckets:         a.recordings,
	})
	if err != nil {
		return fmt.Errorf("ivs: %w", err)
	}
	// Streams left live by a crash or kill have no encoder any more.
	if n, err := svc.EndAbandonedStreams(ctx, time.Now()); err != nil {
		return fmt.Errorf("ending abandoned streams: %w", err)
	} else if n > 0 {
		a.log.Warn("ended streams left live by an earlier run", "streams", n)
	}
	apiSvc := svc.API()
	if err := a.api.Mount(apiSvc); err != nil {
		return err
	}
	a.ivs = svc
	if a.chat, err = a.startChat(ctx); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	// rate-limits: names must be operations of a mounted API (IVS's or
	// IVS Chat's; a name both have, like TagResource, sets both).
	for name := range a.cfg.RateLimits {
		_, inIVS := apiSvc.Model.Operations[name]
		_, inChat := a.chat.api.Model.Operations[name]
		if !inIVS && !inChat {
			return fmt.Errorf("rate-limits: unknown operation %q", name)
		}
	}
	// Recording configurations whose bucket check a stop cut short.
	if n, err := svc.ResumeBucketChecks(ctx); err != nil {
		return fmt.Errorf("checking recording buckets: %w", err)
	} else if n > 0 {
		a.log.Info("checking the buckets of recording configurations still CREATING", "recording_configurations", n)
	}

	if err := a.writePorts(); err != nil {
		return err
	}

	// Events: delivered from the store's outbox; those of the previous
	// run that were not delivered yet go out now too.
	if a.outbox, err = a.buildOutbox(); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	a.runOutbox()
	a.recoverRecordings(bgCtx)

	// Ingest: the live manager admits encoders for the control plane; the
	// front-ends take over the sockets bound above.
	a.live = live.NewManager(live.Config{
		Channels: svc, Events: a.outbox, EventsStored: a.outbox.Wake, Region: a.cfg.Region, Logger: a.log,
		IdleTimeout: a.cfg.StreamIdleTimeout,
		Transcode: &live.TranscodeConfig{
			Capacity: transcode.NewCapacity(transcodeCapacity(a.cfg.MaxTranscodes)),
			FFmpeg:   a.cfg.FFmpeg,
		},
		Recording: a.recordingConfig(),
		Ingest:    a.metrics,
	})
	svc.SetStreamControl(a.live)
	a.viewers = playback.NewViewers()
	svc.SetViewerCounter(a.viewers)
	if a.playback, err = a.buildPlayback(ctx, svc); err != nil {
		return err
	}
	a.startMetrics(bgCtx)
	a.publisher.m.Store(a.live)
	rtmpSrv := rtmp.NewServer(rtmp.Config{Publisher: &a.publisher, Logger: a.log})
	handler := a.handler()
	errLog := slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	a.httpSrv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	a.serve("http", func() error { return a.httpSrv.Serve(a.httpLn) })
	if a.httpsLn != nil {
		a.httpsSrv = &http.Server{
			Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{a.cert}, MinVersion: tls.VersionTLS12,
				NextProtos: []string{"h2", "http/1.1"}},
		}
		// ServeTLS configures HTTP/2 before wrapping the listener in TLS.
		a.serve("https", func() error { return a.httpsSrv.ServeTLS(a.httpsLn, "", "") })
	}

	a.bg.Add(5)
	// Expired chat tokens nobody redeemed; played single-use playback
	// tokens once expired (their exp is at most 10 minutes ahead).
	go func() {
		defer a.bg.Done()
		a.pruneEvery(bgCtx, time.Minute, "expired chat tokens", a.chat.svc.PruneChatTokens)
	}()
	go func() { defer a.bg.Done(); a.pruneSessions(bgCtx, svc) }()
	go func() {
		defer a.bg.Done()
		a.pruneEvery(bgCtx, playback.SingleUsePruneInterval, "expired single-use playback tokens", svc.PruneSingleUseTokens)
	}()
	go func() { defer a.bg.Done(); a.logServeErr("rtmp", rtmpSrv.Serve(bgCtx, a.rtmpLn, ingest.RTMP)) }()
	go func() { defer a.bg.Done(); a.logServeErr("rtmps", rtmpSrv.Serve(bgCtx, a.rtmpsLn, ingest.RTMPS)) }()

	a.ready.Store(true)
	a.log.Info("listening", "http", a.ports["http"], "https", a.ports["https"], "rtmp", a.ports["rtmp"],
		"rtmps", a.ports["rtmps"], "srt", a.ports["srt"])
	return nil
}

// pruneSessions deletes stream sessions past IVS's 60-day retention, now
// and then hourly.
func (a *App) pruneSessions(ctx context.Context, svc *ivs.Service) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		if n, err := svc.PruneStreamSessions(ctx, time.Now().Add(-ivs.SessionRetention)); err != nil && ctx.Err() == nil {
			a.log.Error("pruning stream sessions", "err", err)
		} else if n > 0 {
			a.log.Info("pruned stream sessions past retention", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// logServeErr logs an ingest server that stopped for another reason than
// shutdown.
func (a *App) logServeErr(name string, err error) {
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
		a.log.Error("ingest server stopped", "listener", name, "err", err)
	}
}

// serve runs an http.Server's loop in the background.
func (a *App) serve(name string, run func() error) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("server stopped", "listener", name, "err", err)
		}
	}()
}

func (a *App) quotas() ivs.Quotas {
	q := ivs.DefaultQuotas()
	for name, v := range a.cfg.Quotas {
		if isChatQuota(name) {
			continue // chatQuotas
		}
		// Names and values were validated by config; Set cannot fail here
		// unless the two lists drift apart, which the app test catches.
		if err := q.Set(name, v); err != nil {
			a.log.Warn("ignoring quota", "quota", name, "err", err)
		}
	}
	return q
}

func (a *App) rateLimits() map[string]float64 {
	limits := ivs.DefaultRateLimits()
	for name, v := range a.cfg.RateLimits {
		limits[name] = v
	}
	return limits
}

// handler is the one HTTP handler of the node (HTTP and HTTPS).
func (a *App) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /v1/events/dead-letters", a.deadLetters)
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.Handle("GET /v1/sessions/{streamId}/metrics", a.metrics.History())
	mux.Handle(playback.Prefix, a.playback)
	// The IVS Chat Messaging WebSocket: the URL apps pass to the chat
	// SDK as regionOrUrl is ws(s)://<host>:<http-port>/chat.
	mux.HandleFunc("GET /chat", a.serveChat)
	// Chat tokens for the demo panel of /play/<channelId>?room=<arn>, for
	// rooms tagged openivs:chat-demo=true only.
	mux.HandleFunc("POST /chat-demo/token", a.serveChatDemoToken)
	player := webui.Handler(func(channelID string) string {
		u, _ := a.ivs.ChannelPlaybackURL(context.Background(), a.cfg.AccountID, channelID)
		return u
	})
	mux.Handle("/player/", player)
	mux.Handle("/play/", player)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && a.api.IsAPIRequest(r) {
			a.api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !a.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable"}`))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// Ready reports whether every listener is up and serving (what /healthz says).
func (a *App) Ready() bool { return a.ready.Load() }

// Ports returns the bound port of each listener by name: http, rtmp, rtmps,
// srt, and https when enabled. Nil before Start.
func (a *App) Ports() map[string]int {
	if a.ports == nil {
		return nil
	}
	out := make(map[string]int, len(a.ports))
	for k, v := range a.ports {
		out[k] = v
	}
	return out
}

// Credentials returns the root credentials and where they came from.
func (a *App) Credentials() RootCredentials { return a.creds }

// Certificate is the TLS certificate served on RTMPS and HTTPS.
func (a *App) Certificate() tls.Certificate { return a.cert }

// Store is the node's state store.
func (a *App) Store() store.Store { return a.store }

// APIEndpoint is the URL API clients use (--endpoint-url).
func (a *App) APIEndpoint() string {
	return "http://" + net.JoinHostPort(a.cfg.PublicHost, strconv.Itoa(a.ports["http"]))
}

// PlaybackBaseURL is scheme://host:port that viewers reach playback on:
// HTTPS when it is enabled, else HTTP.
func (a *App) PlaybackBaseURL() string {
	if port, ok := a.ports["https"]; ok {
		return "https://" + net.JoinHostPort(a.cfg.PublicHost, strconv.Itoa(port))
	}
	return "http://" + net.JoinHostPort(a.cfg.PublicHost, strconv.Itoa(a.ports["http"]))
}

// ChatURL is the IVS Chat messaging WebSocket, the URL apps pass to the
// chat SDK as regionOrUrl: wss:// when HTTPS is enabled, else ws://.
func (a *App) ChatURL() string {
	base := a.PlaybackBaseURL()
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + rest + "/chat"
	}
	return "ws://" + strings.TrimPrefix(base, "http://") + "/chat"
}

// RTMPListener is the bound plain RTMP socket, for the ingest server.
func (a *App) RTMPListener() net.Listener { return a.rtmpLn }

// RTMPSListener is the bound RTMPS socket with TLS (≥ 1.2) already applied.
func (a *App) RTMPSListener() net.Listener { return a.rtmpsLn }

// Shutdown stops serving: /healthz turns 503, HTTP servers drain until ctx
// ends, listeners and the store are closed. It is safe to call more than
// once and without Start.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		a.ready.Store(false)
		var errs []error
		// Chat WebSockets first: http.Server.Shutdown does not wait for
		// hijacked connections, and their clients are owed a close frame.
		if err := a.chat.closeSockets(ctx); err != nil {
			a.log.Warn("chat: closing connections", "err", err)
		}
		for _, srv := range []*http.Server{a.httpSrv, a.httpsSrv} {
			if srv == nil {
				continue
			}
			// API calls finish in milliseconds; what is still open after a short
			// grace is a connection with no request on it (net/http waits 5 s for
			// those) or a long poll, both safe to cut.
			drainCtx, cancel := context.WithTimeout(ctx, drainGrace)
			err := srv.Shutdown(drainCtx)
			cancel()
			if err != nil {
				_ = srv.Close()
				if ctx.Err() != nil {
					errs = append(errs, err)
				}
			}
		}
		if a.stop != nil {
			a.stop()
		}
		a.closeListeners()
		a.bg.Wait()
		if a.live != nil {
			a.live.Close() // ends live streams while the store is still open
		}
		if a.ivs != nil {
			a.ivs.Close() // waits for bucket checks while the store is open
		}
		a.stopOutbox(outboxGrace)
		if err := a.chat.closeSinks(ctx); err != nil {
			errs = append(errs, fmt.Errorf("chat logging: %w", err))
		}
		if a.geoip != nil {
			_ = a.geoip.Close()
		}
		// After the HTTP servers: no API call is left to record.
		if err := a.closeAudit(ctx); err != nil {
			errs = append(errs, err)
		}
		if a.ports != nil {
			_ = os.Remove(filepath.Join(a.cfg.DataDir, portsFile))
		}
		if a.store != nil {
			if err := a.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing store: %w", err))
			}
		}
		a.shutdownErr = errors.Join(errs...)
	})
	return a.shutdownErr
}

// outboxGrace bounds how long Shutdown waits for the last events to go out.
const outboxGrace = 2 * time.Second

// drainGrace bounds how long Shutdown waits for HTTP connections to finish.
const drainGrace = time.Second

// portsFile is where the bound ports are published for scripts and tests.
const portsFile = "ports.json"

func (a *App) writePorts() error {
	raw, err := json.Marshal(a.ports)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, portsFile), append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing ports.json: %w", err)
	}
	return nil
}

// transcodeCapacity is the configured bound on concurrent transcodes, or
// the node's measured default.
func transcodeCapacity(configured int) int {
	if configured > 0 {
		return configured
	}
	return transcode.DefaultCapacity(runtime.NumCPU())
}
