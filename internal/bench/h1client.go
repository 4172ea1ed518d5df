package bench

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// h1Client is a bare HTTP/1.1 keep-alive client for cleartext playback
// URLs: it writes the request line itself and reads responses with
// net/http's own parser (http.ReadResponse: status, headers,
// Content-Length and chunked bodies), but skips http.Transport. Why: the
// Transport hands every request and response between goroutines
// (writeLoop, readLoop, the caller) and watches contexts, which made the
// simulated viewers cost 1.2–1.4× the server's CPU per request; with both
// on one 2-core machine the load generator, not the server, was the limit.
// Load generators (wrk, h2load) use lean clients for the same reason.
// What the server sees is unchanged: HTTP/1.1 keep-alive connections, at
// most as many per viewer as it has requests in flight (two).
type h1Client struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle map[string][]*h1Conn // by host:port
}

type h1Conn struct {
	host string
	nc   net.Conn
	br   *bufio.Reader
	req  []byte // request buffer, reused
}

// h1Response is a response whose body must be read to the end (or
// abandoned with close) before the next request on its connection.
type h1Response struct {
	*http.Response
	c    *h1Client
	conn *h1Conn
	stop func() bool // detaches the context watcher
}

// do sends GET u (with a Range header when rng is set) and returns once
// the response headers are read. The whole exchange, body included, must
// end within timeout; ctx ending aborts it.
func (c *h1Client) do(ctx context.Context, u *url.URL, rng string, timeout time.Duration) (*h1Response, error) {
	conn, reused, err := c.conn(ctx, u)
	if err != nil {
		return nil, err
	}
	resp, err := c.exchange(ctx, conn, u, rng, timeout)
	if err != nil && reused && ctx.Err() == nil {
		// The server may have closed a kept-alive connection just as we
		// reused it; a GET is safe to send again on a fresh one, as
		// http.Transport does.
		if conn, _, err = c.dialConn(ctx, u); err != nil {
			return nil, err
		}
		resp, err = c.exchange(ctx, conn, u, rng, timeout)
	}
	return resp, err
}

func (c *h1Client) exchange(ctx context.Context, conn *h1Conn, u *url.URL, rng string, timeout time.Duration) (*h1Response, error) {
	_ = conn.nc.SetDeadline(time.Now().Add(timeout))
	// Shutting down: unblock the read at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.nc.SetDeadline(time.Unix(1, 0)) })

	b := append(conn.req[:0], "GET "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUser-Agent: openivs-bench-viewers\r\n"...)
	if rng != "" {
		b = append(b, "Range: "...)
		b = append(b, rng...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	conn.req = b
	if _, err := conn.nc.Write(b); err != nil {
		stop()
		conn.nc.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(conn.br, nil)
	if err != nil {
		stop()
		conn.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return &h1Response{Response: resp, c: c, conn: conn, stop: stop}, nil
}

// finish ends the exchange: a connection whose body was read to the end
// and that the server keeps open goes back to the pool; any other is
// closed.
func (r *h1Response) finish(bodyDone bool) {
	r.stop()
	if !bodyDone || r.Close {
		// Close the socket first: closing a body from http.ReadResponse
		// drains what is left of it, which would wait out the deadline.
		r.conn.nc.Close()
		r.Body.Close()
		return
	}
	r.Body.Close()
	r.c.mu.Lock()
	if r.c.idle == nil {
		r.c.idle = map[string][]*h1Conn{}
	}
	r.c.idle[r.conn.host] = append(r.c.idle[r.conn.host], r.conn)
	r.c.mu.Unlock()
}

// conn returns an idle connection (reused) or dials a new one.
func (c *h1Client) conn(ctx context.Context, u *url.URL) (conn *h1Conn, reused bool, err error) {
	c.mu.Lock()
	if idle := c.idle[u.Host]; len(idle) > 0 {
		conn := idle[len(idle)-1]
		c.idle[u.Host] = idle[:len(idle)-1]
		c.mu.Unlock()
		return conn, true, nil
	}
	c.mu.Unlock()
	return c.dialConn(ctx, u)
}

func (c *h1Client) dialConn(ctx context.Context, u *url.URL) (*h1Conn, bool, error) {
	if u.Scheme != "http" {
		return nil, false, errors.New("bench: the lean client speaks cleartext HTTP/1.1 only")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	nc, err := c.dial(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{host: u.Host, nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}, false, nil
}

// close closes the idle connections.
func (c *h1Client) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conns := range c.idle {
		for _, conn := range conns {
			conn.nc.Close()
		}
	}
	c.idle = nil
}
