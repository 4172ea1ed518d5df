package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/ingest/srt"
	"github.com/openivs/openivs/internal/live"
)

// bind opens every listener of the node and records its port. On error the
// ones already bound are closed by Start. The SRT server starts here, on
// the real address, because gosrt binds its own socket: reserving the port
// with a placeholder and re-binding would race other processes (and, in
// tests, other servers) for an ephemeral port.
func (a *App) bind(ctx context.Context) error {
	a.ports = map[string]int{}
	var err error
	if a.httpLn, err = listenTCP("http", a.cfg.HTTPAddr); err != nil {
		return err
	}
	a.ports["http"] = tcpPort(a.httpLn)
	if a.cfg.HTTPSAddr != "" {
		// Raw TCP: http.Server.ServeTLS adds TLS and HTTP/2.
		if a.httpsLn, err = listenTCP("https", a.cfg.HTTPSAddr); err != nil {
			return err
		}
		a.ports["https"] = tcpPort(a.httpsLn)
	}
	if a.rtmpLn, err = listenTCP("rtmp", a.cfg.RTMPAddr); err != nil {
		return err
	}
	a.ports["rtmp"] = tcpPort(a.rtmpLn)
	rawRTMPS, err := listenTCP("rtmps", a.cfg.RTMPSAddr)
	if err != nil {
		return err
	}
	a.ports["rtmps"] = tcpPort(rawRTMPS)
	a.rtmpsLn = tls.NewListener(rawRTMPS, &tls.Config{
		Certificates: []tls.Certificate{a.cert},
		MinVersion:   tls.VersionTLS12,
	})
	listening := make(chan net.Addr, 1)
	srtSrv := srt.NewServer(srt.Config{Publisher: &a.publisher, Logger: a.log,
		OnListen: func(addr net.Addr) { listening <- addr }})
	served := make(chan error, 1)
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		err := srtSrv.ServeAddr(ctx, a.cfg.SRTAddr)
		served <- err
		a.logServeErr("srt", err)
	}()
	select {
	case addr := <-listening:
		a.ports["srt"] = addr.(*net.UDPAddr).Port
		return nil
	case err := <-served:
		return fmt.Errorf("srt listener on %s: %w", a.cfg.SRTAddr, err)
	}
}

// lazyPublisher lets ingest servers start (and so learn their ports) before
// the live manager, which needs those ports, exists; encoders arriving in
// between are refused as if the server were not up yet.
type lazyPublisher struct{ m atomic.Pointer[live.Manager] }

var errStarting = errors.New("ingest: server is starting")

func (l *lazyPublisher) Authorize(ctx context.Context, req ingest.Request) (ingest.Admission, error) {
	if m := l.m.Load(); m != nil {
		return m.Authorize(ctx, req)
	}
	return nil, errStarting
}

func (l *lazyPublisher) SRTPassphrase(ctx context.Context, key string) (string, error) {
	if m := l.m.Load(); m != nil {
		return m.SRTPassphrase(ctx, key)
	}
	return "", errStarting
}

func listenTCP(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
	}
	return ln, nil
}

func tcpPort(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// closeListeners closes every bound socket; http.Server.Shutdown has
// already closed the HTTP ones, closing them again is harmless.
func (a *App) closeListeners() {
	for _, ln := range []net.Listener{a.httpLn, a.httpsLn, a.rtmpLn, a.rtmpsLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}
