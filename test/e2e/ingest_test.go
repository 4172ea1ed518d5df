package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// encoder is a real ffmpeg publishing a test pattern with a sine tone.
type encoder struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan error
}

type encodeOpts struct {
	size    string // WxH, default 320x180
	bitrate string // video bitrate, default 300k
	codec   string // default libx264
	preset  string // x264 preset, default ultrafast (which only ever makes Constrained Baseline)
	noVideo bool
	seconds int // default 60: tests end it themselves
	format  string
}

func ffmpegPath(t testing.TB) string {
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("OPENIVS_NO_FFMPEG") == "1" {
			t.Skip("SKIPPING: ffmpeg is not installed and OPENIVS_NO_FFMPEG=1")
		}
		t.Fatal("ffmpeg is not installed (make test installs it; set OPENIVS_NO_FFMPEG=1 to skip)")
	}
	return path
}

func startEncoder(t testing.TB, url string, o encodeOpts) *encoder {
	t.Helper()
	if o.size == "" {
		o.size = "320x180"
	}
	if o.bitrate == "" {
		o.bitrate = "300k"
	}
	if o.codec == "" {
		o.codec = "libx264"
	}
	if o.preset == "" {
		o.preset = "ultrafast"
	}
	if o.seconds == 0 {
		o.seconds = 60
	}
	if o.format == "" {
		o.format = "flv"
		if strings.HasPrefix(url, "srt://") {
			o.format = "mpegts"
		}
	}
	args := []string{"-hide_banner", "-loglevel", "warning", "-re"}
	if !o.noVideo {
		args = append(args, "-f", "lavfi", "-i", "testsrc2=size="+o.size+":rate=30")
	}
	args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", strconv.Itoa(o.seconds))
	if !o.noVideo {
		args = append(args, "-c:v", o.codec, "-preset", o.preset, "-tune", "zerolatency", "-g", "30", "-b:v", o.bitrate, "-pix_fmt", "yuv420p")
		if o.codec == "libx264" {
			// CBR with filler data: the bitrate holds even on a simple test pattern.
			args = append(args, "-profile:v", "main", "-minrate", o.bitrate, "-maxrate", o.bitrate, "-bufsize", o.bitrate,
				"-x264-params", "nal-hrd=cbr")
		}
	}
	args = append(args, "-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2", "-f", o.format, url)
	return startFFmpegEncoder(t, args...)
}

// startFFmpegEncoder runs ffmpeg with args as an encoder, killed when the
// test ends.
func startFFmpegEncoder(t testing.TB, args ...string) *encoder {
	t.Helper()
	e := &encoder{cmd: exec.Command(ffmpegPath(t), args...), out: &lockedBuffer{}, exited: make(chan error, 1)}
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.exited <- e.cmd.Wait() }()
	t.Cleanup(func() {
		_ = e.cmd.Process.Signal(syscall.SIGCONT)
		_ = e.cmd.Process.Kill()
		<-e.exitedOnce()
	})
	return e
}

// exitedOnce returns a channel that yields the exit once, then stays open-ended.
func (e *encoder) exitedOnce() <-chan error {
	ch := make(chan error, 1)
	select {
	case err, ok := <-e.exited:
		if ok {
			ch <- err
			close(e.exited)
		} else {
			ch <- nil
		}
	default:
		go func() {
			err, ok := <-e.exited
			if ok {
				close(e.exited)
			}
			ch <- err
		}()
	}
	return ch
}

// waitExit waits for ffmpeg to end and reports whether it did in time.
func (e *encoder) waitExit(d time.Duration) bool {
	select {
	case <-e.exitedOnce():
		return true
	case <-time.After(d):
		return false
	}
}

func rtmpsURL(srv *server, key string) string {
	return fmt.Sprintf("rtmps://127.0.0.1:%d/app/%s", srv.RTMPS, key)
}

func rtmpURL(srv *server, key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/app/%s", srv.RTMP, key)
}

func srtURL(srv *server, key, passphrase string) string {
	u := fmt.Sprintf("srt://127.0.0.1:%d?streamid=%s&pkt_size=1316", srv.SRT, key)
	if passphrase != "" {
		u += "&passphrase=" + passphrase
	}
	return u
}

