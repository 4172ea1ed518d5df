// Package srt is the SRT ingest front-end: it owns the SRT listener, decides
// each caller's handshake (streamid, passphrase, admission), demuxes the
// MPEG-TS the encoder sends into media frames and publishes them through an
// ingest.Publisher. SRT transport is datarhei/gosrt; MPEG-TS, H.264 and AAC
// parsing is bluenviron/mediacommon.
package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
)

// Defaults.
const (
	defaultReadTimeout = 30 * time.Second
	// decisionTimeout bounds the passphrase lookup and admission done while
	// the caller waits in its handshake; libsrt callers give up after 3 s
	// by default, so answering later than this helps nobody.
	decisionTimeout = 5 * time.Second
)

// Config wires a Server.
type Config struct {
	Publisher ingest.Publisher
	Logger    *slog.Logger
	// ReadTimeout is how long a publishing connection may go without
	// delivering a media frame before it is closed (default 30 s). It also
	// bounds the wait for the first keyframe.
	ReadTimeout time.Duration
	// OnListen, if set, is called once the SRT socket is bound, with its
	// address; it is how a caller of ServeAddr(":0") learns the port.
	OnListen func(addr net.Addr)
}

// Server is the SRT ingest front-end. It holds only configuration, so one
// Server may serve several addresses.
type Server struct {
	cfg Config
	log *slog.Logger
}

// NewServer returns a Server; nothing is bound until ServeAddr.
func NewServer(cfg Config) *Server {
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = defaultReadTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "ingest/srt")}
}

// ServeAddr binds the SRT listener to addr (host:port, ":0" for any port; see
// Config.OnListen) and serves until ctx ends. It returns nil after a
// shutdown through ctx, once every connection has been closed and reported.
func (s *Server) ServeAddr(ctx context.Context, addr string) error {
	ln, err := gosrt.Listen("srt", addr, s.srtConfig())
	if err != nil {
		return fmt.Errorf("srt: listen %s: %w", addr, err)
	}
	s.log.Info("SRT ingest listening", "addr", ln.Addr().String())
	if s.cfg.OnListen != nil {
		s.cfg.OnListen(ln.Addr())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		<-ctx.Done()
		// Closing the listener also closes every connection it accepted,
		// which ends their read loops.
		ln.Close()
	})
	defer wg.Wait()

	for {
		req, err := ln.Accept2()
		if err != nil {
			shutdown := ctx.Err() != nil
			cancel() // closes the listener and ends every connection
			if shutdown {
				return nil
			}
			return fmt.Errorf("srt: accept: %w", err)
		}
		// Each request is decided on its own goroutine: the decision waits on
		// the Publisher, and one slow lookup must not stall other handshakes.
		wg.Go(func() { s.handle(ctx, req) })
	}
}

// srtConfig is the listener configuration. Passphrases are per connection
// (set on each request), so the listener itself has none.
func (s *Server) srtConfig() gosrt.Config {
	return gosrt.DefaultConfig()
}

// handle decides one connection request and, once accepted, runs the
// publication until the connection ends.
func (s *Server) handle(ctx context.Context, req gosrt.ConnRequest) {
	remote := req.RemoteAddr().String()
	log := s.log.With("remote", remote)

	adm, reason, err := s.decide(ctx, req, remote)
	if err != nil {
		log.Info("SRT connection refused", "streamid", redactStreamID(req.StreamId()), "reason", err, "rejection", uint32(reason))
		req.Reject(reason)
		return
	}
	conn, err := req.Accept()
	if err != nil {
		log.Info("SRT handshake failed after admission", "err", err)
		adm.Abort(fmt.Errorf("srt: handshake failed: %w", err))
		return
	}
	log.Info("SRT publisher connected")
	s.publish(ctx, conn, adm, log)
}

// decide runs the handshake checks in the order that leaks least: the
// streamid must parse, the key must exist, the encryption must match the
// channel exactly, and only then is the live side asked to admit.
func (s *Server) decide(ctx context.Context, req gosrt.ConnRequest, remote string) (ingest.Admission, gosrt.RejectionReason, error) {
	if req.Version() != 5 {
		// HSv4 carries no streamid, so there is nothing to authorise.
		return nil, gosrt.REJ_VERSION, errors.New("srt: handshake v4 has no streamid")
	}
	id, err := parseStreamID(req.StreamId())
	if err != nil {
		if errors.Is(err, errBadMode) {
			return nil, gosrt.REJX_BAD_MODE, err
		}
		return nil, gosrt.REJX_BAD_REQUEST, err
	}

	ctx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()

	pass, err := s.cfg.Publisher.SRTPassphrase(ctx, id.Key)
	if err != nil {
		if errors.Is(err, ingest.ErrUnknownKey) {
			return nil, gosrt.REJX_FORBIDDEN, err
		}
		return nil, gosrt.REJX_ISE, err
	}
	if pass == "" {
		// Insecure-ingest channel. IVS says not to use a passphrase there, and
		// an encrypted caller would be securing nothing openivs can check, so
		// it is refused rather than quietly accepted with some key.
		if req.IsEncrypted() {
			return nil, gosrt.REJ_UNSECURE, errors.New("srt: encryption offered on a channel with insecure ingest; connect without a passphrase")
		}
	} else {
		if !req.IsEncrypted() {
			return nil, gosrt.REJ_UNSECURE, errors.New("srt: this channel requires an SRT passphrase")
		}
		// SetPassphrase unwraps the caller's key material with the channel's
		// passphrase; a different passphrase fails the AES key unwrap.
		if err := req.SetPassphrase(pass); err != nil {
			return nil, gosrt.REJ_BADSECRET, fmt.Errorf("srt: wrong passphrase: %w", err)
		}
	}

	adm, err := s.cfg.Publisher.Authorize(ctx, ingest.Request{
		Protocol:    ingest.SRT,
		StreamKey:   id.Key,
		Priority:    id.Priority,
		HasPriority: id.HasPriority,
		RemoteAddr:  remote,
	})
	if err != nil {
		return nil, rejectionFor(err), err
	}
	return adm, 0, nil
}

