package rtmp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/openivs/openivs/internal/ingest"
)

// Why a connection ended, as reported to Stream.Close / Admission.Abort and
// in logs.
var (
	errServerStopped  = errors.New("rtmp: ingest server stopped")
	errEndedByLive    = errors.New("rtmp: stream ended by the live side")
	errPlayRefused    = errors.New("rtmp: play requested; this server only accepts publishing")
	errUnpublished    = errors.New("rtmp: encoder unpublished")
	errEncoderGone    = errors.New("rtmp: encoder closed the connection without unpublishing")
	errReadTimeout    = errors.New("rtmp: no data from encoder within the read timeout")
	errInternal       = errors.New("rtmp: internal error in the RTMP stack")
	errCodecChanged   = errors.New("rtmp: video codec changed mid-stream")
	errNilFromPublish = errors.New("rtmp: publisher returned no admission or stream")
)

// session is what the live side handed this connection, so that whatever
// way the connection ends it is reported exactly once.
type session struct {
	adm    ingest.Admission
	stream ingest.Stream
}

// serveConn runs one connection to its end. It returns only after every
// goroutine it started has ended and the live side has been told.
func (s *Server) serveConn(ctx context.Context, nc net.Conn, protocol string) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	finished := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(finished)
		wg.Wait()
		nc.Close()
	}()
	// Closing the socket is what interrupts a blocked read when the server
	// stops or the live side ends the stream.
	wg.Go(func() {
		select {
		case <-ctx.Done():
			nc.Close()
		case <-finished:
		}
	})

	log := s.log.With("protocol", protocol, "remote", remoteAddr(nc))
	var sess session
	err := s.runConn(ctx, cancel, nc, protocol, &sess, &wg, finished, &log)
	reason := endReason(ctx, err)

	switch {
	case sess.stream != nil:
		sess.stream.Close(reason)
		log.Info("rtmp stream ended", "reason", errString(reason))
	case sess.adm != nil:
		sess.adm.Abort(reason)
		log.Info("rtmp publish aborted before media started", "reason", errString(reason))
	default:
		log.Debug("rtmp connection closed", "reason", errString(reason))
	}
}

