package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
)

// publisher is one simulated encoder: an RTMP(S) client that replays the
// recording in real time.
type publisher struct {
	url *url.URL
	tls *tls.Config
	rec *Recording

	sent      atomic.Int64  // access units written to the socket
	admitted  chan struct{} // closed once the publish was accepted
	admission time.Duration // dial start -> publish accepted (valid once admitted is closed)
	dialStart time.Time
}

// run connects, publishes and replays until ctx ends. The publish being
// accepted means the server's Authorize returned: the session was created
// and counted against the quota (Session Created), which is what admission
// latency measures.
func (p *publisher) run(ctx context.Context) error {
	p.dialStart = time.Now()
	c := &gortmplib.Client{URL: p.url, Publish: true, TLSConfig: p.tls}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := c.Initialize(ictx)
	cancel()
	if err != nil {
		return fmt.Errorf("connect/publish: %w", err)
	}
	p.admission = time.Since(p.dialStart)
	close(p.admitted)
	defer c.Close()

	tracks := []*gortmplib.Track{{Codec: &codecs.H264{SPS: p.rec.SPS, PPS: p.rec.PPS}}}
	if p.rec.AudioConfig != nil {
		tracks = append(tracks, &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: p.rec.AudioConfig}})
	}
	// The Writer sends onMetaData and the sequence headers; the access
	// units then go out as prebuilt messages straight from the FLV bytes.
	w := &gortmplib.Writer{Conn: c, Tracks: tracks}
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("sending headers: %w", err)
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	origin := time.Now()
	for loop := 0; ; loop++ {
		base := time.Duration(loop) * p.rec.Duration
		for i := range p.rec.Units {
			u := &p.rec.Units[i]
			dts := base + u.DTS
			if d := time.Until(origin.Add(dts)); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				return nil
			}
			if err := c.Write(unitMessage(u, dts)); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("writing media: %w", err)
			}
			p.sent.Add(1)
		}
	}
}

// unitMessage wraps one access unit as the legacy FLV video or audio
// message, the form every RTMP encoder sends for H.264 and AAC.
func unitMessage(u *Unit, dts time.Duration) message.Message {
	if u.Video {
		return &message.Video{
			ChunkStreamID:   message.VideoChunkStreamID,
			MessageStreamID: 0x1000000,
			Codec:           message.CodecH264,
			IsKeyFrame:      u.Key,
			Type:            message.VideoTypeAU,
			AU:              u.Payload,
			DTS:             dts,
			PTSDelta:        u.PTSDelta,
		}
	}
	return &message.Audio{
		ChunkStreamID:   message.AudioChunkStreamID,
		MessageStreamID: 0x1000000,
		Codec:           message.CodecMPEG4Audio,
		Rate:            message.AudioRate44100,
		Depth:           message.AudioDepth16,
		IsStereo:        true,
		AACType:         message.AudioAACTypeAU,
		AU:              u.Payload,
		DTS:             dts,
	}
}

// nullServe accepts RTMP publishers on ln and discards their messages
// after demuxing them. Running the same publishers against it measures what
// the in-process client (plus bare RTMP parsing) costs, so the report can
// say how much of the CPU is openivs's own.
func nullServe(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer nc.Close()
			go func() { <-ctx.Done(); nc.Close() }()
			sc := &gortmplib.ServerConn{RW: nc}
			if sc.Initialize() != nil || sc.AcceptConn() != nil || sc.AcceptAction() != nil {
				return
			}
			for {
				if _, err := sc.Read(); err != nil {
					return
				}
			}
		})
	}
}
