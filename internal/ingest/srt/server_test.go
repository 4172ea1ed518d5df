package srt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
)

const (
	secureKey   = "sk_us-west-2_secure1234abcd"
	insecureKey = "sk_us-west-2_insecure5678ef"
	// 41 characters, like the IVS example; SRT wants 10..79.
	passphrase = "ZU5A3yrjGakghUNDr0c5NXBhsPrj1mtcKMNB1uh7o"
)

func testKeys() map[string]string {
	return map[string]string{secureKey: passphrase, insecureKey: ""}
}

// requireFFmpeg finds the ffmpeg binary. Missing ffmpeg fails the test: the
// SRT front-end is only tested for real against a real encoder. Setting
// OPENIVS_NO_FFMPEG=1 skips instead, loudly.
func requireFFmpeg(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("OPENIVS_NO_FFMPEG") == "1" {
			t.Skip("SKIPPING SRT ENCODER TEST: ffmpeg not found and OPENIVS_NO_FFMPEG=1")
		}
		t.Fatalf("ffmpeg (with libsrt) is required for SRT ingest tests (set OPENIVS_NO_FFMPEG=1 to skip): %v", err)
	}
	return path
}

// startServer runs a Server the way the app does: ServeAddr on a free port,
// learnt through OnListen.
func startServer(t *testing.T, pub *testPublisher, readTimeout time.Duration) int {
	t.Helper()
	port, _ := startServerCancel(t, pub, readTimeout)
	return port
}

// startServerCancel is startServer that also returns the shutdown.
func startServerCancel(t *testing.T, pub *testPublisher, readTimeout time.Duration) (int, context.CancelFunc) {
	t.Helper()
	// ServeAddr on :0 lets gosrt pick the port itself: reserving one and
	// re-binding it races the other parallel tests for ephemeral ports.
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	listening := make(chan net.Addr, 1)
	srv := NewServer(Config{Publisher: pub, Logger: logger, ReadTimeout: readTimeout,
		OnListen: func(a net.Addr) { listening <- a }})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.ServeAddr(ctx, "127.0.0.1:0") }()
	var port int
	select {
	case a := <-listening:
		port = a.(*net.UDPAddr).Port
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("SRT server did not start listening")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v after shutdown", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after shutdown")
		}
	})
	return port, cancel
}

// testWriter sends server logs to the test log, so failures show them.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// srtURL builds the ffmpeg SRT output URL; an empty pass leaves it out.
// ffmpeg takes the streamid verbatim (no percent-decoding), so it goes in
// raw, as IVS documents it: streamid=#!::u=<key>,priority=N.
func srtURL(port int, streamID, pass string) string {
	q := "streamid=" + streamID
	if pass != "" {
		q += "&passphrase=" + pass
	}
	return fmt.Sprintf("srt://127.0.0.1:%d?%s&pkt_size=1316", port, q)
}

type ffmpegRun struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startFFmpeg encodes test video and audio in real time into url, as an IVS
// encoder would (H.264 640x360 30 fps, 1 s GOP, AAC 48 kHz stereo).
func startFFmpeg(t *testing.T, ffmpeg, url string, seconds int) *ffmpegRun {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-b:v", "800k",
		"-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2",
		"-f", "mpegts", url}
	return runFFmpeg(t, ffmpeg, args)
}

func runFFmpeg(t *testing.T, ffmpeg string, args []string) *ffmpegRun {
	t.Helper()
	r := &ffmpegRun{cmd: exec.Command(ffmpeg, args...), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start ffmpeg: %v", err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait returns ffmpeg's exit error, failing the test if it runs too long.
func (r *ffmpegRun) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // keep it for Cleanup
		return err
	case <-time.After(within):
		t.Fatalf("ffmpeg still running after %s; stderr:\n%s", within, r.stderr)
		return nil
	}
}

