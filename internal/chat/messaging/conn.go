package messaging

import (
	"context"
	"errors"
	"net"
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

// connState is where a connection is on its way out.
type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // a close is queued behind the frames before it
	stateKicked            // close with closeCode now, dropping the queue
	stateCut               // drop the socket without a close frame
	stateClosed            // the socket is closed or being closed
)

// conn is one client connection. One goroutine reads (readLoop). Writes
// go through a bounded queue, so that fan-out never waits for a client,
// and a writer goroutine runs only while that queue has something in it:
// the thousands of idle connections of a big room hold one goroutine each,
// not two. Pings come from the server's sweep (pingLoop) and the session's
// expiry from a timer, so an idle connection has no ticker either.
type conn struct {
	s     *Server
	ws    *websocket.Conn
	nc    net.Conn // the socket under ws: write deadlines (may be nil)
	grant *chat.Grant
	room  *room
	ip    string // the client's address (Sender.Ip for review handlers)

	// ctx ends when the connection is kicked or cut off, or its reader
	// is done: requests in flight stop waiting on the control plane.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// queue holds encoded entities; a nil entry asks the writer to close
	// with closeCode after what precedes it. It lives in inline while it
	// holds at most two (what a room at ordinary rates needs), so that a
	// fan-out allocates nothing per connection.
	queue  [][]byte
	inline [2][]byte
	state  connState
	// held: the upgrade is not answered yet (no socket): frames queue
	// and nothing is written until attach.
	held        bool
	writing     bool // a writer goroutine runs; once attached the queue is never non-empty without one
	inWrite     bool // the writer is inside a data frame's write
	pinging     bool
	nextPing    time.Time
	closeCode   websocket.StatusCode
	closeReason string
	expiry      *time.Timer
	writer      sync.WaitGroup

	// Reader goroutine only.
	limit bucket // ConnRequestsPerSecond
	flood bucket // the requests refused by limit that are tolerated
}

// newConn is a connection whose upgrade is under way: attach gives it
// its socket.
func newConn(s *Server, grant *chat.Grant, now time.Time) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	rate := s.cfg.ConnRequestsPerSecond
	c := &conn{
		s:      s,
		held:   true,
		grant:  grant,
		ctx:    ctx,
		cancel: cancel,
		limit:  newBucket(rate, rate, now),
		flood:  newBucket(rate, 2*rate, now),
	}
	c.queue = c.inline[:0]
	if s.cfg.PingInterval > 0 {
		// Wall-clock time, as the sweep's ticker: cfg.Now may be a
		// test's frozen clock.
		c.nextPing = time.Now().Add(s.pingDelay())
	}
	if exp := grant.SessionExpires; !exp.IsZero() {
		// The 401 ERROR the SDK fetches a new token and reconnects on,
		// then a normal close.
		c.expiry = time.AfterFunc(exp.Sub(now), c.expire)
	}
	return c
}

// attach gives the connection its upgraded socket (nc, the one under ws,
// may be nil) and writes what queued meanwhile.
func (c *conn) attach(ws *websocket.Conn, nc net.Conn) {
	c.mu.Lock()
	c.ws, c.nc, c.held = ws, nc, false
	if len(c.queue) > 0 || c.state == stateKicked || c.state == stateCut {
		c.startWriterLocked()
	}
	c.mu.Unlock()
}

// abandon undoes a connection whose upgrade failed.
func (c *conn) abandon() {
	c.s.leave(c)
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.cancel()
}

// serve reads until the connection ends, then waits for its writer.
func (c *conn) serve() {
	closing := c.readLoop()
	c.s.leave(c)
	c.readerDone(closing)
	c.writer.Wait()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.cancel()
}

// send queues an entity without blocking. A client too slow to take it is
// cut off rather than allowed to hold up the room: without a close frame,
// which the SDK takes for a broken connection and reconnects.
func (c *conn) send(frame []byte) {
	c.mu.Lock()
	c.enqueueLocked(frame, false)
	c.mu.Unlock()
}

// sendThenClose queues frame and then the close, so that the client gets
// the frame (say, the aws:DISCONNECT_USER event about itself) first.
func (c *conn) sendThenClose(frame []byte, code websocket.StatusCode, reason string) {
	c.mu.Lock()
	c.setCloseLocked(code, reason)
	c.enqueueLocked(frame, false)
	c.enqueueLocked(nil, true)
	c.mu.Unlock()
}

// closeAfterQueue closes the connection once what is queued is written,
// so that a misbehaving client still gets the answers it had coming.
func (c *conn) closeAfterQueue(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	c.setCloseLocked(code, reason)
	c.enqueueLocked(nil, true)
	c.mu.Unlock()
}

// kick closes the connection with code as soon as the writer gets to it,
// dropping whatever is still queued; a write stuck on the client is
// abandoned, and with it the close frame.
func (c *conn) kick(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	c.setCloseLocked(code, reason)
	if c.state == stateOpen || c.state == stateClosing {
		c.state = stateKicked
		c.abortWriteLocked()
		c.startWriterLocked()
	}
	c.mu.Unlock()
	c.cancel()
}

