package hls

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// The parameter sets of the synthetic stream (mediatest's).
var (
	testSPS = mediatest.SPS
	testPPS = mediatest.PPS
	// A 1280x720 High profile SPS, for a takeover by another encoder.
	testSPS720 = []byte{
		0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50,
		0x05, 0xbb, 0x01, 0x6c, 0x80, 0x00, 0x00, 0x03,
		0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8c, 0x18,
		0xcb,
	}
)

func testTracks(t testing.TB) []media.Track { return mediatest.Tracks(t) }

// synth describes a synthetic stream: 30 fps video with a keyframe every
// gop frames (0 = only the first), AAC at 48 kHz.
type synth struct {
	seconds float64
	gop     int
	// discAt marks the video frame index (and the audio after it) that
	// follows a takeover; media time restarts there.
	discAt int
	// newSPS, when set, is the SPS the stream carries from discAt on.
	newSPS []byte
}

// frames returns the stream interleaved in DTS order.
func (s synth) frames(base time.Time) []*media.Frame {
	const fps = 30
	frameDur := time.Second / fps
	audioDur := time.Duration(1024) * time.Second / 48000
	nv := int(s.seconds * fps)
	var out []*media.Frame
	var at time.Duration // audio clock
	offset := time.Duration(0)
	disc := false
	for i := 0; i < nv; i++ {
		if s.discAt > 0 && i == s.discAt {
			// Takeover: the new encoder's media time starts over.
			offset = -time.Duration(i) * frameDur
			at = 0
			disc = true
		}
		dts := time.Duration(i)*frameDur + offset
		key := i == 0 || (s.gop > 0 && i%s.gop == 0) || i == s.discAt
		payload := make([]byte, 2000)
		if key {
			payload = make([]byte, 20000)
		}
		nal := append([]byte{0x01}, payload...)
		nalus := [][]byte{nal}
		if key {
			nal[0] = 0x65
			sps := testSPS
			if s.newSPS != nil && s.discAt > 0 && i >= s.discAt {
				sps = s.newSPS
			}
			nalus = [][]byte{sps, testPPS, nal}
		}
		out = append(out, &media.Frame{
			Track: 0, PTS: dts, DTS: dts, Wall: base.Add(time.Duration(i) * frameDur),
			Key: key, NALUs: nalus, Discontinuity: disc,
		})
		disc = false
		for at < dts+frameDur {
			out = append(out, &media.Frame{
				Track: 1, PTS: at, DTS: at, Wall: base.Add(time.Duration(i) * frameDur),
				Key: true, NALUs: [][]byte{make([]byte, 300)},
			})
			at += audioDur
		}
	}
	return out
}

// started runs a packager on a fresh hub and returns both once it has
// subscribed, so no frame written afterwards is missed.
func started(t testing.TB, opts Options, tracks []media.Track) (*media.Hub, *Packager, <-chan error) {
	t.Helper()
	// A huge backlog: tests write faster than real time and must not have
	// the hub cut the packager forward.
	hub := media.NewHub(tracks, media.HubOptions{MaxBufferedFrames: 1 << 20})
	p := NewPackager(hub, opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for hub.Stats().Subscribers == 0 {
		if time.Now().After(deadline) {
			t.Fatal("packager never subscribed")
		}
		time.Sleep(time.Millisecond)
	}
	return hub, p, done
}

// packageAll feeds frames, closes the hub and waits for Run to finish.
func packageAll(t testing.TB, opts Options, frames []*media.Frame) *Packager {
	t.Helper()
	hub, p, done := started(t, opts, testTracks(t))
	for _, f := range frames {
		hub.Write(f)
	}
	hub.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the hub closed")
	}
	return p
}

// serve mounts a packager at /<name> of a test server.
func serve(t testing.TB, p *Packager) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeMedia(w, r, r.URL.Path[1:])
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

type mpegtsH264 = tscodecs.H264
