package messaging

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
)

// Close codes. The SDK treats any clean close (a close frame both ways) as
// the server's orderly disconnect: it does not reconnect and reports
// disconnect reason "serverDisconnect".
const (
	closeDisconnected = websocket.StatusNormalClosure // DISCONNECT_USER
	closeExpired      = websocket.StatusNormalClosure // after the 401 ERROR
	closeFlood        = websocket.StatusPolicyViolation
)

// conn is one client connection. The handler goroutine reads (readLoop);
// one writer goroutine (writeLoop) owns every write and the close, fed by a
// bounded queue so that fan-out never waits for a client.
type conn struct {
	s     *Server
	ws    *websocket.Conn
	grant *chat.Grant
	room  *room

	// out holds encoded entities; a nil entry asks the writer to close
	// with closeCode after what precedes it.
	out chan []byte
	// ctx ends when the connection is kicked or cut off, or its reader
	// is done.
	ctx    context.Context
	cancel context.CancelFunc

	closeMu     sync.Mutex
	closeCode   websocket.StatusCode
	closeReason string

	// Reader goroutine only.
	limit bucket // ConnRequestsPerSecond
	flood bucket // the requests refused by limit that are tolerated
}

func newConn(s *Server, ws *websocket.Conn, grant *chat.Grant, now time.Time) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	rate := s.cfg.ConnRequestsPerSecond
	return &conn{
		s:      s,
		ws:     ws,
		grant:  grant,
		out:    make(chan []byte, s.cfg.SendQueue),
		ctx:    ctx,
		cancel: cancel,
		limit:  newBucket(rate, rate, now),
		flood:  newBucket(rate, 2*rate, now),
	}
}

// send queues an entity without blocking. A client too slow to take it is
// cut off rather than allowed to hold up the room: without a close frame,
// which the SDK takes for a broken connection and reconnects.
func (c *conn) send(frame []byte) {
	select {
	case c.out <- frame:
	default:
		c.cancel()
	}
}

// sendThenClose queues frame and then the close, so that the client gets
// the frame (say, the aws:DISCONNECT_USER event about itself) first.
func (c *conn) sendThenClose(frame []byte, code websocket.StatusCode, reason string) {
	c.setClose(code, reason)
	c.send(frame)
	c.send(nil)
}

// closeAfterQueue closes the connection once what is queued is written,
// so that a misbehaving client still gets the answers it had coming.
func (c *conn) closeAfterQueue(code websocket.StatusCode, reason string) {
	c.setClose(code, reason)
	c.send(nil)
}

// kick closes the connection with code as soon as the writer gets to it,
// dropping whatever is still queued.
func (c *conn) kick(code websocket.StatusCode, reason string) {
	c.setClose(code, reason)
	c.cancel()
}

// setClose records the first close code asked for.
func (c *conn) setClose(code websocket.StatusCode, reason string) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = code, reason
	}
}

func (c *conn) closeStatus() (websocket.StatusCode, string) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeCode, c.closeReason
}

// sendError answers a request of this connection with an ERROR entity.
func (c *conn) sendError(requestID string, code int, msg string) {
	c.send(mustJSON(Error{Type: TypeError, ID: newID(), RequestID: requestID, ErrorCode: code, ErrorMessage: msg}))
}

// readLoop reads requests until the connection ends (false) or
// misbehaves (true, the close is queued): a binary or non-JSON frame, or a
// flood past the per-connection limit, disconnects this client and no
// other.
func (c *conn) readLoop() (closing bool) {
	for {
		// Not c.ctx: a cancelled read closes the socket at once, and a
		// kicked client is owed a close frame, which the writer sends.
		typ, frame, err := c.ws.Read(context.Background())
		if err != nil {
			return false
		}
		if typ != websocket.MessageText {
			c.closeAfterQueue(websocket.StatusUnsupportedData, "requests are JSON text frames")
			return true
		}
		req, err := ParseRequest(frame)
		if errors.Is(err, errNotJSON) {
			c.closeAfterQueue(websocket.StatusInvalidFramePayloadData, "request is not a JSON object")
			return true
		}
		now := c.s.cfg.Now()
		if !c.limit.allow(now) {
			if !c.flood.allow(now) {
				c.closeAfterQueue(closeFlood, "request rate exceeded")
				return true
			}
			c.sendError(req.RequestID, CodeTooManyRequests, "Connection request rate exceeded")
			continue
		}
		var reqErr *requestError
		if errors.As(err, &reqErr) {
			c.sendError(req.RequestID, reqErr.Code, reqErr.Message)
			continue
		}
		c.s.handle(c, req, now)
	}
}

// writeLoop is the only writer: queued entities, pings, the session's
// expiry (a 401 ERROR, on which the SDK fetches a new token and
// reconnects, then a normal close) and every close.
func (c *conn) writeLoop() {
	var expired <-chan time.Time
	if exp := c.grant.SessionExpires; !exp.IsZero() {
		t := time.NewTimer(exp.Sub(c.s.cfg.Now()))
		defer t.Stop()
		expired = t.C
	}
	var ping <-chan time.Time
	if c.s.cfg.PingInterval > 0 {
		t := time.NewTicker(c.s.cfg.PingInterval)
		defer t.Stop()
		ping = t.C
	}
	for {
		select {
		case frame := <-c.out:
			if frame == nil {
				code, reason := c.closeStatus()
				_ = c.ws.Close(code, reason)
				return
			}
			if !c.write(frame) {
				return
			}
		case <-expired:
			c.write(mustJSON(Error{Type: TypeError, ID: newID(), ErrorCode: CodeUnauthorized, ErrorMessage: "Unauthorized: session expired"}))
			_ = c.ws.Close(closeExpired, "session expired")
			return
		case <-ping:
			ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				_ = c.ws.CloseNow()
				return
			}
		case <-c.ctx.Done():
			if code, reason := c.closeStatus(); code != 0 {
				_ = c.ws.Close(code, reason)
			} else {
				// The client left, or is too slow to be owed a goodbye.
				_ = c.ws.CloseNow()
			}
			return
		}
	}
}

// write sends one frame; a kick or WriteTimeout aborts it and with it the
// socket.
func (c *conn) write(frame []byte) bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		_ = c.ws.CloseNow()
		return false
	}
	return true
}
