package rtmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
)

// ffmpegPath finds the real encoder. A missing ffmpeg fails the test unless
// OPENIVS_NO_FFMPEG=1, because a silently skipped protocol test proves
// nothing.
func ffmpegPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ffmpeg")
	if err == nil {
		return p
	}
	if os.Getenv("OPENIVS_NO_FFMPEG") == "1" {
		t.Skipf("\n!!!!!!!! SKIPPED: ffmpeg is not on PATH and OPENIVS_NO_FFMPEG=1. " +
			"The RTMP ingest was NOT tested against a real encoder. !!!!!!!!")
	}
	t.Fatalf("ffmpeg is not on PATH (%v); install the Debian ffmpeg package or set OPENIVS_NO_FFMPEG=1 to skip", err)
	return ""
}

// ffmpegResult is how an ffmpeg run ended.
type ffmpegResult struct {
	err     error
	stderr  string
	elapsed time.Duration
}

type encodeOpts struct {
	seconds float64 // -t; 0 runs until killed
	noVideo bool
	extra   []string
}

// ffmpegArgs is the brief's reference encoder: x264 Main 640x360@30, GOP 30,
// AAC-LC 48 kHz stereo, paced in real time.
func ffmpegArgs(target string, o encodeOpts) []string {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "warning", "-re"}
	if !o.noVideo {
		args = append(args, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30")
	}
	args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	if o.seconds > 0 {
		args = append(args, "-t", fmt.Sprint(o.seconds))
	}
	if !o.noVideo {
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
			"-g", "30", "-b:v", "800k", "-profile:v", "main")
	}
	args = append(args, "-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2")
	args = append(args, o.extra...)
	return append(args, "-f", "flv", target)
}

// runFFmpeg runs ffmpeg to its end (bounded by limit).
func runFFmpeg(t *testing.T, limit time.Duration, args []string) ffmpegResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	return startFFmpeg(t, ctx, args).wait()
}

type ffmpegRun struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	start  time.Time
	done   chan struct{} // closed when ffmpeg exited; res is then set
	res    ffmpegResult
}

func startFFmpeg(t *testing.T, ctx context.Context, args []string) *ffmpegRun {
	t.Helper()
	cmd := exec.CommandContext(ctx, ffmpegPath(t), args...)
	r := &ffmpegRun{cmd: cmd, stderr: &lockedBuffer{}, start: time.Now(), done: make(chan struct{})}
	cmd.Stderr = r.stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ffmpeg: %v", err)
	}
	go func() {
		err := cmd.Wait()
		r.res = ffmpegResult{err: err, stderr: r.stderr.String(), elapsed: time.Since(r.start)}
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.done
	})
	return r
}

func (r *ffmpegRun) wait() ffmpegResult {
	<-r.done
	return r.res
}

func testKey(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("sk_us-west-2_%x", b)
}