func TestPublishWithPassphrase(t *testing.T) {
	t.Parallel()
	ffmpeg := requireFFmpeg(t)
	pub := newTestPublisher(testKeys())
	port := startServer(t, pub, 0)

	run := startFFmpeg(t, ffmpeg, srtURL(port, secureKey, passphrase), 3)
	adm := pub.nextAdmission(t, 10*time.Second)
	st := adm.waitStream(t, 10*time.Second)
	if err := run.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, run.stderr)
	}
	if reason := st.waitClosed(t, 10*time.Second); reason != nil {
		t.Errorf("Close reason after the encoder finished = %v, want nil (clean end)", reason)
	}

	_, reqs := pub.snapshot()
	if len(reqs) != 1 {
		t.Fatalf("Authorize called %d times, want 1", len(reqs))
	}
	req := reqs[0]
	if req.Protocol != "srt" || req.StreamKey != secureKey || req.HasPriority || !strings.HasPrefix(req.RemoteAddr, "127.0.0.1:") {
		t.Errorf("request = %+v", req)
	}

	if len(st.tracks) != 2 {
		t.Fatalf("tracks = %+v, want video and audio", st.tracks)
	}
	v, a := st.tracks[0], st.tracks[1]
	if v.ID != 0 || v.Kind != media.Video || v.Codec != media.CodecH264 || v.Width != 640 || v.Height != 360 {
		t.Errorf("video track = %+v", v)
	}
	if len(v.SPS) == 0 || len(v.PPS) == 0 || v.Profile != "High" || v.Level == "" || !strings.HasPrefix(v.CodecString, "avc1.64") || len(v.CodecString) != len("avc1.64001E") {
		t.Errorf("video parameters: SPS %d B, PPS %d B, profile %q, level %q, codec %q", len(v.SPS), len(v.PPS), v.Profile, v.Level, v.CodecString)
	}
	if a.ID != 1 || a.Kind != media.Audio || a.Codec != media.CodecAAC || a.SampleRate != 48000 || a.Channels != 2 || a.AACObject != 2 || a.CodecString != "mp4a.40.2" {
		t.Errorf("audio track = %+v", a)
	}
	// AAC-LC, 48 kHz (index 3), 2 channels.
	if !bytes.Equal(a.AudioConfig, []byte{0x11, 0x90}) {
		t.Errorf("AudioSpecificConfig = %x, want 1190", a.AudioConfig)
	}

	checkFrames(t, st, 3*time.Second)
}