// waitLive polls GetStream until the channel is live.
func waitLive(t testing.TB, c *ivs.Client, arn *string, e *encoder) *types.Stream {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: arn})
		if err == nil {
			return out.Stream
		}
		var nb *types.ChannelNotBroadcasting
		if !errors.As(err, &nb) {
			t.Fatalf("GetStream: %v", err)
		}
		if time.Now().After(deadline) {
			said := "(no ffmpeg)"
			if e != nil {
				said = e.out.String()
			}
			t.Fatalf("channel not live within 15 s; ffmpeg said:\n%s", said)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOffline polls GetStream until the channel is not broadcasting.
func waitOffline(t testing.TB, c *ivs.Client, arn *string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: arn})
		var nb *types.ChannelNotBroadcasting
		if errors.As(err, &nb) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel still live after %v (%v)", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventNames lists a session's events oldest first as "name" or "name/code".
func eventNames(s *types.StreamSession) []string {
	var out []string
	for i := len(s.TruncatedEvents) - 1; i >= 0; i-- {
		e := s.TruncatedEvents[i]
		n := aws.ToString(e.Name)
		if c := aws.ToString(e.Code); c != "" {
			n += "/" + c
		}
		out = append(out, n)
	}
	return out
}

func latestSession(t testing.TB, c *ivs.Client, arn *string) *types.StreamSession {
	t.Helper()
	out, err := c.GetStreamSession(context.Background(), &ivs.GetStreamSessionInput{ChannelArn: arn})
	must(t, err, "GetStreamSession")
	return out.StreamSession
}

func TestIngestRTMPSLifecycle(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Name: aws.String("live")})
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", preset: "veryfast"})
	st := waitLive(t, c, ch.Channel.Arn, enc)
	eq(t, "state", st.State, types.StreamStateStreamLive)
	eq(t, "health", st.Health, types.StreamHealthStreamHealthy)
	eq(t, "playbackUrl", aws.ToString(st.PlaybackUrl), aws.ToString(ch.Channel.PlaybackUrl))
	if id := aws.ToString(st.StreamId); len(id) != 26 || !strings.HasPrefix(id, "st-") {
		t.Errorf("streamId %q", id)
	}
	list, err := c.ListStreams(context.Background(), &ivs.ListStreamsInput{})
	must(t, err, "ListStreams")
	eq(t, "live streams", len(list.Streams), 1)

	// Let the bitrate and frame-rate figures settle, then read the session.
	time.Sleep(6 * time.Second)
	sess := latestSession(t, c, ch.Channel.Arn)
	eq(t, "session stream id", aws.ToString(sess.StreamId), aws.ToString(st.StreamId))
	ic := sess.IngestConfiguration
	if ic == nil || ic.Video == nil || ic.Audio == nil {
		t.Fatalf("ingestConfiguration %+v", ic)
	}
	eq(t, "videoWidth", ic.Video.VideoWidth, int64(640))
	eq(t, "videoHeight", ic.Video.VideoHeight, int64(360))
	eq(t, "avcProfile", aws.ToString(ic.Video.AvcProfile), "Main")
	if codec := aws.ToString(ic.Video.Codec); !strings.HasPrefix(codec, "avc1.4D") {
		t.Errorf("video codec %q, want avc1.4D…", codec)
	}
	if fps := ic.Video.TargetFramerate; fps < 25 || fps > 35 {
		t.Errorf("targetFramerate %d, want about 30", fps)
	}
	if br := ic.Video.TargetBitrate; br < 300_000 || br > 1_600_000 {
		t.Errorf("video targetBitrate %d, want about 800k", br)
	}
	if !strings.Contains(strings.ToLower(aws.ToString(ic.Video.Encoder)), "lavf") {
		t.Errorf("encoder %q, want ffmpeg's Lavf…", aws.ToString(ic.Video.Encoder))
	}
	eq(t, "audio codec", aws.ToString(ic.Audio.Codec), "mp4a.40.2")
	eq(t, "sampleRate", ic.Audio.SampleRate, int64(48000))
	eq(t, "channels", ic.Audio.Channels, int64(2))

	// StopStream disconnects the encoder; the key keeps working.
	_, err = c.StopStream(context.Background(), &ivs.StopStreamInput{ChannelArn: ch.Channel.Arn})
	must(t, err, "StopStream")
	if !enc.waitExit(10 * time.Second) {
		t.Fatalf("ffmpeg still running 10 s after StopStream")
	}
	waitOffline(t, c, ch.Channel.Arn, 5*time.Second)
	deepEq(t, "events", eventNames(latestSession(t, c, ch.Channel.Arn)),
		[]string{"Session Created", "Stream Start", "Session Ended", "Stream End"})

	again := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{})
	st2 := waitLive(t, c, ch.Channel.Arn, again)
	if aws.ToString(st2.StreamId) == aws.ToString(st.StreamId) {
		t.Errorf("a new stream reused stream id %s", aws.ToString(st.StreamId))
	}
	// Ending the encoder ends the stream.
	_ = again.cmd.Process.Kill()
	waitOffline(t, c, ch.Channel.Arn, 5*time.Second)
	sessions, err := c.ListStreamSessions(context.Background(), &ivs.ListStreamSessionsInput{ChannelArn: ch.Channel.Arn})
	must(t, err, "ListStreamSessions")
	eq(t, "sessions", len(sessions.StreamSessions), 2)
}