func TestPublishH264AAC(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	before := time.Now()

	res := runFFmpeg(t, 30*time.Second, ffmpegArgs("rtmp://"+srv.addr+"/app/"+key,
		encodeOpts{seconds: 3}))
	if res.err != nil {
		t.Fatalf("ffmpeg failed: %v\n%s", res.err, res.stderr)
	}
	var st *testStream
	waitFor(t, 5*time.Second, "stream start", func() bool {
		_, starts, _ := pub.snapshot()
		if len(starts) == 1 {
			st = starts[0]
		}
		return st != nil
	})
	select {
	case <-st.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("stream not closed after ffmpeg ended")
	}
	if st.reason != nil {
		t.Errorf("Close reason = %v, want nil (ffmpeg unpublished cleanly)", st.reason)
	}

	reqs, _, aborts := pub.snapshot()
	if len(reqs) != 1 || len(aborts) != 0 {
		t.Fatalf("requests %d aborts %v, want 1 and none", len(reqs), aborts)
	}
	req := reqs[0]
	if req.Protocol != ingest.RTMP || req.StreamKey != key || req.HasPriority || req.Priority != 0 {
		t.Errorf("request = %+v", req)
	}
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err != nil || host != "127.0.0.1" {
		t.Errorf("RemoteAddr = %q", req.RemoteAddr)
	}
	// ffmpeg 5.1 always writes its own libavformat ident as onMetaData
	// "encoder" (it overrides -metadata encoder=...), like OBS writes its name.
	if !strings.HasPrefix(st.encoder, "Lavf") {
		t.Errorf("encoder = %q, want ffmpeg's Lavf ident from onMetaData", st.encoder)
	}

	if len(st.tracks) != 2 {
		t.Fatalf("tracks = %+v, want video+audio", st.tracks)
	}
	v, a := st.tracks[0], st.tracks[1]
	if v.ID != 0 || v.Kind != media.Video || v.Codec != media.CodecH264 || v.Width != 640 || v.Height != 360 ||
		v.Profile != "Main" || v.Level != "3.0" || v.CodecString != "avc1.4D401E" || len(v.SPS) == 0 || len(v.PPS) == 0 {
		t.Errorf("video track = %+v", v)
	}
	if a.ID != 1 || a.Kind != media.Audio || a.Codec != media.CodecAAC || a.SampleRate != 48000 || a.Channels != 2 ||
		a.AACObject != 2 || a.CodecString != "mp4a.40.2" || len(a.AudioConfig) < 2 {
		t.Errorf("audio track = %+v", a)
	}

	frames := st.snapshot()
	var video, audio []media.Frame
	for i, f := range frames {
		if f.Wall.Before(before) || f.Wall.After(time.Now()) {
			t.Fatalf("frame %d Wall %v outside the test run", i, f.Wall)
		}
		if i > 0 && f.Wall.Before(frames[i-1].Wall) {
			t.Fatalf("frame %d Wall goes backwards", i)
		}
		switch f.Track {
		case 0:
			video = append(video, f)
		case 1:
			audio = append(audio, f)
		default:
			t.Fatalf("frame for unknown track %d", f.Track)
		}
	}
	// 3 s at 30 fps; a few frames may still be in the encoder at the end.
	if len(video) < 80 || len(video) > 91 {
		t.Errorf("%d video frames, want ~90", len(video))
	}
	if len(audio) < 120 {
		t.Errorf("%d audio frames, want ~140", len(audio))
	}
	// Media time counts from the stream's first frame, whichever track.
	if len(frames) > 0 && frames[0].DTS != 0 {
		t.Errorf("first frame DTS = %v, want 0", frames[0].DTS)
	}
	if len(video) > 0 && (video[0].DTS < 0 || video[0].DTS > 100*time.Millisecond || !video[0].Key) {
		t.Errorf("first video frame DTS %v key %v, want ~0 and a keyframe", video[0].DTS, video[0].Key)
	}
	for i, f := range video {
		if i > 0 && f.DTS <= video[i-1].DTS {
			t.Fatalf("video DTS not increasing at %d: %v after %v", i, f.DTS, video[i-1].DTS)
		}
		if f.PTS < f.DTS {
			t.Errorf("video frame %d PTS %v < DTS %v", i, f.PTS, f.DTS)
		}
		if f.Key != (i%30 == 0) {
			t.Errorf("video frame %d key=%v, want keyframes exactly every 30 frames", i, f.Key)
		}
		if f.Key != h264.IsRandomAccess(f.NALUs) {
			t.Errorf("video frame %d Key disagrees with its NAL units", i)
		}
		hasVCL := false
		for _, n := range f.NALUs {
			if len(n) == 0 {
				t.Fatalf("video frame %d has an empty NAL unit", i)
			}
			if typ := n[0] & 0x1f; typ >= 1 && typ <= 5 {
				hasVCL = true
			}
		}
		if !hasVCL {
			t.Errorf("video frame %d carries no picture", i)
		}
	}
	for i, f := range audio {
		if i > 0 && f.DTS <= audio[i-1].DTS {
			t.Fatalf("audio DTS not increasing at %d", i)
		}
		if len(f.NALUs) != 1 || len(f.NALUs[0]) == 0 || f.Key {
			t.Fatalf("audio frame %d = %d NALUs key %v", i, len(f.NALUs), f.Key)
		}
	}
	// -re paces 3 s of media over ~3 s; Wall must be arrival time, not the
	// moment gortmplib replays what it buffered during track discovery.
	if len(video) > 60 {
		if spread := video[len(video)-1].Wall.Sub(video[0].Wall); spread < 2*time.Second {
			t.Errorf("video Wall spans %v, want ≥2 s (arrival times lost during discovery?)", spread)
		}
	}
	if strings.Contains(srv.logs.String(), key) {
		t.Errorf("the stream key appears in the logs")
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	cases := []struct {
		name     string
		path     string
		wantAuth bool   // reached Authorize
		wantMsg  string // the onStatus description ffmpeg prints
	}{
		{name: "unknown key", path: "/app/sk_us-west-2_unknown", wantAuth: true, wantMsg: "invalid stream key"},
		{name: "wrong app", path: "/live/" + key, wantMsg: `RTMP application must be "app"`},
		{name: "garbage priority", path: "/app/" + key + "?priority=abc", wantMsg: "priority must be"},
		{name: "negative priority", path: "/app/" + key + "?priority=-1", wantMsg: "priority must be"},
		{name: "no key", path: "/app/", wantMsg: "stream key missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub := newTestPublisher(key)
			srv := startServer(t, pub, ingest.RTMP, nil, Config{})
			res := runFFmpeg(t, 20*time.Second, ffmpegArgs("rtmp://"+srv.addr+tc.path, encodeOpts{seconds: 3}))
			if res.err == nil {
				t.Fatalf("ffmpeg succeeded; want it refused\n%s", res.stderr)
			}
			if res.elapsed > 5*time.Second {
				t.Errorf("refusal took %v; want it at once", res.elapsed)
			}
			reqs, starts, _ := pub.snapshot()
			if (len(reqs) > 0) != tc.wantAuth {
				t.Errorf("Authorize calls = %d, want reached=%v", len(reqs), tc.wantAuth)
			}
			if len(starts) != 0 {
				t.Errorf("Start called %d times for a refused publish", len(starts))
			}
			if !strings.Contains(res.stderr, tc.wantMsg) {
				t.Errorf("ffmpeg did not show the refusal %q:\n%s", tc.wantMsg, res.stderr)
			}
		})
	}
}