// checkFrames checks what a few seconds of the reference encode must give.
func checkFrames(t *testing.T, st *testStream, dur time.Duration) {
	t.Helper()
	frames := st.snapshot()
	if len(frames) == 0 {
		t.Fatal("no frames")
	}
	if f := frames[0]; f.Track != 0 || !f.Key || f.DTS != 0 {
		t.Errorf("first frame: track %d key %v DTS %v; want the video IDR at 0", f.Track, f.Key, f.DTS)
	}
	var (
		count   [2]int
		keys    int
		lastDTS = [2]time.Duration{-1, -1}
		lastVid time.Duration
		wall    time.Time
	)
	for i, f := range frames {
		if f.Track < 0 || f.Track > 1 {
			t.Fatalf("frame %d on track %d", i, f.Track)
		}
		count[f.Track]++
		if f.DTS <= lastDTS[f.Track] {
			t.Errorf("frame %d track %d: DTS %v not after %v", i, f.Track, f.DTS, lastDTS[f.Track])
		}
		lastDTS[f.Track] = f.DTS
		if f.PTS < f.DTS || f.DTS < 0 {
			t.Errorf("frame %d: PTS %v DTS %v", i, f.PTS, f.DTS)
		}
		if f.Wall.Before(wall) || f.Wall.IsZero() {
			t.Errorf("frame %d: wall clock %v went back from %v", i, f.Wall, wall)
		}
		wall = f.Wall
		if f.Size() == 0 {
			t.Errorf("frame %d is empty", i)
		}
		for _, n := range f.NALUs {
			if len(n) == 0 {
				t.Fatalf("frame %d has an empty NAL unit", i)
			}
			if bytes.HasPrefix(n, []byte{0, 0, 1}) || bytes.HasPrefix(n, []byte{0, 0, 0, 1}) {
				t.Fatalf("frame %d has a start code left in a NAL unit", i)
			}
		}
		if f.Track == 0 {
			lastVid = f.DTS
			var idr, vcl, sps, pps bool
			for _, n := range f.NALUs {
				switch n[0] & 0x1f {
				case 1:
					vcl = true
				case 5:
					idr, vcl = true, true
				case 7:
					sps = sps || bytes.Equal(n, st.tracks[0].SPS)
				case 8:
					pps = pps || bytes.Equal(n, st.tracks[0].PPS)
				}
			}
			if idr != f.Key || !vcl {
				t.Errorf("frame %d: Key %v, IDR present %v, any slice %v", i, f.Key, idr, vcl)
			}
			if f.Key {
				keys++
				// x264 repeats its parameter sets on every IDR: they must
				// arrive with the frame, and be the ones the track announced.
				if !sps || !pps {
					t.Errorf("keyframe %d: track SPS in frame %v, PPS %v", i, sps, pps)
				}
			}
		} else {
			if f.Key || len(f.NALUs) != 1 {
				t.Errorf("audio frame %d: key %v, %d payloads", i, f.Key, len(f.NALUs))
			}
		}
	}
	secs := dur.Seconds()
	if want := int(secs*30) - 10; count[0] < want {
		t.Errorf("%d video frames, want at least %d", count[0], want)
	}
	if want := int(secs*48000/1024) - 20; count[1] < want {
		t.Errorf("%d audio frames, want at least %d", count[1], want)
	}
	if want := int(secs) - 0; keys < want {
		t.Errorf("%d keyframes, want at least %d (1 s GOP)", keys, want)
	}
	if lastVid < dur-300*time.Millisecond || lastVid > dur+300*time.Millisecond {
		t.Errorf("last video DTS %v, want about %v", lastVid, dur)
	}
}

// TestRefusedHandshakes covers callers the handshake must turn away before
// any admission: the encoder fails to connect and no media flows.
func TestRefusedHandshakes(t *testing.T) {
	t.Parallel()
	ffmpeg := requireFFmpeg(t)
	cases := []struct {
		name, streamID, pass string
		wantLookup           bool
	}{
		{"wrong passphrase", secureKey, "not-the-right-passphrase-123", true},
		{"no passphrase on a secure channel", secureKey, "", true},
		{"passphrase on an insecure channel", insecureKey, passphrase, true},
		{"unknown key", "sk_us-west-2_nosuchkey000", passphrase, true},
		{"request mode", "#!::u=" + secureKey + ",m=request", passphrase, false},
		{"garbage streamid", "sk bad key\x01", passphrase, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub := newTestPublisher(testKeys())
			port := startServer(t, pub, 0)
			run := startFFmpeg(t, ffmpeg, srtURL(port, tc.streamID, tc.pass), 1)
			if err := run.wait(t, 15*time.Second); err == nil {
				t.Fatalf("ffmpeg succeeded; want the connection refused\n%s", run.stderr)
			}
			lookups, reqs := pub.snapshot()
			if len(reqs) != 0 {
				t.Errorf("Authorize was called: %+v", reqs)
			}
			if tc.wantLookup != (len(lookups) > 0) {
				t.Errorf("passphrase lookups %v, want some: %v", lookups, tc.wantLookup)
			}
			select {
			case a := <-pub.admitted:
				t.Errorf("connection admitted: %+v", a.req)
			default:
			}
		})
	}
}