func TestIngestRefusals(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{})
	key := aws.ToString(ch.StreamKey.Value)
	cases := []struct {
		name string
		url  string
		opts encodeOpts
	}{
		{"wrong key", rtmpsURL(srv, "sk_us-west-2_wrongwrongwrongwrong"), encodeOpts{}},
		{"plain RTMP on a secure channel", rtmpURL(srv, key), encodeOpts{}},
		{"audio only", rtmpsURL(srv, key), encodeOpts{noVideo: true}},
		{"SRT without passphrase on a secure channel", srtURL(srv, key, ""), encodeOpts{}},
		{"SRT with a wrong passphrase", srtURL(srv, key, "wrongpassphrase123"), encodeOpts{}},
		// ffmpeg 5.1 cannot put HEVC in FLV, so HEVC comes over SRT.
		{"HEVC", srtURL(srv, key, aws.ToString(ch.Channel.Srt.Passphrase)), encodeOpts{codec: "libx265"}},
	}
	for _, tc := range cases {
		enc := startEncoder(t, tc.url, tc.opts)
		if !enc.waitExit(10 * time.Second) {
			t.Errorf("%s: ffmpeg still running after 10 s", tc.name)
		}
		if _, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: ch.Channel.Arn}); err == nil {
			t.Errorf("%s: channel went live", tc.name)
		}
	}
}

func TestIngestSRTAndInsecure(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	secure := createChannel(t, c, &ivs.CreateChannelInput{})
	insecure := createChannel(t, c, &ivs.CreateChannelInput{InsecureIngest: true})

	cases := []struct {
		name string
		ch   *ivs.CreateChannelOutput
		url  string
	}{
		{"SRT with passphrase", secure, srtURL(srv, aws.ToString(secure.StreamKey.Value), aws.ToString(secure.Channel.Srt.Passphrase))},
		{"SRT without passphrase, insecure channel", insecure, srtURL(srv, aws.ToString(insecure.StreamKey.Value), "")},
		{"plain RTMP, insecure channel", insecure, rtmpURL(srv, aws.ToString(insecure.StreamKey.Value))},
	}
	for _, tc := range cases {
		enc := startEncoder(t, tc.url, encodeOpts{})
		st := waitLive(t, c, tc.ch.Channel.Arn, enc)
		eq(t, tc.name+": state", st.State, types.StreamStateStreamLive)
		_ = enc.cmd.Process.Kill()
		waitOffline(t, c, tc.ch.Channel.Arn, 10*time.Second)
	}
}