func TestPriorityParsed(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher() // refuse: only the request matters
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	res := runFFmpeg(t, 20*time.Second, ffmpegArgs("rtmp://"+srv.addr+"/app/"+key+"?priority=5", encodeOpts{seconds: 1}))
	if res.err == nil {
		t.Fatalf("ffmpeg succeeded with an unknown key")
	}
	reqs, _, _ := pub.snapshot()
	if len(reqs) != 1 {
		t.Fatalf("requests = %+v", reqs)
	}
	if r := reqs[0]; r.StreamKey != key || !r.HasPriority || r.Priority != 5 {
		t.Errorf("request: key matches %v, priority %d, has %v; want the key alone and priority 5",
			r.StreamKey == key, r.Priority, r.HasPriority)
	}
}

func TestPlayRefused(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	res := runFFmpeg(t, 20*time.Second, []string{"-hide_banner", "-nostdin", "-loglevel", "warning",
		"-i", "rtmp://" + srv.addr + "/app/" + key, "-t", "1", "-f", "null", "-"})
	if res.err == nil {
		t.Fatalf("playing succeeded")
	}
	if res.elapsed > 5*time.Second {
		t.Errorf("play refusal took %v", res.elapsed)
	}
	if reqs, _, _ := pub.snapshot(); len(reqs) != 0 {
		t.Errorf("a play request reached Authorize: %+v", reqs)
	}
}

// TestLiveSideEnds: Done closing and a WriteFrame error each disconnect
// the encoder promptly.
func TestLiveSideEnds(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"done", "write error"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			key := testKey(t)
			pub := newTestPublisher(key)
			pub.configure = func(s *testStream) {
				if mode == "done" {
					s.endAfter = 100
				} else {
					s.failAfter = 100
				}
			}
			srv := startServer(t, pub, ingest.RTMP, nil, Config{})
			// No -t: only the server can end this run.
			res := runFFmpeg(t, 25*time.Second, ffmpegArgs("rtmp://"+srv.addr+"/app/"+key, encodeOpts{}))
			if res.elapsed > 15*time.Second {
				t.Fatalf("ffmpeg ran %v; the server did not disconnect it", res.elapsed)
			}
			_, starts, _ := pub.snapshot()
			if len(starts) != 1 {
				t.Fatalf("starts = %d", len(starts))
			}
			st := starts[0]
			select {
			case <-st.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("stream not closed")
			}
			if st.reason == nil {
				t.Errorf("Close(nil) after the live side ended the stream; want a reason")
			}
			if n := len(st.snapshot()); n < 100 || n > 101 {
				t.Errorf("%d frames recorded", n)
			}
		})
	}
}

