package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// chatClient is one bench client of the chat WebSocket: a bare socket
// with just enough of RFC 6455 to stand for the official SDK on the wire
// (handshake with the token as subprotocol, masked text frames out,
// answers to pings) at a fraction of a real client's cost, because 5,000
// of them share the machine with the server they measure. Until run
// starts it holds no goroutine and no buffer: the idle-memory figure is
// the server's, not the clients'.
type chatClient struct {
	nc      net.Conn
	pending []byte // bytes read past the handshake response (rarely any)

	wmu sync.Mutex // frames out: the sender's messages and pongs

	// Written by run; read once it is done.
	latencies []uint32 // send → receive, µs, one per delivery
	seen      []uint64 // bitmap of the bench messages received, by sequence
	dups      int64
	rejected  []int // sequences the server answered with an ERROR
	err       error // why run ended before close
}

// chatRun is what the receiving clients share.
type chatRun struct {
	base      time.Time    // message timestamps are offsets from it (monotonic)
	delivered atomic.Int64 // bench messages received, all clients
	closing   atomic.Bool  // the bench closes the sockets: read errors are expected
}

// dialChat opens a WebSocket to wsURL with token as its only subprotocol,
// as the SDK does, and completes the handshake.
func dialChat(wsURL *url.URL, token string, tlsConfig *tls.Config, timeout time.Duration) (*chatClient, error) {
	host := wsURL.Host
	if wsURL.Port() == "" {
		if wsURL.Scheme == "wss" {
			host = net.JoinHostPort(wsURL.Hostname(), "443")
		} else {
			host = net.JoinHostPort(wsURL.Hostname(), "80")
		}
	}
	deadline := time.Now().Add(timeout)
	nc, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return nil, err
	}
	if wsURL.Scheme == "wss" {
		cfg := tlsConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = wsURL.Hostname()
		}
		nc = tls.Client(nc, cfg)
	}
	_ = nc.SetDeadline(deadline)
	var keyRaw [16]byte
	_, _ = rand.Read(keyRaw[:])
	key := base64.StdEncoding.EncodeToString(keyRaw[:])
	path := wsURL.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + wsURL.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + token + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	// The response fits in one small read; what follows it (nothing,
	// unless a ping comes early) is kept for run.
	buf := make([]byte, 0, 1024)
	var end int
	for {
		if len(buf) == cap(buf) {
			nc.Close()
			return nil, errors.New("handshake response too long")
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
			break
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
	head := buf[:end]
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		nc.Close()
		line, _, _ := bytes.Cut(head, []byte("\r\n"))
		return nil, fmt.Errorf("handshake: %s", line)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if !bytes.Contains(head, []byte(base64.StdEncoding.EncodeToString(sum[:]))) {
		nc.Close()
		return nil, errors.New("handshake: wrong Sec-WebSocket-Accept")
	}
	_ = nc.SetDeadline(time.Time{})
	c := &chatClient{nc: nc}
	if end < len(buf) {
		c.pending = bytes.Clone(buf[end:])
	}
	return c, nil
}

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// Markers the receivers look for instead of decoding JSON: the bench's
// messages carry "bench:<seq>:<sent ns>:" at the start of their Content,
// its requests RequestId "bench-<seq>".
var (
	contentMarker   = []byte(`"Content":"bench:`)
	requestIDMarker = []byte(`"RequestId":"bench-`)
	errorPrefix     = []byte(`{"Type":"ERROR"`)
)

// run reads frames until the socket ends, recording every bench message
// (maxSeq bounds the sequence numbers). It answers pings and the close.
func (c *chatClient) run(r *chatRun, maxSeq int) {
	c.seen = make([]uint64, maxSeq/64+1)
	var src io.Reader = c.nc
	if len(c.pending) > 0 {
		src = io.MultiReader(bytes.NewReader(c.pending), c.nc)
		c.pending = nil
	}
	br := bufio.NewReaderSize(src, 2048)
	payload := make([]byte, 0, 1024)
	var message []byte // a fragmented message being put together
	var hdr [14]byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			c.end(r, err)
			return
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
		masked := hdr[1]&0x80 != 0
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
				c.end(r, err)
				return
			}
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(br, hdr[2:10]); err != nil {
				c.end(r, err)
				return
			}
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		var mask [4]byte
		if masked {
			if _, err := io.ReadFull(br, mask[:]); err != nil {
				c.end(r, err)
				return
			}
		}
		if n > 1<<24 {
			c.end(r, fmt.Errorf("frame of %d bytes", n))
			return
		}
		if uint64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		p := payload[:n]
		if _, err := io.ReadFull(br, p); err != nil {
			c.end(r, err)
			return
		}
		if masked {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch op {
		case opText, opContinuation:
			if !fin || message != nil {
				message = append(message, p...)
				if !fin {
					continue
				}
				p, message = message, nil
			}
			c.handleText(r, p)
		case opPing:
			if err := c.writeFrame(opPong, p); err != nil {
				c.end(r, err)
				return
			}
		case opClose:
			_ = c.writeFrame(opClose, p) // echo the code: a clean close
			c.end(r, errors.New("closed by the server: "+closeText(p)))
			return
		}
	}
}