// rejectionFor picks the SRT access-control rejection code closest to why
// the live side refused, so encoder logs say something useful.
func rejectionFor(err error) gosrt.RejectionReason {
	switch {
	case errors.Is(err, ingest.ErrChannelBusy):
		return gosrt.REJX_CONFLICT
	case errors.Is(err, ingest.ErrQuota):
		return gosrt.REJX_OVERLOAD
	case errors.Is(err, ingest.ErrInsecureRefused):
		return gosrt.REJ_UNSECURE
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return gosrt.REJX_ISE
	}
	return gosrt.REJX_FORBIDDEN
}

// Reasons a publication ends, as reported to Stream.Close / Admission.Abort.
var (
	errReadTimeout = errors.New("srt: no media received within the read timeout")
	errShutdown    = errors.New("srt: ingest server shutting down")
)

// publish demuxes one accepted connection into the admitted stream and tears
// both down together: whichever ends first (peer, live side, timeout,
// malformed input, shutdown) closes the connection and reports the reason.
func (s *Server) publish(ctx context.Context, conn gosrt.Conn, adm ingest.Admission, log *slog.Logger) {
	p := &publication{
		conn:    conn,
		adm:     adm,
		log:     log,
		stopped: make(chan struct{}),
		started: make(chan ingest.Stream, 1),
	}
	// The watchdog runs until a frame resets it; frames reset it.
	p.watchdog = time.AfterFunc(s.cfg.ReadTimeout, func() { p.stop(errReadTimeout) })
	p.timeout = s.cfg.ReadTimeout

	var wg sync.WaitGroup
	wg.Go(func() {
		var done <-chan struct{}
		for {
			select {
			case st := <-p.started:
				done = st.Done()
			case <-done:
				p.stop(nil) // the live side ended it; it knows why
				return
			case <-ctx.Done():
				p.stop(errShutdown)
				return
			case <-p.stopped:
				return
			}
		}
	})

	err := demuxSafely(conn, p, time.Now)
	if ctx.Err() != nil && (err == nil || errors.Is(err, io.EOF)) {
		// Shutdown closes the listener and with it this connection, which
		// can read as a clean end before the watcher above sees ctx.
		err = errShutdown
	}
	p.watchdog.Stop()
	p.stop(err) // no-op if something else stopped it first
	wg.Wait()

	reason := p.reason
	if p.stream == nil {
		if reason == nil {
			reason = errors.New("srt: connection ended before media started")
		}
		p.adm.Abort(reason)
		log.Info("SRT publisher left before media started", "reason", reason)
		return
	}
	p.stream.Close(reason)
	if reason != nil {
		log.Info("SRT publisher disconnected", "reason", reason)
	} else {
		log.Info("SRT publisher disconnected")
	}
}

// publication is one publishing connection; it is the frameSink demux feeds.
type publication struct {
	conn     gosrt.Conn
	adm      ingest.Admission
	log      *slog.Logger
	stream   ingest.Stream // set by start, on the demux goroutine
	started  chan ingest.Stream
	watchdog *time.Timer
	timeout  time.Duration

	stopOnce sync.Once
	stopped  chan struct{}
	reason   error // why it ended; written once in stop, read after
}

// stop records the first reason the publication ends and closes the
// connection, which unblocks the demux read loop.
func (p *publication) stop(reason error) {
	p.stopOnce.Do(func() {
		// A peer that went away reads as io.EOF: a clean end.
		if errors.Is(reason, io.EOF) && !errors.Is(reason, errNotTS) {
			reason = nil
		}
		p.reason = reason
		close(p.stopped)
		p.conn.Close()
	})
}

func (p *publication) start(tracks []media.Track) error {
	st, err := p.adm.Start(tracks, "")
	if err != nil {
		return fmt.Errorf("srt: stream refused: %w", err)
	}
	p.stream = st
	p.started <- st
	p.log.Info("SRT stream started", "tracks", describeTracks(tracks))
	return nil
}

func (p *publication) frame(f *media.Frame) error {
	p.watchdog.Reset(p.timeout)
	if err := p.stream.WriteFrame(f); err != nil {
		return fmt.Errorf("srt: stream ended by the live side: %w", err)
	}
	return nil
}

// demuxSafely is demux with a last line of defence: a panic inside the
// third-party parsers on hostile input ends this connection, not the server.
func demuxSafely(r io.Reader, sink frameSink, now func() time.Time) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: demuxer panic: %v", errNotTS, v)
		}
	}()
	return demux(r, sink, now)
}

func describeTracks(tracks []media.Track) []string {
	out := make([]string, len(tracks))
	for i, t := range tracks {
		switch t.Kind {
		case media.Video:
			out[i] = fmt.Sprintf("%s %dx%d %s", t.Codec, t.Width, t.Height, t.CodecString)
		case media.Audio:
			out[i] = fmt.Sprintf("%s %d Hz %d ch %s", t.Codec, t.SampleRate, t.Channels, t.CodecString)
		default:
			out[i] = t.Codec
		}
	}
	return out
}

// redactStreamID keeps stream keys out of logs: they are publish secrets.
func redactStreamID(s string) string {
	if len(s) <= 6 {
		return "***"
	}
	return s[:6] + "***"
}
