package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// transcodedStream is a STANDARD, LOW-latency channel that goes live fed
// 1080p30 (a 1080p passthrough rendition over four transcoded ones).
type transcodedStream struct {
	srv *server
	c   *ivs.Client
	ch  *ivs.CreateChannelOutput
	enc *encoder
	// renditions of the multivariant playlist, in its order.
	renditions []mvRendition
	// live is closed once the stream has started.
	live chan struct{}
}

func newTranscodedChannel(t *testing.T) *transcodedStream {
	t.Helper()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{
		Type: types.ChannelTypeStandardChannelType, LatencyMode: types.ChannelLatencyModeLowLatency,
	})
	return &transcodedStream{srv: srv, c: c, ch: ch, live: make(chan struct{})}
}

// goLive starts the 1080p30 encoder and waits for Stream Start. Tests call
// it once the browser lock is theirs (openTranscodePage): the encoder, the
// ladder transcode and Chromium decoding 1080p fill most of two cores, and
// must not run next to another test's browser.
func (s *transcodedStream) goLive(t *testing.T) {
	t.Helper()
	s.enc = startEncoder(t, rtmpsURL(s.srv, aws.ToString(s.ch.StreamKey.Value)), encodeOpts{size: "1920x1080", bitrate: "2500k", seconds: 600})
	waitLive(t, s.c, s.ch.Channel.Arn, s.enc)
	waitEvent(t, s.c, s.ch.Channel.Arn, "Stream Start", 30*time.Second)
	s.renditions = multivariantRenditions(t, playbackURL(s.srv, s.ch))
	// The STANDARD ladder of a 1080p30 input (spec 05 §7.6), highest first.
	want := []string{"1080p30", "720p30", "480p30", "360p30", "160p30"}
	if got := renditionNames(s.renditions); !slices.Equal(got, want) {
		t.Fatalf("multivariant renditions %v, want %v\n%s", got, want, transcodeLog(s.srv))
	}
	if !s.renditions[0].source || slices.ContainsFunc(s.renditions[1:], func(r mvRendition) bool { return r.source }) {
		t.Fatalf("the passthrough rendition is not (only) the first: %+v", s.renditions)
	}
	close(s.live)
}

func (s *transcodedStream) arn() *string { return s.ch.Channel.Arn }

func (s *transcodedStream) id() string {
	arn := aws.ToString(s.ch.Channel.Arn)
	return arn[strings.LastIndex(arn, "/")+1:]
}