func TestInsecureChannelWithoutPassphrase(t *testing.T) {
	t.Parallel()
	ffmpeg := requireFFmpeg(t)
	pub := newTestPublisher(testKeys())
	port := startServer(t, pub, 0)
	run := startFFmpeg(t, ffmpeg, srtURL(port, insecureKey, ""), 2)
	st := pub.nextAdmission(t, 10*time.Second).waitStream(t, 10*time.Second)
	if err := run.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, run.stderr)
	}
	if reason := st.waitClosed(t, 10*time.Second); reason != nil {
		t.Errorf("Close reason %v, want nil", reason)
	}
	checkFrames(t, st, 2*time.Second)
}

func TestAccessControlStreamIDWithPriority(t *testing.T) {
	t.Parallel()
	ffmpeg := requireFFmpeg(t)
	pub := newTestPublisher(testKeys())
	port := startServer(t, pub, 0)
	run := startFFmpeg(t, ffmpeg, srtURL(port, "#!::u="+secureKey+",priority=7", passphrase), 1)
	adm := pub.nextAdmission(t, 10*time.Second)
	adm.waitStream(t, 10*time.Second)
	if err := run.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, run.stderr)
	}
	if adm.req.StreamKey != secureKey || !adm.req.HasPriority || adm.req.Priority != 7 {
		t.Errorf("request = %+v, want key %s priority 7", adm.req, secureKey)
	}
}

// TestLiveSideEndsStream: when the live side closes Done (StopStream,
// takeover, limits), the encoder must be disconnected.
func TestLiveSideEndsStream(t *testing.T) {
	t.Parallel()
	ffmpeg := requireFFmpeg(t)
	pub := newTestPublisher(testKeys())
	port := startServer(t, pub, 0)
	run := startFFmpeg(t, ffmpeg, srtURL(port, secureKey, passphrase), 60)
	st := pub.nextAdmission(t, 10*time.Second).waitStream(t, 10*time.Second)
	select {
	case <-st.frameSeen:
	case <-time.After(10 * time.Second):
		t.Fatal("no frames")
	}
	ended := time.Now()
	st.end()
	st.waitClosed(t, 5*time.Second)
	if err := run.wait(t, 15*time.Second); err == nil {
		t.Errorf("ffmpeg exited cleanly; expected it to see the connection drop")
	}
	t.Logf("ffmpeg exited %v after the stream was ended", time.Since(ended).Round(time.Millisecond))
}

// TestGarbageClosesOnlyThatConnection: a caller sending something that is
// not MPEG-TS is dropped, and the server keeps taking good encoders.
func TestGarbageClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	ffmpeg := requireFFmpeg(t)
	pub := newTestPublisher(testKeys())
	port := startServer(t, pub, 0)

	// Raw PCM over SRT: a real peer, but no MPEG-TS.
	bad := runFFmpeg(t, ffmpeg, []string{"-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-f", "lavfi", "-i", "anoisesrc=sample_rate=48000:amplitude=0.5", "-t", "30",
		"-f", "s16le", srtURL(port, secureKey, passphrase)})
	adm := pub.nextAdmission(t, 10*time.Second)
	reason := adm.waitAbort(t, 10*time.Second)
	if !errors.Is(reason, errNotTS) {
		t.Errorf("abort reason %v, want errNotTS", reason)
	}
	if err := bad.wait(t, 15*time.Second); err == nil {
		t.Errorf("garbage sender exited cleanly; want it disconnected")
	}

	good := startFFmpeg(t, ffmpeg, srtURL(port, secureKey, passphrase), 1)
	st := pub.nextAdmission(t, 10*time.Second).waitStream(t, 10*time.Second)
	if err := good.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg after garbage: %v\n%s", err, good.stderr)
	}
	st.waitClosed(t, 10*time.Second)
	if n := len(st.snapshot()); n < 20 {
		t.Errorf("good stream after garbage got %d frames", n)
	}
}