// runConn is the connection's protocol flow: handshake, connect, publish
// (authorised before it is accepted), track discovery, Start, frames. A
// panic inside gortmplib on hostile input is turned into an error so that
// one bad peer cannot take the process down.
func (s *Server) runConn(ctx context.Context, cancel context.CancelCauseFunc, nc net.Conn, protocol string,
	sess *session, wg *sync.WaitGroup, finished <-chan struct{}, logp **slog.Logger,
) (err error) {
	defer func() {
		if r := recover(); r != nil {
			(*logp).Error("rtmp connection handler panicked; connection dropped",
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errInternal, r)
		}
	}()

	handshakeDeadline := time.Now().Add(s.cfg.HandshakeTimeout)
	if err := nc.SetDeadline(handshakeDeadline); err != nil {
		return err
	}
	sc := &gortmplib.ServerConn{RW: nc}
	if err := sc.Initialize(); err != nil {
		return fmt.Errorf("rtmp handshake: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		return fmt.Errorf("rtmp connect: %w", err)
	}
	if !sc.Publish {
		refuse(sc, "NetStream.Play.Failed", "this server only accepts publishing")
		return errPlayRefused
	}
	tgt, err := parseTarget(sc.URL)
	if err != nil {
		refuse(sc, "NetStream.Publish.BadName", publicReason(err))
		return err
	}
	*logp = (*logp).With("key", keyHint(tgt.StreamKey))

	actx, acancel := context.WithDeadline(ctx, handshakeDeadline)
	adm, err := s.cfg.Publisher.Authorize(actx, ingest.Request{
		Protocol:    protocol,
		StreamKey:   tgt.StreamKey,
		Priority:    tgt.Priority,
		HasPriority: tgt.HasPriority,
		RemoteAddr:  remoteAddr(nc),
	})
	acancel()
	if err != nil {
		refuse(sc, "NetStream.Publish.Unauthorized", publicReason(err))
		(*logp).Info("rtmp publish refused", "reason", err.Error())
		return fmt.Errorf("rtmp authorize: %w", err)
	}
	if adm == nil {
		refuse(sc, "NetStream.Publish.Unauthorized", "publish refused")
		return errNilFromPublish
	}
	sess.adm = adm
	if err := sc.AcceptAction(); err != nil {
		return fmt.Errorf("rtmp accept publish: %w", err)
	}

	// Track discovery reads up to 2 s of media (gortmplib's analyze period;
	// usually far less, see trackAnnouncement); it must not outlast one
	// read timeout in total.
	rc := &recvConn{
		ServerConn: sc,
		nc:         nc,
		timeout:    s.cfg.ReadTimeout,
		discovery:  time.Now().Add(s.cfg.ReadTimeout),
		stamps:     make(map[message.Message]time.Time),
	}
	r := &gortmplib.Reader{Conn: rc}
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("rtmp reading tracks: %w", err)
	}
	rc.discovery = time.Time{}
	gtracks := r.Tracks()
	// Reader.Initialize buffered the discovery messages and replays them;
	// this wrapper gives each replayed frame the time it really arrived.
	rp := &replayConn{Conn: r.Conn, rc: rc}
	if len(gtracks) > 0 {
		if _, ok := gtracks[0].Codec.(*codecs.H264); ok {
			rp.video0 = message.CodecH264
		} else if _, ok := gtracks[0].Codec.(*codecs.H265); ok {
			rp.video0 = message.CodecH265
		}
	}
	r.Conn = rp

	tracks := mediaTracks(gtracks)
	stream, err := adm.Start(tracks, rc.encoder)
	if err != nil {
		refuse(sc, "NetStream.Publish.Rejected", publicReason(err))
		(*logp).Info("rtmp stream refused at start", "reason", err.Error(), "tracks", trackSummary(tracks))
		return fmt.Errorf("rtmp start: %w", err)
	}
	if stream == nil {
		return errNilFromPublish
	}
	sess.stream = stream
	(*logp).Info("rtmp stream started", "tracks", trackSummary(tracks), "encoder", rc.encoder)

	wg.Go(func() {
		select {
		case <-stream.Done():
			cancel(errEndedByLive)
		case <-finished:
		}
	})

	fw := &frameWriter{stream: stream, wall: func() time.Time { return rp.wall }}
	fw.register(r, gtracks)
	rp.onData = fw.data
	for {
		if err := r.Read(); err != nil {
			return err
		}
		if fw.err != nil {
			return fmt.Errorf("rtmp write frame: %w", fw.err)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
}

// recvConn sits between gortmplib's Reader and the ServerConn. It keeps the
// read deadline moving, notes when each message arrived, picks the encoder
// name out of onMetaData (which the Reader drops) and turns an unpublish
// into a clean end.
type recvConn struct {
	*gortmplib.ServerConn
	nc      net.Conn
	timeout time.Duration
	// discovery, while non-zero, caps every read deadline.
	discovery time.Time
	// stamps holds the arrival time of each message read during discovery,
	// keyed by the message gortmplib will replay.
	stamps  map[message.Message]time.Time
	last    time.Time
	encoder string
	// announce ends discovery early once the announced tracks are
	// configured, by handing the Reader sentinel (see trackAnnouncement).
	announce trackAnnouncement
	sentinel message.Message
	sent     bool
}

func (c *recvConn) Read() (message.Message, error) {
	if c.sentinel != nil && !c.sent {
		c.sent = true
		return c.sentinel, nil
	}
	deadline := time.Now().Add(c.timeout)
	if !c.discovery.IsZero() && c.discovery.Before(deadline) {
		deadline = c.discovery
	}
	// A failure here means the socket is closed, which the read reports;
	// data already buffered from the peer must still be read first.
	_ = c.nc.SetDeadline(deadline)
	msg, err := c.ServerConn.Read()
	if err != nil {
		return nil, err
	}
	c.last = time.Now()
	if !c.discovery.IsZero() {
		c.stamps[msg] = c.last
		if c.sentinel == nil && c.announce.observe(msg) {
			c.sentinel = c.announce.sentinel()
		}
	}
	switch m := msg.(type) {
	case *message.DataAMF0:
		if enc, ok := encoderFromData(m.Payload); ok && enc != "" {
			c.encoder = enc
		}
	case *message.CommandAMF0:
		switch m.Name {
		case "FCUnpublish", "deleteStream", "closeStream":
			return nil, errUnpublished
		}
	}
	return msg, nil
}

// replayConn is installed over the Reader's own replaying wrapper once
// discovery is done. It restores arrival times and refuses a legacy video
// message whose codec differs from the discovered track, which gortmplib's
// per-codec callbacks would otherwise dereference as the wrong config type.
type replayConn struct {
	gortmplib.Conn
	rc     *recvConn
	video0 uint8
	wall   time.Time
	// onData takes in-band captions and metadata, in stream order.
	onData func(inbandData)
}

func (c *replayConn) Read() (message.Message, error) {
	msg, err := c.Conn.Read()
	if err != nil {
		return nil, err
	}
	if msg == c.rc.sentinel {
		// Discovery's end marker, not the encoder's.
		if msg, err = c.Conn.Read(); err != nil {
			return nil, err
		}
	}
	if t, ok := c.rc.stamps[msg]; ok {
		delete(c.rc.stamps, msg)
		c.wall = t
	} else {
		c.wall = c.rc.last
	}
	switch m := msg.(type) {
	case *message.Video:
		if c.video0 != 0 && m.Codec != c.video0 {
			return nil, errCodecChanged
		}
	case *message.DataAMF0:
		if in, ok := parseInband(m.Payload); ok && c.onData != nil {
			c.onData(in)
		}
	}
	return msg, nil
}

// refuse tells the encoder why its publish or play is refused, in an
// onStatus error that encoders show to the user. Failure to send it does not
// matter: the connection is closed right after.
func refuse(sc *gortmplib.ServerConn, code, description string) {
	_ = sc.Write(&message.CommandAMF0{
		ChunkStreamID:   5,
		MessageStreamID: 0x1000000,
		Name:            "onStatus",
		Arguments: []any{
			nil,
			amf0.Object{
				{Key: "level", Value: "error"},
				{Key: "code", Value: code},
				{Key: "description", Value: description},
			},
		},
	})
}

// publicReason is the refusal text an encoder may see: the live side's
// sentinel reasons, never internal error details.
func publicReason(err error) string {
	switch {
	case errors.Is(err, ingest.ErrUnknownKey):
		return "invalid stream key"
	case errors.Is(err, ingest.ErrInsecureRefused):
		return "insecure ingest is not enabled for this channel; use RTMPS"
	case errors.Is(err, ingest.ErrChannelBusy):
		return "channel is already live"
	case errors.Is(err, ingest.ErrQuota):
		return "concurrent streams quota reached"
	case errors.Is(err, ingest.ErrCodec):
		// The manager's wrapped text says which codec arrived.
		return err.Error()
	case errors.Is(err, errWrongApp):
		return `RTMP application must be "app"`
	case errors.Is(err, errNoStreamKey):
		return "stream key missing"
	case errors.Is(err, errBadPriority):
		return "priority must be a non-negative integer"
	}
	return "publish refused"
}

// endReason maps how runConn ended to what Stream.Close / Admission.Abort
// get: nil for an encoder that unpublished, otherwise why.
func endReason(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
			return errServerStopped
		}
		return cause
	}
	switch {
	case err == nil, errors.Is(err, errUnpublished):
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %w", errEncoderGone, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %w", errReadTimeout, err)
	}
	return err
}

// keyHint identifies a stream key in logs without revealing it.
func keyHint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

func remoteAddr(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "clean"
	}
	return err.Error()
}