func TestIngestStarvationAndIdleTimeout(t *testing.T) {
	t.Parallel()
	hook := newEventReceiver(t)
	srv := startServer(t, serverOpts{Args: []string{"--stream-idle-timeout", "5s"}, Config: "event-sinks:\n" + hook.sinkYAML("hook", "")})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{})
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{})
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)

	health := func() types.StreamHealth {
		out, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: ch.Channel.Arn})
		must(t, err, "GetStream")
		return out.Stream.Health
	}
	waitHealth := func(want types.StreamHealth, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for health() != want {
			if time.Now().After(deadline) {
				t.Fatalf("health not %s within %v", want, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A paused encoder starves the stream; resumed, it recovers.
	must(t, enc.cmd.Process.Signal(syscall.SIGSTOP), "SIGSTOP")
	waitHealth(types.StreamHealthStarving, 4*time.Second)
	filtered, err := c.ListStreams(context.Background(), &ivs.ListStreamsInput{FilterBy: &types.StreamFilters{Health: types.StreamHealthStarving}})
	must(t, err, "ListStreams(STARVING)")
	eq(t, "starving streams", len(filtered.Streams), 1)
	must(t, enc.cmd.Process.Signal(syscall.SIGCONT), "SIGCONT")
	waitHealth(types.StreamHealthStreamHealthy, 4*time.Second)

	// Paused longer than the idle timeout: the stream ends.
	must(t, enc.cmd.Process.Signal(syscall.SIGSTOP), "SIGSTOP")
	waitOffline(t, c, ch.Channel.Arn, 10*time.Second)
	_ = enc.cmd.Process.Signal(syscall.SIGCONT)
	want := []string{
		"Session Created", "Stream Start", "Starvation Start", "Starvation End", "Starvation Start", "Session Ended", "Stream End",
	}
	deepEq(t, "events", eventNames(latestSession(t, c, ch.Channel.Arn)), want)
	// The same events reach the webhook, in order, in IVS's shape.
	arn := aws.ToString(ch.Channel.Arn)
	hook.wait(t, arn, 10*time.Second, want...)
	deepEq(t, "webhook events", names(hook.of(arn)), want)
	for _, e := range hook.of(arn) {
		checkEvent(t, e, arn)
		if strings.HasPrefix(e.name(), "Starvation") {
			eq(t, e.name()+" detail-type", e.DetailType, "IVS Stream Health Change")
		}
	}
	hook.verified(t)
}

func TestIngestTakeover(t *testing.T) {
	t.Parallel()
	hook := newEventReceiver(t)
	srv := startServer(t, serverOpts{Config: "event-sinks:\n" + hook.sinkYAML("hook", "")})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{})
	key := aws.ToString(ch.StreamKey.Value)

	first := startEncoder(t, rtmpsURL(srv, key+"?priority=1"), encodeOpts{})
	st := waitLive(t, c, ch.Channel.Arn, first)

	// Equal priority: refused.
	same := startEncoder(t, rtmpsURL(srv, key+"?priority=1"), encodeOpts{})
	if !same.waitExit(10 * time.Second) {
		t.Fatal("an equal-priority takeover is still connected")
	}
	// Higher priority but other media: refused once its media is known.
	other := startEncoder(t, rtmpsURL(srv, key+"?priority=3"), encodeOpts{size: "480x270"})
	if !other.waitExit(15 * time.Second) {
		t.Fatal("a mismatched takeover is still connected")
	}
	// Higher priority, same media: takes over; the first encoder is cut.
	second := startEncoder(t, rtmpsURL(srv, key+"?priority=2"), encodeOpts{})
	if !first.waitExit(15 * time.Second) {
		t.Fatalf("the taken-over encoder is still connected; second said:\n%s", second.out.String())
	}
	after := waitLive(t, c, ch.Channel.Arn, second)
	eq(t, "same stream id after takeover", aws.ToString(after.StreamId), aws.ToString(st.StreamId))
	got := eventNames(latestSession(t, c, ch.Channel.Arn))
	for _, want := range []string{"Stream Takeover Failure/StreamTakeoverInvalidPriority", "Stream Takeover Failure/StreamTakeoverMediaMismatch", "Stream Takeover"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("session events %v lack %s", got, want)
		}
	}
	if second.waitExit(time.Second) {
		t.Fatalf("the winning encoder stopped:\n%s", second.out.String())
	}
	arn := aws.ToString(ch.Channel.Arn)
	hook.wait(t, arn, 10*time.Second, "Session Created", "Stream Takeover Failure/StreamTakeoverInvalidPriority",
		"Stream Takeover Failure/StreamTakeoverMediaMismatch", "Stream Takeover")
	for _, e := range hook.of(arn) {
		checkEvent(t, e, arn)
		eq(t, e.name()+" stream_id", e.Detail["stream_id"], any(aws.ToString(st.StreamId)))
	}
	hook.verified(t)
}

func TestIngestLimits(t *testing.T) {
	t.Parallel()
	hook := newEventReceiver(t)
	srv := startServer(t, serverOpts{Config: "quotas:\n  concurrent-streams: 1\n  concurrent-views: 1\nevent-sinks:\n" + hook.sinkYAML("hook", "")})
	c := ivsClient(t, srv)
	basic := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	other := createChannel(t, c, &ivs.CreateChannelInput{})

	// Over 1080p: a Limit Breach, then the encoder is dropped.
	huge := startEncoder(t, rtmpsURL(srv, aws.ToString(basic.StreamKey.Value)), encodeOpts{size: "2560x1440", bitrate: "1M"})
	if !huge.waitExit(20 * time.Second) {
		t.Fatal("a 1440p encoder is still connected")
	}
	basicARN := aws.ToString(basic.Channel.Arn)
	res := hook.wait(t, basicARN, 5*time.Second, "Ingest Resolution")
	checkEvent(t, res, basicARN)
	eq(t, "resolution limit", res.Detail["limit_unit"], any("total pixels"))
	eq(t, "resolution limit value", res.Detail["limit_value"], any(float64(1920*1080)))
	eq(t, "resolution exceeded by", res.Detail["exceeded_by"], any(float64(2560*1440-1920*1080)))

	// BASIC at 360p allows 1.5 Mbps; 3 Mbps constant is dropped after a window.
	fast := startEncoder(t, rtmpsURL(srv, aws.ToString(basic.StreamKey.Value)), encodeOpts{
		size: "640x360", bitrate: "3M", seconds: 30,
	})
	waitLive(t, c, basic.Channel.Arn, fast)
	if !fast.waitExit(20 * time.Second) {
		t.Fatal("a 3 Mbps encoder on a BASIC 360p channel is still connected")
	}
	br := hook.wait(t, basicARN, 5*time.Second, "Ingest Bitrate")
	checkEvent(t, br, basicARN)
	eq(t, "bitrate limit unit", br.Detail["limit_unit"], any("bits per second"))
	waitOffline(t, c, basic.Channel.Arn, 5*time.Second)

	// Concurrent streams quota of 1: a second channel cannot go live.
	one := startEncoder(t, rtmpsURL(srv, aws.ToString(basic.StreamKey.Value)), encodeOpts{})
	waitLive(t, c, basic.Channel.Arn, one)
	two := startEncoder(t, rtmpsURL(srv, aws.ToString(other.StreamKey.Value)), encodeOpts{})
	if !two.waitExit(10 * time.Second) {
		t.Fatal("a stream over the concurrent quota is still connected")
	}
	cb := hook.wait(t, "", 5*time.Second, "Concurrent Broadcasts")
	checkEvent(t, cb, "")
	eq(t, "concurrent broadcasts limit", cb.Detail["limit_value"], any(float64(1)))
	eq(t, "concurrent broadcasts unit", cb.Detail["limit_unit"], any("active streams"))

	// Concurrent views quota of 1: the first viewer plays, a second is
	// turned away with 429 and a Concurrent Viewers breach.
	waitEvent(t, c, basic.Channel.Arn, "Stream Start", 15*time.Second)
	playbackURL := aws.ToString(basic.Channel.PlaybackUrl)
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		resp, err := http.Get(playbackURL)
		must(t, err, "GET playbackUrl")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("viewer %d: %d %s, want %d", i+1, resp.StatusCode, body, want)
		}
	}
	cv := hook.wait(t, "", 5*time.Second, "Concurrent Broadcasts", "Concurrent Viewers")
	checkEvent(t, cv, "")
	eq(t, "concurrent viewers limit", cv.Detail["limit_value"], any(float64(1)))
	eq(t, "concurrent viewers exceeded by", cv.Detail["exceeded_by"], any(float64(1)))
	eq(t, "concurrent viewers unit", cv.Detail["limit_unit"], any("viewers"))
	hook.verified(t)
	if _, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: other.Channel.Arn}); err == nil {
		t.Fatal("the channel over the quota is live")
	}
}

// waitLog waits for text in the server's log.
func waitLog(t *testing.T, srv *server, text string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(srv.Stderr(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in the server log within %v", text, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEvent waits until the channel's latest session has an event.
func waitEvent(t *testing.T, c *ivs.Client, arn *string, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		// The session record is written just after the stream goes live:
		// a moment's ResourceNotFound is expected.
		out, err := c.GetStreamSession(context.Background(), &ivs.GetStreamSessionInput{ChannelArn: arn})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Fatalf("GetStreamSession: %v", err)
		}
		if err == nil {
			for _, n := range eventNames(out.StreamSession) {
				if n == name {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q event within %v", name, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
