// Package ingest holds what the protocol front-ends (rtmp/, srt/) share: the
// interface they publish through, implemented by the live-stream manager
// (internal/live). A front-end owns its connections and their parsing; the
// manager owns admission, sessions, limits and the media hub.
package ingest

import (
	"context"
	"errors"

	"github.com/openivs/openivs/internal/media"
)

// Protocols.
const (
	RTMP  = "rtmp"
	RTMPS = "rtmps"
	SRT   = "srt"
)

// Request is an encoder asking to publish, before any media.
type Request struct {
	Protocol  string
	StreamKey string
	// Priority is the takeover priority from the stream name or streamid
	// (?priority=N / priority=N); HasPriority is false when none was given.
	Priority    int
	HasPriority bool
	RemoteAddr  string
}

// Publisher admits encoders. The live manager implements it.
type Publisher interface {
	// Authorize checks the stream key, the protocol against the channel's
	// insecureIngest setting, quotas and takeover rules. It answers before any
	// media flows, so a refused encoder is dropped at once.
	Authorize(ctx context.Context, req Request) (Admission, error)
	// SRTPassphrase returns the passphrase the SRT handshake must use for a
	// stream key: "" when the channel allows insecure ingest (then the
	// encoder may connect without encryption). Unknown keys are an error.
	SRTPassphrase(ctx context.Context, streamKey string) (passphrase string, err error)
}

// Admission is an authorised encoder whose media has not started yet.
type Admission interface {
	// Start hands over the stream's tracks once known (and the encoder name
	// from RTMP metadata, if any); the manager checks codecs and returns the
	// Stream to write frames into.
	Start(tracks []media.Track, encoder string) (Stream, error)
	// Abort ends an admission that never started (the connection failed).
	Abort(reason error)
}

// Stream is a live publication.
type Stream interface {
	// WriteFrame hands one frame to the live side. It does not block on
	// consumers. An error means the stream was ended by the live side.
	WriteFrame(f *media.Frame) error
	// WriteMetadata hands timed metadata the encoder sent in-band; it is
	// dated like the video frame written last. Channels that cannot carry
	// timed metadata drop it. An error means the stream was ended.
	WriteMetadata(text string) error
	// Done is closed when the live side ends the stream (StopStream, a limit
	// breach, a takeover, starvation timeout); the front-end must then close
	// the connection.
	Done() <-chan struct{}
	// Close reports that the connection ended (reason nil for a clean end).
	Close(reason error)
}

// Errors a Publisher returns; front-ends only need to know to refuse.
var (
	ErrUnknownKey      = errors.New("ingest: unknown stream key")
	ErrInsecureRefused = errors.New("ingest: insecure ingest is not enabled for this channel")
	ErrChannelBusy     = errors.New("ingest: channel is already live")
	ErrQuota           = errors.New("ingest: concurrent streams quota reached")
	ErrCodec           = errors.New("ingest: unsupported codecs")
)