func TestRTMPS(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	cert := selfSignedCert(t)
	srv := startServer(t, pub, ingest.RTMPS, func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}, Config{})
	res := runFFmpeg(t, 30*time.Second, ffmpegArgs("rtmps://"+srv.addr+"/app/"+key, encodeOpts{seconds: 3}))
	if res.err != nil {
		t.Fatalf("ffmpeg over RTMPS failed: %v\n%s", res.err, res.stderr)
	}
	var st *testStream
	waitFor(t, 5*time.Second, "stream", func() bool {
		_, starts, _ := pub.snapshot()
		if len(starts) == 1 {
			st = starts[0]
		}
		return st != nil
	})
	<-st.closed
	if st.req.Protocol != ingest.RTMPS {
		t.Errorf("Protocol = %q", st.req.Protocol)
	}
	if len(st.tracks) != 2 || st.tracks[0].Codec != media.CodecH264 || st.tracks[1].Codec != media.CodecAAC {
		t.Errorf("tracks = %+v", st.tracks)
	}
	if n := len(st.snapshot()); n < 150 {
		t.Errorf("%d frames over RTMPS, want ~230", n)
	}

	// Plain RTMP against the TLS port is refused at the TLS layer.
	res = runFFmpeg(t, 20*time.Second, ffmpegArgs("rtmp://"+srv.addr+"/app/"+key, encodeOpts{seconds: 1}))
	if res.err == nil {
		t.Errorf("plain RTMP to the RTMPS listener succeeded")
	}
}

func TestAudioOnlyGoesToAdmission(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	res := runFFmpeg(t, 30*time.Second, ffmpegArgs("rtmp://"+srv.addr+"/app/"+key, encodeOpts{seconds: 3, noVideo: true}))
	if res.err == nil {
		t.Errorf("ffmpeg audio-only publish succeeded although admission refused it")
	}
	_, starts, aborts := pub.snapshot()
	if len(starts) != 1 {
		t.Fatalf("Start calls = %d, want 1 (audio-only must reach admission)", len(starts))
	}
	if tr := starts[0].tracks; len(tr) != 1 || tr[0].Codec != media.CodecAAC {
		t.Errorf("tracks = %+v", tr)
	}
	if starts[0].refused == nil || len(aborts) != 1 || !errors.Is(aborts[0], ingest.ErrCodec) {
		t.Errorf("refused %v aborts %v; want the admission refusal passed to Abort", starts[0].refused, aborts)
	}
	if n := len(starts[0].snapshot()); n != 0 {
		t.Errorf("%d frames written to a refused stream", n)
	}
}

// TestHEVC: Debian's ffmpeg 5.1 cannot mux HEVC into FLV ("Video codec hevc
// not compatible with flv"; Enhanced RTMP arrived in ffmpeg 6.1), so libx265
// encodes the picture and gortmplib's client publishes it over Enhanced RTMP.
func TestHEVC(t *testing.T) {
	t.Parallel()
	ff := ffmpegPath(t)
	if out, err := exec.Command(ff, "-hide_banner", "-encoders").Output(); err != nil || !strings.Contains(string(out), "libx265") {
		t.Skipf("\n!!!!!!!! SKIPPED: this ffmpeg has no libx265; HEVC ingest NOT tested !!!!!!!!")
	}
	file := filepath.Join(t.TempDir(), "in.h265")
	res := runFFmpeg(t, 60*time.Second, []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "3",
		"-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "bframes=0:aud=1:repeat-headers=1:keyint=30:log-level=error", "-f", "hevc", file})
	if res.err != nil {
		t.Fatalf("x265 encode: %v\n%s", res.err, res.stderr)
	}
	aus, vps, sps, pps := hevcAccessUnits(t, file)

	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	track := &gortmplib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}}
	c, w := publishWriter(t, srv, key, track)
	var writeErr error
	for i, au := range aus {
		ts := time.Duration(i) * time.Second / 30
		if writeErr = w.WriteH265(track, ts, ts, au); writeErr != nil {
			break
		}
	}
	waitFor(t, 10*time.Second, "Start with the HEVC track", func() bool {
		_, starts, aborts := pub.snapshot()
		return len(starts) == 1 && len(aborts) == 1
	})
	_, starts, aborts := pub.snapshot()
	tr := starts[0].tracks
	if len(tr) != 1 || tr[0].Codec != media.CodecH265 || tr[0].Kind != media.Video || tr[0].Width != 640 || tr[0].Height != 360 {
		t.Errorf("tracks = %+v", tr)
	}
	if !errors.Is(aborts[0], ingest.ErrCodec) {
		t.Errorf("Abort(%v), want the codec refusal", aborts[0])
	}
	// The server hangs up: the client's next read ends.
	_ = c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.Read(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("connection still open after the codec refusal")
			}
			break
		}
	}
}