// handleText records a bench message, or the rejection of one of ours.
func (c *chatClient) handleText(r *chatRun, p []byte) {
	if i := bytes.Index(p, contentMarker); i >= 0 {
		rest := p[i+len(contentMarker):]
		seq, rest, ok1 := cutInt(rest)
		sent, _, ok2 := cutInt(rest)
		if !ok1 || !ok2 {
			return
		}
		lat := time.Since(r.base) - time.Duration(sent)
		if w := seq / 64; w < len(c.seen) {
			bit := uint64(1) << (seq % 64)
			if c.seen[w]&bit != 0 {
				c.dups++
				return
			}
			c.seen[w] |= bit
		}
		c.latencies = append(c.latencies, uint32(max(lat, 0)/time.Microsecond))
		r.delivered.Add(1)
		return
	}
	if bytes.HasPrefix(p, errorPrefix) {
		if i := bytes.Index(p, requestIDMarker); i >= 0 {
			if seq, _, ok := cutInt(p[i+len(requestIDMarker):]); ok {
				c.rejected = append(c.rejected, seq)
			}
		}
	}
}

// cutInt parses the decimal number at the start of b and skips the one
// separator byte after it.
func cutInt(b []byte) (int, []byte, bool) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(b) {
		return 0, nil, false
	}
	v, err := strconv.Atoi(string(b[:i]))
	return v, b[i+1:], err == nil
}

func (c *chatClient) end(r *chatRun, err error) {
	if !r.closing.Load() {
		c.err = err
	}
}

func closeText(p []byte) string {
	if len(p) < 2 {
		return "no status"
	}
	return strconv.Itoa(int(binary.BigEndian.Uint16(p))) + " " + string(p[2:])
}

// writeFrame writes one masked frame, as clients must.
func (c *chatClient) writeFrame(op byte, p []byte) error {
	frame := make([]byte, 0, len(p)+14)
	frame = append(frame, 0x80|op)
	switch n := len(p); {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	case n < 1<<16:
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(n))
	default:
		frame = append(frame, 0x80|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(n))
	}
	key := mrand.Uint32()
	frame = binary.BigEndian.AppendUint32(frame, key)
	k := frame[len(frame)-4:]
	start := len(frame)
	frame = append(frame, p...)
	for i := range frame[start:] {
		frame[start+i] ^= k[i%4]
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(frame)
	return err
}

// sendMessage publishes bench message seq, stamped with the time since
// r.base, its Content padded with filler to contentLen characters.
func (c *chatClient) sendMessage(r *chatRun, seq, contentLen int) error {
	b := make([]byte, 0, 128+contentLen)
	b = append(b, `{"Action":"SEND_MESSAGE","RequestId":"bench-`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `","Content":"bench:`...)
	start := len(b) - len("bench:")
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(time.Since(r.base)), 10)
	b = append(b, ':')
	for len(b)-start < contentLen {
		b = append(b, 'x')
	}
	b = append(b, `"}`...)
	return c.writeFrame(opText, b)
}