// expire ends the session: the 401 ERROR after what is queued, then the
// close. It bypasses the queue limit: these two are owed.
func (c *conn) expire() {
	frame := mustJSON(Error{Type: TypeError, ID: newID(), ErrorCode: CodeUnauthorized, ErrorMessage: "Unauthorized: session expired"})
	c.mu.Lock()
	c.setCloseLocked(closeExpired, "session expired")
	c.enqueueLocked(frame, true)
	c.enqueueLocked(nil, true)
	c.mu.Unlock()
}

// enqueueLocked queues frame (nil: the close) while the connection is
// open; past SendQueue it cuts the connection off unless force.
func (c *conn) enqueueLocked(frame []byte, force bool) {
	if c.state != stateOpen {
		return // closing: nothing after the close is written
	}
	if !force && len(c.queue) >= c.s.cfg.SendQueue {
		c.state = stateCut
		c.abortWriteLocked()
		c.startWriterLocked()
		c.cancel()
		return
	}
	if frame == nil {
		c.state = stateClosing
	}
	c.queue = append(c.queue, frame)
	c.startWriterLocked()
}

// startWriterLocked starts the writer unless it runs.
func (c *conn) startWriterLocked() {
	if c.writing || c.held {
		return
	}
	c.writing = true
	c.writer.Add(1)
	go c.writeLoop()
}

// abortWriteLocked makes a write in progress fail at once (a kicked or
// cut-off client may have stopped reading, and the write with it).
func (c *conn) abortWriteLocked() {
	if c.inWrite && c.nc != nil {
		_ = c.nc.SetWriteDeadline(time.Unix(1, 0))
	}
}

// setCloseLocked records the first close code asked for.
func (c *conn) setCloseLocked(code websocket.StatusCode, reason string) {
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = code, reason
	}
}

// readerDone is the reader's end: when it did not queue a close itself,
// the client is gone or the socket was closed under it, and nothing more
// is written.
func (c *conn) readerDone(closing bool) {
	c.mu.Lock()
	if !closing && c.state == stateOpen {
		c.state = stateCut
		c.abortWriteLocked()
	}
	closeNow := !c.writing && c.state != stateClosed
	if closeNow {
		c.state = stateClosed
	}
	c.mu.Unlock()
	if closeNow {
		_ = c.ws.CloseNow()
	}
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

// writeLoop is the only writer of data frames and of every close: it
// writes what is queued and returns when the queue is empty, or closes the
// socket as the connection's state asks.
func (c *conn) writeLoop() {
	defer c.writer.Done()
	for {
		c.mu.Lock()
		switch c.state {
		case stateKicked:
			c.state = stateClosed
			code, reason := c.closeCode, c.closeReason
			c.mu.Unlock()
			c.closeSocket(code, reason)
			return
		case stateCut:
			// The client left, or is too slow to be owed a goodbye.
			c.state = stateClosed
			c.mu.Unlock()
			_ = c.ws.CloseNow()
			return
		case stateClosed:
			c.writing = false
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		frame := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if len(c.queue) == 0 {
			// Back to the inline array: a queue that grew is let go.
			c.queue = c.inline[:0]
		}
		if frame == nil {
			c.state = stateClosed
			code, reason := c.closeCode, c.closeReason
			c.mu.Unlock()
			c.closeSocket(code, reason)
			return
		}
		c.inWrite = true
		if c.nc != nil {
			// A deadline on the socket rather than a context per frame:
			// no timer or goroutine is set up for each of them.
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
		}
		c.mu.Unlock()
		err := c.ws.Write(context.Background(), websocket.MessageText, frame)
		c.mu.Lock()
		c.inWrite = false
		if err != nil {
			c.state = stateClosed
		}
		c.mu.Unlock()
		if err != nil {
			// WriteTimeout, a kick or a cut abandoned the write.
			_ = c.ws.CloseNow()
			return
		}
	}
}

// closeSocket sends the close frame and completes the close handshake
// (coder/websocket bounds both), or just closes when code is 0.
func (c *conn) closeSocket(code websocket.StatusCode, reason string) {
	if code == 0 {
		_ = c.ws.CloseNow()
		return
	}
	if c.nc != nil {
		_ = c.nc.SetWriteDeadline(time.Time{}) // an aborted write's deadline is past
	}
	_ = c.ws.Close(code, reason)
}

// pingIfDue starts a ping when the connection's turn has come (the
// server's sweep calls it); a client that does not answer within
// WriteTimeout is cut off.
func (c *conn) pingIfDue(now time.Time) {
	c.mu.Lock()
	due := c.state == stateOpen && !c.held && !c.pinging && !c.nextPing.IsZero() && !now.Before(c.nextPing)
	if due {
		c.pinging = true
		c.nextPing = now.Add(c.s.cfg.PingInterval)
	}
	if due {
		// Added while the connection is open, so before serve waits.
		c.writer.Add(1)
	}
	c.mu.Unlock()
	if !due {
		return
	}
	go func() {
		defer c.writer.Done()
		// Not c.ctx: a kick must not abandon the ping's frame half
		// written, which would cost the client its close frame.
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		c.mu.Lock()
		c.pinging = false
		if err != nil && (c.state == stateOpen || c.state == stateClosing) {
			c.state = stateCut
			c.abortWriteLocked()
			c.startWriterLocked()
		}
		c.mu.Unlock()
	}()
}