// TestGarbageAfterStart: valid MPEG-TS that turns into noise mid-stream
// ends the started stream with a reason.
func TestGarbageAfterStart(t *testing.T) {
	t.Parallel()
	ts, err := os.ReadFile("testdata/h264_aac.ts")
	if err != nil {
		t.Fatal(err)
	}
	pub := newTestPublisher(testKeys())
	port := startServer(t, pub, 0)
	conn := dialSRT(t, port, insecureKey, "")
	defer conn.Close()
	st := pub.nextAdmission(t, 10*time.Second)
	writeChunks(t, conn, ts)
	stream := st.waitStream(t, 10*time.Second)
	noise := make([]byte, 200*1316)
	for i := range noise {
		noise[i] = byte(i*7 + i/13)
	}
	writeChunks(t, conn, noise)
	reason := stream.waitClosed(t, 10*time.Second)
	if !errors.Is(reason, errNotTS) {
		t.Errorf("close reason %v, want errNotTS", reason)
	}
}

// TestSilentPublisherTimesOut: a connection that never sends media is closed
// after ReadTimeout.
func TestSilentPublisherTimesOut(t *testing.T) {
	t.Parallel()
	pub := newTestPublisher(testKeys())
	port := startServer(t, pub, 500*time.Millisecond)
	conn := dialSRT(t, port, secureKey, passphrase)
	defer conn.Close()
	reason := pub.nextAdmission(t, 10*time.Second).waitAbort(t, 5*time.Second)
	if !errors.Is(reason, errReadTimeout) {
		t.Errorf("abort reason %v, want errReadTimeout", reason)
	}
}

// dialSRT connects with gosrt as a caller, for tests that need to send
// exactly chosen bytes.
func dialSRT(t *testing.T, port int, streamID, pass string) gosrt.Conn {
	t.Helper()
	cfg := gosrt.DefaultConfig()
	cfg.StreamId = streamID
	cfg.Passphrase = pass
	conn, err := gosrt.Dial("srt", fmt.Sprintf("127.0.0.1:%d", port), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return conn
}

func writeChunks(t *testing.T, conn gosrt.Conn, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n := min(len(b), 1316)
		if _, err := conn.Write(b[:n]); err != nil {
			return // the server may already have hung up
		}
		b = b[n:]
		time.Sleep(200 * time.Microsecond)
	}
}

// TestAuthorizeRefusal: a key with the right passphrase can still be turned
// away by the live side (channel busy, quota); the encoder fails to connect.
func TestAuthorizeRefusal(t *testing.T) {
	t.Parallel()
	ffmpeg := requireFFmpeg(t)
	pub := newTestPublisher(testKeys())
	pub.refuse = ingest.ErrChannelBusy
	port := startServer(t, pub, 0)
	run := startFFmpeg(t, ffmpeg, srtURL(port, secureKey, passphrase), 1)
	if err := run.wait(t, 15*time.Second); err == nil {
		t.Fatalf("ffmpeg succeeded; want it refused\n%s", run.stderr)
	}
	if _, reqs := pub.snapshot(); len(reqs) == 0 || reqs[0].StreamKey != secureKey {
		t.Errorf("Authorize requests %+v, want one for %s", reqs, secureKey)
	}
}

// TestShutdownEndsStreams: ending Serve's context closes live publications
// and reports why.
func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	ts, err := os.ReadFile("testdata/h264_aac.ts")
	if err != nil {
		t.Fatal(err)
	}
	pub := newTestPublisher(testKeys())
	port, shutdown := startServerCancel(t, pub, 0)
	conn := dialSRT(t, port, insecureKey, "")
	defer conn.Close()
	adm := pub.nextAdmission(t, 10*time.Second)
	writeChunks(t, conn, ts)
	st := adm.waitStream(t, 10*time.Second)
	shutdown()
	if reason := st.waitClosed(t, 10*time.Second); !errors.Is(reason, errShutdown) {
		t.Errorf("close reason %v, want errShutdown", reason)
	}
}
