package bench

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// serverFrame is an unmasked frame as a server sends it.
func serverFrame(fin bool, op byte, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// readClientFrame reads a masked client frame and unmasks it.
func readClientFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	if h[1]&0x80 == 0 {
		t.Fatal("client frame not masked")
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		io.ReadFull(r, ext[:])
		n = int(binary.BigEndian.Uint16(ext[:]))
	}
	var key [4]byte
	io.ReadFull(r, key[:])
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] ^= key[i%4]
	}
	return h[0] & 0x0f, p
}

// TestChatClientFrames: the bench client records the bench's messages
// (whole or fragmented, duplicates once), the rejections of its own,
// answers pings and ends on the close.
func TestChatClientFrames(t *testing.T) {
	clientSide, serverSide := net.Pipe()
	defer serverSide.Close()
	c := &chatClient{nc: clientSide}
	r := &chatRun{base: time.Now().Add(-time.Second)}
	sent := strconv.FormatInt(int64(900*time.Millisecond), 10) // 100 ms before "now"
	msg := func(seq int) []byte {
		return []byte(`{"Type":"MESSAGE","Id":"AbCdEfGh1234","RequestId":"bench-` + strconv.Itoa(seq) +
			`","Content":"bench:` + strconv.Itoa(seq) + `:` + sent + `:xxxx","SendTime":"2026-01-01T00:00:00.000Z","Sender":{"UserId":"bench-0"}}`)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run(r, 100)
	}()

	write := func(b []byte) {
		t.Helper()
		if _, err := serverSide.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(serverFrame(true, opText, msg(1)))
	write(serverFrame(true, opText, msg(1))) // a duplicate
	m := msg(2)
	write(serverFrame(false, opText, m[:20]))
	write(serverFrame(true, opContinuation, m[20:]))
	write(serverFrame(true, opText, []byte(`{"Type":"ERROR","Id":"x","RequestId":"bench-3","ErrorCode":429,"ErrorMessage":"Room message rate exceeded"}`)))
	write(serverFrame(true, opText, []byte(`{"Type":"EVENT","Id":"x","EventName":"app:other","SendTime":"2026-01-01T00:00:00.000Z"}`)))
	write(serverFrame(true, opPing, []byte("42")))
	if op, p := readClientFrame(t, serverSide); op != opPong || string(p) != "42" {
		t.Fatalf("answer to a ping: opcode %x %q", op, p)
	}
	write(serverFrame(true, opClose, []byte{0x03, 0xe9, 'b', 'y', 'e'}))
	if op, p := readClientFrame(t, serverSide); op != opClose || !bytes.Equal(p, []byte{0x03, 0xe9, 'b', 'y', 'e'}) {
		t.Fatalf("answer to the close: opcode %x %q", op, p)
	}
	<-done

	if len(c.latencies) != 2 || c.dups != 1 || r.delivered.Load() != 2 {
		t.Fatalf("%d latencies, %d duplicates, %d delivered", len(c.latencies), c.dups, r.delivered.Load())
	}
	for _, us := range c.latencies {
		if d := time.Duration(us) * time.Microsecond; d < 100*time.Millisecond || d > 5*time.Second {
			t.Fatalf("latency %v, want about 100 ms", d)
		}
	}
	if len(c.rejected) != 1 || c.rejected[0] != 3 {
		t.Fatalf("rejected %v", c.rejected)
	}
	if c.err == nil || !bytes.Contains([]byte(c.err.Error()), []byte("1001 bye")) {
		t.Fatalf("end: %v", c.err)
	}
}

// TestSendMessageFrame: what a sender writes is a masked SEND_MESSAGE
// with the sequence and timestamp the receivers parse back.
func TestSendMessageFrame(t *testing.T) {
	clientSide, serverSide := net.Pipe()
	defer serverSide.Close()
	c := &chatClient{nc: clientSide}
	r := &chatRun{base: time.Now()}
	go func() { _ = c.sendMessage(r, 7, 64) }()
	op, p := readClientFrame(t, serverSide)
	if op != opText || !bytes.HasPrefix(p, []byte(`{"Action":"SEND_MESSAGE","RequestId":"bench-7","Content":"bench:7:`)) {
		t.Fatalf("opcode %x %s", op, p)
	}
	i := bytes.Index(p, []byte(`"Content":"`)) + len(`"Content":"`)
	j := bytes.LastIndexByte(p, '"')
	if n := j - i; n != 64 {
		t.Fatalf("content of %d characters: %s", n, p[i:j])
	}
}