// TestBrowserPlaysThroughTranscoderRestart: a STANDARD channel fed 1080p30
// plays in our player in Chromium, pinned to the top transcoded rendition
// (720p30; the 1080p passthrough would not notice a transcoder failure);
// the server's ffmpeg is SIGKILLed mid-stream. The supervisor logs the
// restart and has a new ffmpeg within 2 s, the killed one reaped; every
// transcoded rendition's playlist resumes after an EXT-X-DISCONTINUITY
// while the passthrough runs on without one; the player crosses the
// discontinuity and keeps playing (a stall of a few seconds at most, no
// error). When the stream ends no ffmpeg is left, zombie or not.
func TestBrowserPlaysThroughTranscoderRestart(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	ffmpegPath(t)
	s := newTranscodedChannel(t)
	srv := s.srv
	b := openTranscodePage(t, chromium, s)
	s.goLive(t)

	procs := liveChildren(srv.ChildProcesses(t, "ffmpeg"))
	if len(procs) != 1 {
		t.Fatalf("%d live ffmpeg children of the server, want the one transcoder: %+v", len(procs), srv.ChildProcesses(t, "ffmpeg"))
	}

	// Play a little in auto mode, then pin the top transcoded rendition.
	b.until("played 4 s", 90*time.Second, func(r browserReport) bool { return r.PlayedMs >= 4_000 })
	top := s.renditions[1]
	// By height: the player's names are checked in TestBrowserQualitiesAndABR.
	b.command(playerCommand{Height: top.height})
	b.until("playing "+top.name, 30*time.Second, func(r browserReport) bool {
		return r.QualityHeight == top.height && !r.AutoQuality && r.VideoHeight == top.height && r.State == "Playing"
	})
	pinned := b.latest()
	b.until("played 8 s, 2 of them on "+top.name, 30*time.Second, func(r browserReport) bool {
		return r.PlayedMs >= max(8_000, pinned.PlayedMs+2_000)
	})

	// Every rendition's playlist is watched from just before the kill.
	watch := watchPlaylists(t, s.renditions)
	before := b.latest()
	discBefore := countOf(before.Events, "PlayerSegmentDiscontinuity")
	victim := procs[0].PID
	must(t, syscall.Kill(victim, syscall.SIGKILL), "SIGKILL the transcoding ffmpeg")
	killed := time.Now()
	b.resetStall()

	// A new ffmpeg within 2 s, the killed one reaped (no zombie).
	var replacement childProcess
	var children []childProcess
	for {
		children = srv.ChildProcesses(t, "ffmpeg")
		gone := !slices.ContainsFunc(children, func(p childProcess) bool { return p.PID == victim })
		if i := slices.IndexFunc(children, func(p childProcess) bool { return p.PID != victim && p.State != "Z" }); i >= 0 && gone {
			replacement = children[i]
			break
		}
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("2 s after SIGKILL of ffmpeg %d the server's ffmpeg children are %+v; want the killed one reaped and a new one\n%s",
				victim, children, transcodeLog(srv))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("new ffmpeg %d (%s) %v after the kill of %d", replacement.PID, replacement.State, time.Since(killed).Round(time.Millisecond), victim)
	waitLog(t, srv, "transcode: restarting ffmpeg", 5*time.Second)

	// The player plays on through the restart: 10 s more of position.
	after := b.until("10 s of position after the kill", 40*time.Second, func(r browserReport) bool {
		return r.Position >= before.Position+10
	})
	if after.State != "Playing" {
		// A moment of Buffering on a loaded machine is not a stop: it
		// must be playing again shortly.
		after = b.until("Playing again after the kill", 10*time.Second, func(r browserReport) bool {
			return r.State == "Playing"
		})
	}
	if slices.Contains(after.Events, "PlayerError") {
		t.Errorf("the player reported an error after the kill: %v\n%s", after.Errors, b.describe(after))
	}
	// Typically ~2 s (the renditions resume ~1.8 s after the kill); the
	// bound leaves room for a CI machine whose 2 cores are also encoding.
	if stall := b.maxStall(); stall > 5*time.Second {
		t.Errorf("playback stalled %v after the kill (position not advancing), want at most 5 s\n%s", stall.Round(time.Millisecond), b.describe(after))
	}
	if countOf(after.Events, "PlayerSegmentDiscontinuity") <= discBefore {
		t.Errorf("no PlayerSegmentDiscontinuity event after the kill: the player did not cross the restart's discontinuity\n%s", b.describe(after))
	}
	// A blocking reload may time out in the restart's gap (hls.js gives
	// it 0.8 s here); a playlist that loaded (200) and was refused is the
	// server's doing.
	var refused []string
	for _, e := range after.Errors[min(len(before.Errors), len(after.Errors)):] {
		if strings.Contains(e, `"source":"MediaPlaylist"`) && strings.Contains(e, `"code":200`) {
			refused = append(refused, e)
		}
	}
	if len(refused) > 0 {
		t.Errorf("the player refused %d media playlist(s) after the kill: %v", len(refused), refused)
	}
	if after.QualityHeight != top.height || after.VideoHeight != top.height {
		t.Errorf("quality %q, video height %d after the restart, want the pinned %s; quality changes %v",
			after.Quality, after.VideoHeight, top.name, after.QualityChanges)
	}
	t.Logf("after the kill: longest stall %v, position %.1f → %.1f s in %v, %d PlayerRebuffering in all, quality %s",
		b.maxStall().Round(time.Millisecond), before.Position, after.Position, time.Since(killed).Round(time.Second),
		countOf(after.Events, "PlayerRebuffering"), after.Quality)

	// Every transcoded rendition resumed after a discontinuity, numbered
	// the same in every reload; the passthrough never stopped and has none.
	for _, r := range s.renditions {
		w := watch.stop(r.name)
		if w.err != nil {
			t.Errorf("rendition %s: %v", r.name, w.err)
			continue
		}
		switch {
		case !w.latest.last.after(w.atKill.last):
			t.Errorf("rendition %s: no new part or segment since the kill (at %v then and now)\n%s", r.name, w.atKill.last, w.latest.text)
		case r.source && w.latest.lastDSN() != w.atKill.lastDSN():
			t.Errorf("the passthrough rendition %s got a discontinuity from the transcoder's restart:\n%s", r.name, w.latest.text)
		case !r.source && w.resumed == 0:
			t.Errorf("rendition %s did not resume after a discontinuity: at the kill\n%s\nlast reload\n%s", r.name, w.atKill.text, w.latest.text)
		case !r.source:
			t.Logf("rendition %s resumed %v after the kill (a complete segment after a discontinuity)", r.name, w.resumed.Round(10*time.Millisecond))
		}
		if w.conflict != "" {
			t.Errorf("rendition %s: %s", r.name, w.conflict)
		}
		if w.atKill.target != w.latest.target {
			t.Logf("rendition %s: EXT-X-TARGETDURATION %d at the kill, %d after (RFC 8216 §6.2.1: must not change)", r.name, w.atKill.target, w.latest.target)
		}
	}

	// The stream ends: no ffmpeg is left behind.
	_, err := s.c.StopStream(t.Context(), &ivs.StopStreamInput{ChannelArn: s.arn()})
	must(t, err, "StopStream")
	if !s.enc.waitExit(10 * time.Second) {
		t.Errorf("the encoder still runs 10 s after StopStream")
	}
	waitOffline(t, s.c, s.arn(), 10*time.Second)
	offline := time.Now()
	for {
		children = srv.ChildProcesses(t, "ffmpeg")
		if len(children) == 0 {
			t.Logf("no ffmpeg child %v after the stream went offline", time.Since(offline).Round(time.Millisecond))
			break
		}
		// ffmpeg gets 3 s (stopGrace) to drain before it is killed; a
		// loaded CI machine has needed more than 5 s in all.
		if time.Since(offline) > 10*time.Second {
			t.Fatalf("10 s after the stream ended the server still has ffmpeg children %+v\n%s", children, transcodeLog(srv))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserQualitiesAndABR: our player in Chromium lists the qualities
// of a transcoded stream's multivariant playlist by name in the same
// order, and adapts: settled on a high quality, it switches down when the
// network (a throttling proxy in front of the server's media) drops to
// 500 kbit/s, plays there, and once the network recovers plays on and
// climbs back up (within 45 s; it takes 11–14 s here).
func TestBrowserQualitiesAndABR(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	ffmpegPath(t)
	s := newTranscodedChannel(t)
	b := openTranscodePage(t, chromium, s)
	s.goLive(t)

	rep := b.until("played 6 s", 90*time.Second, func(r browserReport) bool { return r.PlayedMs >= 6_000 && len(r.QualityNames) > 0 })
	// Names as the multivariant playlist's EXT-X-MEDIA NAME (VIDEO group)
	// says them, in its order (highest first).
	want := renditionNames(s.renditions)
	if got := slices.Sorted(slices.Values(rep.QualityNames)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("getQualities() names %v, want the multivariant playlist's %v", rep.QualityNames, want)
	} else if !slices.Equal(rep.QualityNames, want) {
		t.Errorf("getQualities() order %v, want the multivariant playlist's %v", rep.QualityNames, want)
	}

	// Settled on a high quality (720p or more) for 3 s.
	var highSince time.Time
	settled := b.until("auto quality settled at 720p or above for 3 s", 60*time.Second, func(r browserReport) bool {
		if r.QualityHeight < 720 || r.State != "Playing" {
			highSince = time.Time{}
			return false
		}
		if highSince.IsZero() {
			highSince = time.Now()
		}
		return time.Since(highSince) >= 3*time.Second
	})
	if !settled.AutoQuality {
		t.Fatalf("auto quality mode is off\n%s", b.describe(settled))
	}
	t.Logf("settled on %s (%d bit/s, video height %d) after %.1f s of play; quality changes %v",
		settled.Quality, settled.QualityBitrate, settled.VideoHeight, settled.PlayedMs/1000, settled.QualityChanges)

	// The network drops to 500 kbit/s: the player switches down.
	b.throttle.Store(500_000)
	throttled := time.Now()
	changes := len(settled.QualityChanges)
	down := b.until("a switch down under a 500 kbit/s network", 60*time.Second, func(r browserReport) bool {
		return r.QualityHeight > 0 && r.QualityHeight < settled.QualityHeight && len(r.QualityChanges) > changes
	})
	t.Logf("switched down to %s (%d bit/s) %v after the throttle; quality changes %v; state %s",
		down.Quality, down.QualityBitrate, time.Since(throttled).Round(100*time.Millisecond), down.QualityChanges, down.State)
	if down.QualityBitrate >= settled.QualityBitrate {
		t.Errorf("quality %s (%d bit/s) after the switch down, from %s (%d bit/s)", down.Quality, down.QualityBitrate, settled.Quality, settled.QualityBitrate)
	}
	// Let it settle under the throttle: a rendition the network carries.
	low := b.until("playing under the throttle", 60*time.Second, func(r browserReport) bool {
		return r.State == "Playing" && r.QualityHeight < settled.QualityHeight && time.Since(throttled) > 20*time.Second
	})
	t.Logf("20 s into the throttle: %s, state %s, quality changes %v", low.Quality, low.State, low.QualityChanges)

	// The network recovers: the player plays on and climbs back up.
	b.throttle.Store(0)
	recovered := time.Now()
	b.resetStall()
	pos := b.latest().Position
	var climbed browserReport
	end := b.until("10 s of position after the network recovered", 60*time.Second, func(r browserReport) bool {
		if climbed.Quality == "" && r.QualityHeight > low.QualityHeight {
			climbed = r
			t.Logf("climbed back to %s %v after the network recovered", r.Quality, time.Since(recovered).Round(100*time.Millisecond))
		}
		return r.Position >= pos+10 && (climbed.Quality != "" || time.Since(recovered) > 45*time.Second)
	})
	if end.State != "Playing" || slices.Contains(end.Events, "PlayerError") {
		t.Errorf("state %q after the network recovered, errors %v\n%s", end.State, end.Errors, b.describe(end))
	}
	if climbed.Quality == "" {
		t.Errorf("no climb back above %s within %v of the network recovering\n%s", low.Quality, time.Since(recovered).Round(time.Second), b.describe(end))
	}
}

// --- the browser side ---

// playerCommand is what the test asks the page's player to do.
type playerCommand struct {
	Seq     int    `json:"seq"`
	Quality string `json:"quality,omitempty"` // setQuality by name
	Height  int    `json:"height,omitempty"`  // setQuality by height
	Auto    bool   `json:"auto,omitempty"`    // setAutoQualityMode(true)
}

// commandScript runs the test's commands on window.player.
const commandScript = `(function () {
  var done = 0;
  setInterval(function () {
    var p = window.player; if (!p) return;
    fetch('/__command').then(function (r) { return r.json(); }).then(function (c) {
      if (!c || c.seq <= done) return;
      done = c.seq;
      if (c.quality) {
        var q = p.getQualities().filter(function (q) { return q.name === c.quality; })[0];
        if (q) p.setQuality(q);
      }
      if (c.height) {
        var h = p.getQualities().filter(function (q) { return q.height === c.height; })[0];
        if (h) p.setQuality(h);
      }
      if (c.auto) p.setAutoQualityMode(true);
    }).catch(function () {});
  }, 250);
})();`

// transcodePage is our player on the demo page, its playlists and media
// through the test's proxy, which can throttle the media. The page is held
// back until the stream is live.
type transcodePage struct {
	t        *testing.T
	srv      *server
	snapshot func() (browserReport, int)
	chromium func() string
	// throttle is the media rate in bit/s; 0: as fast as it goes.
	throttle *atomic.Int64

	mu  sync.Mutex
	cmd playerCommand

	// Watching: the newest report and how long the position stood still.
	reports     int
	rep         browserReport
	lastPos     float64
	lastAdvance time.Time
	stall       time.Duration
}

func openTranscodePage(t *testing.T, chromium string, s *transcodedStream) *transcodePage {
	t.Helper()
	srv := s.srv
	p := &transcodePage{t: t, srv: srv, throttle: &atomic.Int64{}}
	pb := aws.ToString(s.ch.Channel.PlaybackUrl)
	playbackOrigin := pb[:strings.Index(pb, "/api/")]
	lim := &rateLimiter{bps: p.throttle}
	// Playlists and media go through a proxy of our own, quiet about the
	// requests the player aborts (it does when it switches renditions).
	target, _ := url.Parse(srv.Endpoint)
	playback := httputil.NewSingleHostReverseProxy(target)
	playback.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() == nil {
			t.Logf("proxy: %s: %v", r.URL.Path, err)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch path := r.URL.Path; {
			case path == "/__command":
				p.mu.Lock()
				cmd := p.cmd
				p.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(cmd)
			case path == "/__command.js":
				w.Header().Set("Content-Type", "text/javascript")
				_, _ = io.WriteString(w, commandScript)
			case strings.HasPrefix(path, "/play/"):
				// Chromium (holding the browser lock) waits for the page
				// until the stream is live.
				select {
				case <-s.live:
				case <-r.Context().Done():
					return
				case <-t.Context().Done():
					return
				}
				// The page plays through this proxy too (its playback URL
				// made same-origin) and runs the command script.
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				page := strings.ReplaceAll(rec.Body.String(), playbackOrigin, "")
				page = strings.Replace(page, "</head>", `<script src="/__command.js"></script></head>`, 1)
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.Header().Del("Content-Length")
				w.WriteHeader(rec.Code)
				_, _ = io.WriteString(w, page)
			case isMedia(path):
				playback.ServeHTTP(throttledWriter{ResponseWriter: w, lim: lim}, r)
			case strings.HasPrefix(path, "/api/video/v1/"):
				playback.ServeHTTP(w, r)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	p.snapshot, p.chromium = startBrowser(t, srv, chromium, s.id(), wrap)
	p.lastAdvance = time.Now()
	return p
}

// isMedia: a segment or part below the playback prefix, not a playlist.
func isMedia(path string) bool {
	if !strings.HasPrefix(path, "/api/video/v1/") {
		return false
	}
	name := path[strings.LastIndex(path, "/")+1:]
	return strings.HasPrefix(name, "seg") || strings.HasPrefix(name, "part") || strings.HasPrefix(name, "init")
}

func (p *transcodePage) command(c playerCommand) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Seq = p.cmd.Seq + 1
	p.cmd = c
}

// poll takes the newest report and keeps the stall figure: how long the
// position has not advanced, the longest since resetStall.
func (p *transcodePage) poll() browserReport {
	rep, n := p.snapshot()
	now := time.Now()
	if n != p.reports {
		p.reports, p.rep = n, rep
		if rep.Position > p.lastPos {
			p.lastPos, p.lastAdvance = rep.Position, now
		}
	}
	if rep.PlayedMs > 0 && rep.State != "Ended" {
		p.stall = max(p.stall, now.Sub(p.lastAdvance))
	}
	return p.rep
}

func (p *transcodePage) latest() browserReport { return p.poll() }

func (p *transcodePage) resetStall() {
	p.poll()
	p.stall, p.lastAdvance = 0, time.Now()
}

func (p *transcodePage) maxStall() time.Duration { p.poll(); return p.stall }

// until polls the player until cond holds, failing after within.
func (p *transcodePage) until(what string, within time.Duration, cond func(browserReport) bool) browserReport {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		rep := p.poll()
		if p.reports > 0 && cond(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("not %s within %v\n%s\nchromium:\n%s\n%s", what, within, p.describe(rep), chromiumLog(p.chromium()), transcodeLog(p.srv))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *transcodePage) describe(r browserReport) string {
	return fmt.Sprintf("player (%d reports): state %q, position %.1f, played %.1f s, longest stall since reset %v, qualities %v, quality %q (%dp, %d bit/s, auto %v), video height %d, quality changes %v, events %v, errors %v",
		p.reports, r.State, r.Position, r.PlayedMs/1000, p.stall.Round(time.Millisecond), r.QualityNames, r.Quality, r.QualityHeight, r.QualityBitrate,
		r.AutoQuality, r.VideoHeight, r.QualityChanges, r.Events, r.Errors)
}

// rateLimiter paces the bytes of every response it is given, together, to
// bps bit/s (a narrow shared link); 0 does not pace.
type rateLimiter struct {
	bps  *atomic.Int64
	mu   sync.Mutex
	next time.Time
}

func (l *rateLimiter) wait(n int) {
	bps := l.bps.Load()
	if bps <= 0 {
		return
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(int64(n) * 8 * int64(time.Second) / bps))
	until := l.next
	l.mu.Unlock()
	time.Sleep(time.Until(until))
}

type throttledWriter struct {
	http.ResponseWriter
	lim *rateLimiter
}

func (w throttledWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), 1500)
		w.lim.wait(n)
		m, err := w.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		if w.lim.bps.Load() > 0 {
			_ = http.NewResponseController(w.ResponseWriter).Flush()
		}
		b = b[n:]
	}
	return written, nil
}

func (w throttledWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// --- playlists ---

// mvRendition is one variant of a multivariant playlist.
type mvRendition struct {
	name   string // its VIDEO group (IVS quality name)
	url    string // the media playlist
	source bool   // the passthrough ("source" path)
	height int
}

func renditionNames(rs []mvRendition) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return out
}

func httpGetString(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err, "GET "+url)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err, "GET "+url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

func multivariantRenditions(t *testing.T, url string) []mvRendition {
	t.Helper()
	text := httpGetString(t, url)
	base := url[:strings.LastIndex(url, "/")+1]
	var out []mvRendition
	var cur *mvRendition
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			attrs := line[len("#EXT-X-STREAM-INF:"):]
			cur = &mvRendition{name: attr(attrs, "VIDEO")}
			if res := attr(attrs, "RESOLUTION"); res != "" {
				_, h, _ := strings.Cut(res, "x")
				cur.height, _ = strconv.Atoi(h)
			}
		case cur != nil && line != "" && !strings.HasPrefix(line, "#"):
			cur.url = base + line
			cur.source = strings.Contains(line, "/source/")
			out = append(out, *cur)
			cur = nil
		}
	}
	if len(out) == 0 {
		t.Fatalf("no rendition in the multivariant playlist %s:\n%s", url, text)
	}
	return out
}

// attr reads one attribute of an HLS attribute list (quoted or not; the
// values this test reads hold no commas).
func attr(list, name string) string {
	for _, kv := range strings.Split(list, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// mediaPos is a place in a media playlist: a part of a segment, or the
// whole segment (part = completeSegment).
type mediaPos struct{ msn, part int }

const completeSegment = 1 << 30

func (a mediaPos) after(b mediaPos) bool {
	return a.msn > b.msn || (a.msn == b.msn && a.part > b.part)
}

func (a mediaPos) String() string {
	if a.part == completeSegment {
		return fmt.Sprintf("segment %d", a.msn)
	}
	return fmt.Sprintf("segment %d part %d", a.msn, a.part)
}

type mediaPlaylist struct {
	text   string
	target int      // EXT-X-TARGETDURATION
	last   mediaPos // the newest part or segment listed
	// dsn is each listed segment's discontinuity sequence number, as a
	// client counts it: EXT-X-DISCONTINUITY-SEQUENCE plus the
	// EXT-X-DISCONTINUITY tags up to and including the segment's own.
	dsn map[int]int
	// complete lists the complete segments' media sequence numbers.
	complete []int
}

// lastDSN is the discontinuity sequence number of the newest segment.
func (p mediaPlaylist) lastDSN() int { return p.dsn[p.last.msn] }

func loadMediaPlaylist(url string) (mediaPlaylist, error) {
	resp, err := http.Get(url)
	if err != nil {
		return mediaPlaylist{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return mediaPlaylist{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return mediaPlaylist{}, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	p := mediaPlaylist{text: string(body), dsn: map[int]int{}}
	dsn := 0
	for _, line := range strings.Split(p.text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			p.target, _ = strconv.Atoi(line[len("#EXT-X-TARGETDURATION:"):])
		case strings.HasPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
			dsn, _ = strconv.Atoi(line[len("#EXT-X-DISCONTINUITY-SEQUENCE:"):])
		case line == "#EXT-X-DISCONTINUITY":
			dsn++
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			// URI="part<msn>.<i>.ts"
			uri := attr(line[len("#EXT-X-PART:"):], "URI")
			fields := strings.SplitN(strings.TrimPrefix(uri, "part"), ".", 3)
			if len(fields) == 3 {
				msn, err1 := strconv.Atoi(fields[0])
				part, err2 := strconv.Atoi(fields[1])
				if err1 == nil && err2 == nil {
					if pos := (mediaPos{msn, part}); pos.after(p.last) {
						p.last = pos
					}
					p.dsn[msn] = dsn
				}
			}
		case strings.HasPrefix(line, "seg"):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "seg"), ".")
			if msn, err := strconv.Atoi(name); err == nil {
				if pos := (mediaPos{msn, completeSegment}); pos.after(p.last) {
					p.last = pos
				}
				p.dsn[msn] = dsn
				p.complete = append(p.complete, msn)
			}
		}
	}
	return p, nil
}

// playlistWatch reloads each rendition's media playlist every 200 ms
// from just before the transcoder is killed.
type playlistWatch struct {
	mu      sync.Mutex
	r       map[string]*renditionWatch
	stopped map[string]chan struct{}
	wg      sync.WaitGroup
}

type renditionWatch struct {
	atKill, latest mediaPlaylist
	err            error
	// resumed is when (after the kill) a complete segment after a new
	// discontinuity was first listed; 0: not yet.
	resumed time.Duration
	// conflict describes the first segment whose discontinuity sequence
	// number changed between reloads (clients refuse such a playlist).
	conflict string
}

func watchPlaylists(t *testing.T, rs []mvRendition) *playlistWatch {
	t.Helper()
	w := &playlistWatch{r: map[string]*renditionWatch{}, stopped: map[string]chan struct{}{}}
	start := time.Now()
	for _, r := range rs {
		p, err := loadMediaPlaylist(r.url)
		must(t, err, "media playlist of "+r.name)
		rw := &renditionWatch{atKill: p, latest: p}
		stop := make(chan struct{})
		w.r[r.name], w.stopped[r.name] = rw, stop
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				p, err := loadMediaPlaylist(r.url)
				w.mu.Lock()
				if err != nil {
					rw.err = err
					w.mu.Unlock()
					continue
				}
				prev := rw.latest
				rw.latest = p
				for msn, d := range p.dsn {
					if was, ok := prev.dsn[msn]; ok && was != d && rw.conflict == "" {
						rw.conflict = fmt.Sprintf("segment %d has discontinuity sequence number %d in one reload and %d in the next; the reloads began\n%s\nand\n%s",
							msn, was, d, playlistHead(prev.text), playlistHead(p.text))
					}
				}
				if rw.resumed == 0 && slices.ContainsFunc(p.complete, func(msn int) bool {
					return msn > rw.atKill.last.msn && p.dsn[msn] > rw.atKill.lastDSN()
				}) {
					rw.resumed = time.Since(start)
				}
				w.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		for name := range w.stopped {
			w.stop(name)
		}
		w.wg.Wait()
	})
	return w
}

// stop ends one rendition's reloads and returns what they saw.
func (w *playlistWatch) stop(name string) renditionWatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.stopped[name]; ok {
		close(ch)
		delete(w.stopped, name)
	}
	return *w.r[name]
}

// --- helpers ---

// playlistHead is a media playlist up to its third segment or part.
func playlistHead(text string) string {
	lines := strings.Split(text, "\n")
	n := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "seg") || strings.HasPrefix(l, "#EXT-X-PART:") {
			if n++; n == 3 {
				return strings.Join(lines[:i+1], "\n") + "\n…"
			}
		}
	}
	return text
}

func liveChildren(ps []childProcess) []childProcess {
	return slices.DeleteFunc(slices.Clone(ps), func(p childProcess) bool { return p.State == "Z" })
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// transcodeLog is the server's log lines about transcoding and ffmpeg,
// and its warnings and errors.
func transcodeLog(srv *server) string {
	var b bytes.Buffer
	b.WriteString("server log (transcode, ffmpeg, warnings, errors):\n")
	for _, line := range strings.Split(srv.Stderr(), "\n") {
		if strings.Contains(line, "transcode") || strings.Contains(line, "ffmpeg") ||
			strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
