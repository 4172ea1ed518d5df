// Package rtmp is the RTMP and RTMPS ingest front-end: it accepts encoder
// connections, checks the RTMP app and stream name (§7.3: app "app", stream
// name = stream key, optionally "?priority=N" for takeover, §7.9), asks the
// ingest.Publisher to authorise the key before the publish is accepted, turns
// the FLV/Enhanced-RTMP tracks into media.Tracks and hands every access unit
// to the live side as a media.Frame stamped with its arrival time.
//
// The RTMP protocol itself (handshake, chunking, AMF0, FLV tags, Enhanced
// RTMP) is gortmplib's; this package owns the policy around it and the
// conversion into the media model.
package rtmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/ingest"
)

// Defaults for Config's zero values.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultReadTimeout      = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	// Publisher authorises stream keys and receives the media.
	Publisher ingest.Publisher
	// Logger receives connection logs; stream keys never appear in them.
	Logger *slog.Logger
	// HandshakeTimeout bounds connect→publish (default 10 s): a peer that
	// opens a socket and idles must not hold a goroutine for long.
	// ReadTimeout bounds silence on a publishing connection (default 30 s;
	// the live side enforces its own, stricter starvation rules). It also
	// bounds how long track discovery may take after the publish.
	HandshakeTimeout, ReadTimeout time.Duration
}

// Server accepts RTMP(S) publishers. One Server may Serve several listeners
// (typically one RTMP and one RTMPS) at once.
type Server struct {
	cfg Config
	log *slog.Logger
}

// NewServer returns a Server; zero durations take their defaults.
func NewServer(cfg Config) *Server {
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log.With("component", "ingest/rtmp")}
}

// Serve accepts on ln until ctx ends or ln closes; protocol is ingest.RTMP or
// ingest.RTMPS (for RTMPS the caller passes a listener that is already
// TLS-wrapped, TLS ≥ 1.2). Whatever stops Serve also ends the connections it
// accepted: Serve returns only after every connection goroutine has finished
// and every started stream has been closed, so a caller can shut down without
// leaking publishers. It returns nil on such a shutdown and the accept error
// otherwise.
func (s *Server) Serve(ctx context.Context, ln net.Listener, protocol string) error {
	if protocol != ingest.RTMP && protocol != ingest.RTMPS {
		return fmt.Errorf("rtmp: unsupported protocol %q", protocol)
	}
	if s.cfg.Publisher == nil {
		return errors.New("rtmp: Config.Publisher is nil")
	}

	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(errServerStopped)
	// Closing the listener is the only way to interrupt Accept.
	stopClose := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopClose()

	var wg sync.WaitGroup
	defer wg.Wait()
	// cancel runs before wg.Wait (defers are LIFO), ending live connections.
	defer cancel(errServerStopped)

	s.log.Info("rtmp ingest listening", "protocol", protocol, "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Like net/http: ride out transient errors such as EMFILE.
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("rtmp accept failed; retrying", "protocol", protocol, "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("rtmp: accept: %w", err)
		}
		backoff = 0
		wg.Go(func() { s.serveConn(connCtx, nc, protocol) })
	}
}