// hevcAccessUnits splits an Annex-B HEVC file on its AUD NAL units.
func hevcAccessUnits(t *testing.T, file string) (aus [][][]byte, vps, sps, pps []byte) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	nalus := splitAnnexB(raw)
	var cur [][]byte
	for _, n := range nalus {
		switch (n[0] >> 1) & 0x3f {
		case 35: // AUD
			if len(cur) > 0 {
				aus = append(aus, cur)
			}
			cur = nil
			continue
		case 32:
			vps = n
		case 33:
			sps = n
		case 34:
			pps = n
		}
		cur = append(cur, n)
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	if len(aus) < 80 || vps == nil || sps == nil || pps == nil {
		t.Fatalf("x265 output: %d access units, parameter sets %v %v %v", len(aus), vps != nil, sps != nil, pps != nil)
	}
	return aus, vps, sps, pps
}

// TestGarbageThenGood: a peer sending junk loses only its own connection.
func TestGarbageThenGood(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{HandshakeTimeout: 3 * time.Second})

	for _, junk := range [][]byte{
		randomBytes(4096),
		append([]byte{3}, randomBytes(1536*2+500)...), // RTMP version byte, then noise
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	} {
		nc, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write(junk)
		_ = nc.SetReadDeadline(time.Now().Add(8 * time.Second))
		buf := make([]byte, 8192)
		for {
			if _, err = nc.Read(buf); err != nil {
				break
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("server kept a junk connection open: %.16q", junk)
		}
		nc.Close()
	}

	res := runFFmpeg(t, 30*time.Second, ffmpegArgs("rtmp://"+srv.addr+"/app/"+key, encodeOpts{seconds: 3}))
	if res.err != nil {
		t.Fatalf("good publish after junk failed: %v\n%s", res.err, res.stderr)
	}
	_, starts, _ := pub.snapshot()
	if len(starts) != 1 || len(starts[0].snapshot()) < 150 {
		t.Fatalf("the good publish did not flow")
	}
}

// TestShutdownEndsStreams: cancelling Serve's context disconnects a live
// encoder, closes its stream and returns only after the connection ended.
func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- NewServer(Config{Publisher: pub}).Serve(ctx, ln, ingest.RTMP) }()

	run := startFFmpeg(t, t.Context(), ffmpegArgs("rtmp://"+ln.Addr().String()+"/app/"+key, encodeOpts{}))
	var st *testStream
	waitFor(t, 15*time.Second, "frames", func() bool {
		_, starts, _ := pub.snapshot()
		if len(starts) == 1 {
			st = starts[0]
		}
		return st != nil && len(st.snapshot()) > 10
	})
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	select {
	case <-st.closed:
	default:
		t.Fatal("Serve returned before the stream was closed")
	}
	if st.reason == nil {
		t.Errorf("Close(nil) on shutdown; want a reason")
	}
	select {
	case <-run.done:
	case <-time.After(10 * time.Second):
		t.Errorf("ffmpeg still running after the server stopped")
	}
}

// splitAnnexB cuts an Annex-B byte stream at its start codes (mediacommon's
// AnnexB caps a unit at 50 NALUs, and this is a whole file).
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+3 <= len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				if end > start {
					out = append(out, b[start:end])
				}
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "openivs test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}

// publishWriter connects gortmplib's client to srv, publishes key and
// returns it with a Writer that has sent the tracks' onMetaData and
// configs. The connection closes when the test ends.
func publishWriter(t *testing.T, srv *testServer, key string, tracks ...*gortmplib.Track) (*gortmplib.Client, *gortmplib.Writer) {
	t.Helper()
	u, _ := url.Parse("rtmp://" + srv.addr + "/app#" + key)
	c := &gortmplib.Client{URL: u, Publish: true}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		t.Fatalf("RTMP client: %v", err)
	}
	t.Cleanup(c.Close)
	w := &gortmplib.Writer{Conn: c, Tracks: tracks}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	return c, w
}
