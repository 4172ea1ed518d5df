package bench

// The latency benchmark plays an LL-HLS URL in headless Chromium with the
// openivs web player (the IVSPlayer-compatible bundle embedded in the
// binary) and measures glass-to-glass latency as the player reports it:
// getLiveLatency() = now − EXT-X-PROGRAM-DATE-TIME of the frame on screen.
//
// A local HTTP server on 127.0.0.1 serves the page, the player bundle and a
// probe script; the probe samples the player every 100 ms and posts batches
// back. No DevTools protocol is needed. The page's origin is the local
// server, so the playback URL is fetched cross-origin: the server under test
// must send CORS headers, as LL-HLS servers do for web players.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/openivs/openivs/web"
)

// LatencyOptions configures RunLatency. Zero values take the defaults.
type LatencyOptions struct {
	URL string // playback URL (multivariant or media playlist), http or https
	// Duration is the measurement window (default 30 s).
	Duration time.Duration
	// Warmup is waited after the player first reached PLAYING before the
	// window opens, so start-up catch-up stays out of it (default 5 s).
	Warmup time.Duration
	// StartTimeout bounds page load → first PLAYING (default 30 s).
	StartTimeout time.Duration
	// Chromium is the browser binary (default /usr/bin/chromium).
	Chromium string
	// NormalLatency calls setLiveLowLatencyEnabled(false): the player then
	// ignores the parts and plays at HOLD-BACK like a plain HLS player.
	NormalLatency bool
	// Quality, when set, pins the player to the rendition of that name
	// (player.setQuality) instead of letting ABR choose.
	Quality string
	// Insecure lets Chromium accept any TLS certificate (self-signed
	// https playback URLs).
	Insecure bool
	// Progress receives one line per phase; nil discards.
	Progress io.Writer
	// During, when set, runs (on its own goroutine) once the measurement
	// window opens; the window then stays open until it returns, at least
	// Duration. The metadata benchmark calls PutMetadata from it.
	During func(ctx context.Context) error
}

// LatencyStats summarises one series of samples, in seconds.
type LatencyStats struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	N    int     `json:"n"`
}

// LatencyResult is what one run measured. Times are in seconds.
type LatencyResult struct {
	URL           string `json:"url"`
	Browser       string `json:"browser"`
	PlayerVersion string `json:"playerVersion"`
	// LowLatencyRequested is what setLiveLowLatencyEnabled was given;
	// LowLatency is isLiveLowLatency() while playing (the server offered
	// parts and the player uses them).
	LowLatencyRequested bool `json:"lowLatencyRequested"`
	LowLatency          bool `json:"lowLatency"`
	// Playlist attributes of the playing rendition, as hls.js parsed them
	// (0 when the player does not expose them).
	Container      string  `json:"container,omitempty"` // "ts" or "fmp4"
	PartTarget     float64 `json:"partTarget"`
	PartHoldBack   float64 `json:"partHoldBack"`
	HoldBack       float64 `json:"holdBack"`
	TargetDuration float64 `json:"targetDuration"`
	Quality        string  `json:"quality,omitempty"`

	// FirstFrame is page navigation → first PLAYING; FirstFrameFromLoad
	// is player.load() → first PLAYING.
	FirstFrame         float64 `json:"firstFrame"`
	FirstFrameFromLoad float64 `json:"firstFrameFromLoad"`

	Warmup float64 `json:"warmup"`
	Window float64 `json:"window"` // observed, ≤ the requested duration
	// CutShort says why the window ended early ("" when it ran in full).
	CutShort string `json:"cutShort,omitempty"`

	// Samples is the number of latency samples in the window (PLAYING,
	// every 100 ms); Invalid counts PLAYING ticks whose latency was not a
	// positive finite number or had no program-date-time behind it, of
	// which NoProgramDateTime the latter.
	Samples           int          `json:"samples"`
	Invalid           int          `json:"invalid"`
	NoProgramDateTime int          `json:"noProgramDateTime"`
	Latency           LatencyStats `json:"latency"`
	// BehindEdge is the playhead's distance behind the end of the newest
	// part (or segment) in the playlist; EdgeAge is Latency − BehindEdge:
	// how old, by program-date-time, the newest listed media is. Both come
	// from hls.js's state and are absent for other players.
	BehindEdge LatencyStats `json:"behindEdge"`
	EdgeAge    LatencyStats `json:"edgeAge"`
	Buffer     LatencyStats `json:"buffer"` // forward buffer at the playhead
	// TargetLatency is hls.js's target at the end (PART-HOLD-BACK or
	// HOLD-BACK, raised after stalls).
	TargetLatency float64 `json:"targetLatency"`
	// CatchUp is the share of the window played faster than 1× to get
	// back to the target latency.
	CatchUp float64 `json:"catchUp"`

	Stalls        int     `json:"stalls"`        // PlayerRebuffering events in the window
	RebufferTime  float64 `json:"rebufferTime"`  // time in BUFFERING in the window
	LongestFreeze float64 `json:"longestFreeze"` // longest span the position did not advance in the window

	State             string   `json:"state"` // player state at the end
	Errors            int      `json:"errors"`
	RecoverableErrors int      `json:"recoverableErrors"`
	ErrorMessages     []string `json:"errorMessages,omitempty"` // distinct, at most 5

	// MetadataCues are the player's TEXT_METADATA_CUE events, in the
	// order fired, with when they fired (the browser's clock is this
	// machine's).
	MetadataCues []MetadataCue `json:"-"`
	// DuringErr is what During returned.
	DuringErr error `json:"-"`
	ticks     []latencyTickJSON
}

// latencyAt is the latency the player reported at the last tick at or
// before t while PLAYING.
func (r *LatencyResult) latencyAt(t time.Time) (float64, bool) {
	ms := float64(t.UnixMilli())
	for i := len(r.ticks) - 1; i >= 0; i-- {
		tk := r.ticks[i]
		if tk.T <= ms && tk.State == "Playing" && tk.Lat != nil && *tk.Lat > 0 {
			return *tk.Lat, true
		}
	}
	return 0, false
}

// MetadataCue is one TEXT_METADATA_CUE the player fired.
type MetadataCue struct {
	At    time.Time
	Text  string
	Owner string
}

// OK reports whether the run measured anything.
func (r *LatencyResult) OK() bool { return r.Samples > 0 }

func (o *LatencyOptions) defaults() {
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 5 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Chromium == "" {
		o.Chromium = "/usr/bin/chromium"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Probe sampling period; the report uses it to weigh ticks when the page
// reported none after the last one.
const latencyTick = 100 * time.Millisecond

// latencyPage is the page Chromium opens: the player bundle, a video
// element, the run's settings and the probe. No CSP, nothing else.
const latencyPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>openivs bench latency</title>
<style>html,body{margin:0;background:#000}video{width:100%%;height:auto}</style></head>
<body>
<video id="video" muted autoplay playsinline></video>
<script>window.BENCH = %s;</script>
<script src="/openivs-player.min.js"></script>
<script src="/bench.js"></script>
</body>
</html>
`

// latencyProbe drives the player and reports every 100 ms tick and every
// player event to /report in batches. Only the IVS player API is needed;
// what it reads from player.hls (hls.js) is optional detail.
const latencyProbe = `(function () {
  'use strict';
  var cfg = window.BENCH, ticks = [], events = [], seq = 0, loadAt = 0, info = {};
  var ev = function (type, payload) {
    var d = payload === undefined || payload === null ? '' : typeof payload === 'string' ? payload : JSON.stringify(payload);
    events.push({t: Date.now(), type: type, detail: d});
  };
  var flush = function () {
    if (!ticks.length && !events.length && seq > 0) return;
    var body = {seq: seq++, navStart: performance.timeOrigin, loadAt: loadAt, ticks: ticks, events: events, info: info};
    ticks = []; events = [];
    fetch('/report', {method: 'POST', body: JSON.stringify(body)}).catch(function () {
      ticks = body.ticks.concat(ticks); events = body.events.concat(events); // retried with the next batch
    });
  };
  setInterval(flush, 500);
  if (typeof IVSPlayer === 'undefined' || !IVSPlayer.isPlayerSupported) {
    ev('BenchError', typeof IVSPlayer === 'undefined' ? 'the player script did not load' : 'IVSPlayer.isPlayerSupported is false');
    flush();
    return;
  }
  var S = IVSPlayer.PlayerState, E = IVSPlayer.PlayerEventType;
  var video = document.getElementById('video');
  var player = IVSPlayer.create();
  window.player = player;
  player.attachHTMLVideoElement(video);
  [E.STATE_CHANGED, E.REBUFFERING, E.ERROR, E.RECOVERABLE_ERROR, E.QUALITY_CHANGED, E.PLAYBACK_BLOCKED,
   E.AUDIO_BLOCKED, E.NETWORK_UNAVAILABLE, E.SEGMENT_DISCONTINUITY, E.TEXT_METADATA_CUE].forEach(function (type) {
    player.addEventListener(type, function (payload) { ev(type, payload); });
  });
  window.addEventListener('error', function (e) { ev('BenchError', String(e.message)); });
  info.browser = navigator.userAgent;
  info.version = player.getVersion();
  player.setLiveLowLatencyEnabled(cfg.lowLatency);
  player.setMuted(true);
  loadAt = Date.now();
  player.load(cfg.url);
  player.play();

  var num = function (v) { return typeof v === 'number' && isFinite(v) ? v : null; };
  var pinned = !cfg.quality;
  setInterval(function () {
    if (!pinned && player.getQualities().length) {
      pinned = true;
      var qs = player.getQualities(), want = qs.filter(function (q) { return q.name === cfg.quality; })[0];
      if (want) player.setQuality(want);
      else ev('BenchError', 'no quality named ' + cfg.quality + ' (the stream has ' + qs.map(function (q) { return q.name; }).join(', ') + ')');
    }
    var tk = {t: Date.now(), state: player.getState(), pos: num(player.getPosition()),
      lat: num(player.getLiveLatency()), buf: num(player.getBufferDuration()), rate: num(video.playbackRate)};
    var h = player.hls, d = null;
    try {
      d = h && h.latestLevelDetails;
      if (d && d.live) { tk.edge = num(d.edge - video.currentTime); tk.target = num(h.targetLatency); }
      // Without a program-date-time getLiveLatency() falls back to the
      // distance from the live edge, which is not glass-to-glass.
      if (h && !h.playingDate) tk.noPDT = true;
    } catch (e) { d = null; }
    ticks.push(tk);
    if (tk.state === S.PLAYING) {
      info.lowLatency = player.isLiveLowLatency();
      var q = player.getQuality();
      if (q) info.quality = {name: q.name, width: q.width, height: q.height, bitrate: q.bitrate, codecs: q.codecs};
      if (d) {
        var last = d.fragments && d.fragments[d.fragments.length - 1];
        info.partTarget = d.partTarget; info.partHoldBack = d.partHoldBack; info.holdBack = d.holdBack;
        info.targetDuration = d.targetduration; info.container = last ? (last.initSegment ? 'fmp4' : 'ts') : '';
      }
    }
  }, 100);
})();`

// latencyTickJSON is one probe sample. Times are ms since the epoch on
// the browser's clock (the machine's); other values are seconds. A value
// the page could not read is null.
type latencyTickJSON struct {
	T      float64  `json:"t"`
	State  string   `json:"state"`
	Pos    *float64 `json:"pos"`
	Lat    *float64 `json:"lat"`
	Buf    *float64 `json:"buf"`
	Rate   *float64 `json:"rate"`
	Edge   *float64 `json:"edge"`
	Target *float64 `json:"target"`
	NoPDT  bool     `json:"noPDT"`
}

type latencyEventJSON struct {
	T      float64 `json:"t"`
	Type   string  `json:"type"`
	Detail string  `json:"detail"`
}

type latencyInfoJSON struct {
	Browser        string  `json:"browser"`
	Version        string  `json:"version"`
	LowLatency     bool    `json:"lowLatency"`
	PartTarget     float64 `json:"partTarget"`
	PartHoldBack   float64 `json:"partHoldBack"`
	HoldBack       float64 `json:"holdBack"`
	TargetDuration float64 `json:"targetDuration"`
	Container      string  `json:"container"`
	Quality        *struct {
		Name    string  `json:"name"`
		Width   int     `json:"width"`
		Height  int     `json:"height"`
		Bitrate float64 `json:"bitrate"`
		Codecs  string  `json:"codecs"`
	} `json:"quality"`
}

type latencyBatch struct {
	Seq      int                `json:"seq"`
	NavStart float64            `json:"navStart"`
	LoadAt   float64            `json:"loadAt"`
	Ticks    []latencyTickJSON  `json:"ticks"`
	Events   []latencyEventJSON `json:"events"`
	Info     latencyInfoJSON    `json:"info"`
}

// latencyCollector gathers what the page reports.
type latencyCollector struct {
	mu       sync.Mutex
	batches  int
	navStart float64
	loadAt   float64
	ticks    []latencyTickJSON
	events   []latencyEventJSON
	info     latencyInfoJSON
	update   chan struct{} // signalled (non-blocking) on every batch
}

func (c *latencyCollector) add(b *latencyBatch) {
	c.mu.Lock()
	c.batches++
	c.navStart, c.loadAt, c.info = b.NavStart, b.LoadAt, b.Info
	c.ticks = append(c.ticks, b.Ticks...)
	c.events = append(c.events, b.Events...)
	c.mu.Unlock()
	select {
	case c.update <- struct{}{}:
	default:
	}
}

// latencySnapshot is a copy of what was collected so far.
type latencySnapshot struct {
	batches          int
	navStart, loadAt float64
	ticks            []latencyTickJSON
	events           []latencyEventJSON
	info             latencyInfoJSON
}

func (c *latencyCollector) snapshot() latencySnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return latencySnapshot{c.batches, c.navStart, c.loadAt, slices.Clone(c.ticks), slices.Clone(c.events), c.info}
}

// firstPlaying is the browser time (ms) the player first reached PLAYING,
// from its state event, else from the first PLAYING tick; 0 if never.
func (s *latencySnapshot) firstPlaying() float64 {
	for _, e := range s.events {
		if e.Type == "PlayerStateChanged" && e.Detail == "Playing" {
			return e.T
		}
	}
	for _, t := range s.ticks {
		if t.State == "Playing" {
			return t.T
		}
	}
	return 0
}

func (s *latencySnapshot) lastTick() (latencyTickJSON, bool) {
	if len(s.ticks) == 0 {
		return latencyTickJSON{}, false
	}
	return s.ticks[len(s.ticks)-1], true
}

// fatal is the first fatal player or page error after browser time since.
func (s *latencySnapshot) fatal(since float64) string {
	for _, e := range s.events {
		if e.T >= since && (e.Type == "PlayerError" || e.Type == "BenchError") {
			return e.Type + " " + e.Detail
		}
	}
	return ""
}

// latencyHandler serves the page, the player, the probe and /report.
func latencyHandler(page []byte, col *latencyCollector) (http.Handler, error) {
	player, err := fs.ReadFile(web.FS, "dist/openivs-player.min.js")
	if err != nil {
		return nil, fmt.Errorf("bench: the embedded player: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /openivs-player.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(player)
	})
	mux.HandleFunc("GET /bench.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = io.WriteString(w, latencyProbe)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var b latencyBatch
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		col.add(&b)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux, nil
}

// latencyPageFor renders the page for a run; the settings are JSON, which
// json.Marshal makes safe inside <script> (it escapes <, > and &).
func latencyPageFor(playbackURL string, lowLatency bool, quality string) ([]byte, error) {
	cfg, err := json.Marshal(map[string]any{"url": playbackURL, "lowLatency": lowLatency, "quality": quality})
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, latencyPage, cfg), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// chromiumNoise marks lines headless Chromium (and Debian's wrapper
// script) print on any server, which would bury what matters.
var chromiumNoise = []string{"dbus", "D-Bus", "drmGetDevices", "InitializeSandbox", ": [: "}

// Lines returns the last n lines kept, without chromiumNoise.
func (b *tailBuffer) Lines(n int) string {
	b.mu.Lock()
	s := string(b.buf)
	b.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if line == "" || slices.ContainsFunc(chromiumNoise, func(n string) bool { return strings.Contains(line, n) }) {
			continue
		}
		keep = append(keep, line)
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// chromiumArgs are the flags of the benchmark's browser: headless, no
// background traffic that could share the link, autoplay allowed.
func chromiumArgs(profile, pageURL string, insecure bool) []string {
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
		"--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1280,720",
		"--enable-logging=stderr", "--user-data-dir=" + profile}
	if insecure {
		args = append(args, "--ignore-certificate-errors")
	}
	return append(args, pageURL)
}

// RunLatency plays opts.URL in headless Chromium and measures the live
// latency the player reports over the window. It returns an error when it
// could not measure: no browser, the page never reached PLAYING, the
// browser died. A result with no samples (OK false) means it played but
// never reported a latency (e.g. the playlist has no program-date-time).
func RunLatency(ctx context.Context, opts LatencyOptions) (*LatencyResult, error) {
	opts.defaults()
	say := func(format string, args ...any) { fmt.Fprintf(opts.Progress, format+"\n", args...) }
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bench: --url %q is not an http(s) URL", opts.URL)
	}
	chromium, err := exec.LookPath(opts.Chromium)
	if err != nil {
		return nil, fmt.Errorf("bench: Chromium not found at %s (set --chromium or OPENIVS_CHROMIUM): %w", opts.Chromium, err)
	}

	page, err := latencyPageFor(opts.URL, !opts.NormalLatency, opts.Quality)
	if err != nil {
		return nil, err
	}
	col := &latencyCollector{update: make(chan struct{}, 1)}
	handler, err := latencyHandler(page, col)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: local page server: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	pageURL := "http://" + ln.Addr().String() + "/"

	profile, err := os.MkdirTemp("", "openivs-bench-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	log := &tailBuffer{max: 64 << 10}
	cmd := exec.Command(chromium, chromiumArgs(profile, pageURL, opts.Insecure)...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so the renderer, GPU and zygote processes go
	// with it; and killed if this process dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting Chromium: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	say("Chromium %s playing %s with the openivs player (page %s)", chromium, opts.URL, pageURL)

	browserLog := func() string {
		if l := log.Lines(25); l != "" {
			return "\nChromium said:\n" + l
		}
		return ""
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var windowStart, windowEnd float64 // browser ms
	var lastReport time.Time
	cutShort := ""
	// during is closed when opts.During has returned (at once without it).
	during := make(chan struct{})
	var duringErr error
	duringCtx, stopDuring := context.WithCancel(ctx)
	duringStarted := false
	defer func() {
		stopDuring()
		if duringStarted {
			<-during
		}
	}()
	if opts.During == nil {
		close(during)
	}
wait:
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: interrupted: %w", ctx.Err())
		case <-exited:
			return nil, fmt.Errorf("bench: Chromium exited unexpectedly (%v)%s", cmd.ProcessState, browserLog())
		case <-col.update:
			lastReport = time.Now()
		case <-tick.C:
		}
		s := col.snapshot()
		if windowStart == 0 {
			first := s.firstPlaying()
			if first == 0 {
				if msg := s.fatal(0); msg != "" {
					return nil, fmt.Errorf("bench: the player failed before playing: %s%s%s", msg, corsHint(msg), browserLog())
				}
				if time.Since(launched) > opts.StartTimeout {
					state := "no report from the page"
					if t, ok := s.lastTick(); ok {
						state = "player state " + t.State
					}
					return nil, fmt.Errorf("bench: not PLAYING within %s of starting Chromium (%s, %d reports; events %s)%s",
						opts.StartTimeout, state, s.batches, eventSummary(s.events), browserLog())
				}
				continue
			}
			windowStart = first + float64(opts.Warmup.Milliseconds())
			windowEnd = windowStart + float64(opts.Duration.Milliseconds())
			measuring := opts.Duration.String()
			if opts.During != nil {
				measuring = "while the run lasts"
			}
			say("PLAYING %.2f s after page load; warming up %s, then measuring %s", (first-s.navStart)/1000, opts.Warmup, measuring)
			continue
		}
		if t, ok := s.lastTick(); ok && t.T >= windowStart && !duringStarted && opts.During != nil {
			duringStarted = true
			go func() {
				defer close(during)
				duringErr = opts.During(duringCtx)
			}()
		}
		if t, ok := s.lastTick(); ok && t.T >= windowEnd && (opts.During == nil || duringStarted) {
			select {
			case <-during:
				windowEnd = t.T // the window ends with the later of the two
				break wait
			default:
			}
		}
		if msg := s.fatal(windowStart - float64(opts.Warmup.Milliseconds())); msg != "" {
			cutShort = "player error: " + msg
			break wait
		}
		if t, ok := s.lastTick(); ok && t.State == "Ended" {
			cutShort = "the stream ended"
			break wait
		}
		if !lastReport.IsZero() && time.Since(lastReport) > 10*time.Second {
			cutShort = "the page stopped reporting"
			break wait
		}
	}
	stopDuring()
	if duringStarted {
		<-during
		duringStarted = false
	}
	s := col.snapshot()
	res := analyzeLatency(&s, windowStart, windowEnd)
	res.DuringErr = duringErr
	res.ticks = s.ticks
	res.URL = opts.URL
	res.LowLatencyRequested = !opts.NormalLatency
	res.Warmup = opts.Warmup.Seconds()
	if cutShort != "" {
		res.CutShort = cutShort
	}
	return res, nil
}

// corsHint explains the usual reason a cross-origin playback URL fails
// with a network error and no status.
func corsHint(msg string) string {
	if strings.Contains(msg, `"code":0`) && strings.Contains(msg, "ErrorNetwork") {
		return " (no HTTP status: the server is unreachable, or it does not send Access-Control-Allow-Origin and the browser refused the response)"
	}
	return ""
}

func eventSummary(evs []latencyEventJSON) string {
	if len(evs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, e := range evs {
		if i == 12 {
			fmt.Fprintf(&b, " … %d more", len(evs)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.Type)
		if e.Detail != "" {
			d := e.Detail
			if len(d) > 160 {
				d = d[:160] + "…"
			}
			b.WriteString("(" + d + ")")
		}
	}
	return b.String()
}

// analyzeLatency computes the result from what the page reported: ticks
// in [windowStart, windowEnd) browser ms count.
func analyzeLatency(s *latencySnapshot, windowStart, windowEnd float64) *LatencyResult {
	res := &LatencyResult{
		Browser:        chromeVersion(s.info.Browser),
		PlayerVersion:  s.info.Version,
		LowLatency:     s.info.LowLatency,
		Container:      s.info.Container,
		PartTarget:     s.info.PartTarget,
		PartHoldBack:   s.info.PartHoldBack,
		HoldBack:       s.info.HoldBack,
		TargetDuration: s.info.TargetDuration,
	}
	if q := s.info.Quality; q != nil {
		res.Quality = fmt.Sprintf("%s %dx%d %.2f Mbps %s", q.Name, q.Width, q.Height, q.Bitrate/1e6, q.Codecs)
	}
	if first := s.firstPlaying(); first > 0 {
		if s.navStart > 0 {
			res.FirstFrame = (first - s.navStart) / 1000
		}
		if s.loadAt > 0 {
			res.FirstFrameFromLoad = (first - s.loadAt) / 1000
		}
	}
	var win []latencyTickJSON
	for _, t := range s.ticks {
		if t.T >= windowStart && t.T < windowEnd {
			win = append(win, t)
		}
	}
	if last, ok := s.lastTick(); ok {
		res.State = last.State
	}
	if len(win) > 0 {
		// Each tick stands for the time to the next; the last for one period.
		end := min(win[len(win)-1].T+float64(latencyTick.Milliseconds()), windowEnd)
		res.Window = (end - windowStart) / 1000
	}

	var lat, edge, age, buf []float64
	playing, fast := 0, 0
	var freezeFrom float64
	var lastPos *float64
	for i, t := range win {
		next := windowEnd
		if i+1 < len(win) {
			next = win[i+1].T
		} else {
			next = min(next, t.T+float64(latencyTick.Milliseconds()))
		}
		if t.State == "Buffering" {
			res.RebufferTime += (next - t.T) / 1000
		}
		// Freeze: the position did not advance from one tick to the next.
		if t.Pos != nil {
			if lastPos != nil && *t.Pos <= *lastPos {
				if freezeFrom == 0 {
					freezeFrom = win[i-1].T
				}
				res.LongestFreeze = max(res.LongestFreeze, (t.T-freezeFrom)/1000)
			} else {
				freezeFrom = 0
			}
			lastPos = t.Pos
		}
		if t.State != "Playing" {
			continue
		}
		playing++
		if t.Rate != nil && *t.Rate > 1.001 {
			fast++
		}
		if t.NoPDT {
			res.Invalid++
			res.NoProgramDateTime++
			continue
		}
		if t.Lat == nil || !(*t.Lat > 0) || math.IsInf(*t.Lat, 0) {
			res.Invalid++
			continue
		}
		lat = append(lat, *t.Lat)
		if t.Buf != nil {
			buf = append(buf, *t.Buf)
		}
		if t.Edge != nil {
			edge = append(edge, *t.Edge)
			age = append(age, *t.Lat-*t.Edge)
		}
		if t.Target != nil {
			res.TargetLatency = *t.Target
		}
	}
	res.Samples = len(lat)
	res.Latency, res.BehindEdge, res.EdgeAge, res.Buffer = latencyStatsOf(lat), latencyStatsOf(edge), latencyStatsOf(age), latencyStatsOf(buf)
	if playing > 0 {
		res.CatchUp = float64(fast) / float64(playing)
	}

	seen := map[string]bool{}
	for _, e := range s.events {
		switch e.Type {
		case "PlayerTextMetadataCue":
			var cue struct{ Text, Owner string }
			if json.Unmarshal([]byte(e.Detail), &cue) == nil {
				res.MetadataCues = append(res.MetadataCues, MetadataCue{At: time.UnixMilli(int64(e.T)), Text: cue.Text, Owner: cue.Owner})
			}
			continue
		case "PlayerRebuffering":
			if e.T >= windowStart && e.T < windowEnd {
				res.Stalls++
			}
			continue
		case "PlayerError", "BenchError":
			res.Errors++
		case "PlayerRecoverableError":
			res.RecoverableErrors++
		default:
			continue
		}
		msg := e.Type + " " + e.Detail
		if !seen[msg] && len(res.ErrorMessages) < 5 {
			seen[msg] = true
			res.ErrorMessages = append(res.ErrorMessages, msg)
		}
	}
	return res
}

// latencyStatsOf summarises v with nearest-rank percentiles (as the ingest bench).
func latencyStatsOf(v []float64) LatencyStats {
	if len(v) == 0 {
		return LatencyStats{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	at := func(q float64) float64 { return v[min(int(q*float64(len(v))), len(v)-1)] }
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return LatencyStats{P50: at(0.50), P95: at(0.95), Min: v[0], Max: v[len(v)-1], Mean: sum / float64(len(v)), N: len(v)}
}

// chromeVersion picks "Chrome/N.N.N.N" out of a user agent.
func chromeVersion(ua string) string {
	for _, f := range strings.Fields(ua) {
		if strings.HasPrefix(f, "Chrome/") || strings.HasPrefix(f, "HeadlessChrome/") {
			return f
		}
	}
	return ua
}

// Summary is the one-line result.
func (r *LatencyResult) Summary() string {
	if !r.OK() {
		return fmt.Sprintf("no latency samples (%d invalid) over %.0f s, stalls %d, first frame after %.1f s",
			r.Invalid, r.Window, r.Stalls, r.FirstFrame)
	}
	return fmt.Sprintf("latency p50 %.2f s  p95 %.2f s  min %.2f s  max %.2f s (%d samples over %.0f s), stalls %d, first frame after %.1f s",
		r.Latency.P50, r.Latency.P95, r.Latency.Min, r.Latency.Max, r.Samples, r.Window, r.Stalls, r.FirstFrame)
}

// Report writes the result for a person.
func (r *LatencyResult) Report(w io.Writer) {
	s := func(x float64) string { return fmt.Sprintf("%.2f s", x) }
	st := func(x LatencyStats) string {
		return fmt.Sprintf("p50 %s  p95 %s  min %s  max %s  mean %s", s(x.P50), s(x.P95), s(x.Min), s(x.Max), s(x.Mean))
	}
	yes := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	fmt.Fprintf(w, "openivs bench latency: %s\n", r.URL)
	fmt.Fprintf(w, "  player               openivs %s in %s; low latency requested %s, in use %s\n",
		r.PlayerVersion, r.Browser, yes(r.LowLatencyRequested), yes(r.LowLatency))
	var pl []string
	if r.Container != "" {
		pl = append(pl, "container "+r.Container)
	}
	if r.PartTarget > 0 {
		pl = append(pl, "PART-TARGET "+s(r.PartTarget), "PART-HOLD-BACK "+s(r.PartHoldBack))
	}
	if r.HoldBack > 0 {
		pl = append(pl, "HOLD-BACK "+s(r.HoldBack))
	}
	if r.TargetDuration > 0 {
		pl = append(pl, "TARGETDURATION "+s(r.TargetDuration))
	}
	if len(pl) > 0 {
		fmt.Fprintf(w, "  playlist             %s\n", strings.Join(pl, ", "))
	}
	if r.Quality != "" {
		fmt.Fprintf(w, "  quality              %s\n", r.Quality)
	}
	fmt.Fprintf(w, "  first frame          %s after page load (%s after player.load())\n", s(r.FirstFrame), s(r.FirstFrameFromLoad))
	fmt.Fprintf(w, "  window               %.1f s after a %.1f s warm-up: %d samples, %d PLAYING ticks without a latency\n",
		r.Window, r.Warmup, r.Samples, r.Invalid)
	if r.OK() {
		fmt.Fprintf(w, "  glass-to-glass       %s   (now − program-date-time of the frame on screen)\n", st(r.Latency))
		if r.BehindEdge.N > 0 {
			fmt.Fprintf(w, "  behind live edge     %s   (playhead → end of the newest part listed; hls.js target %s)\n", st(r.BehindEdge), s(r.TargetLatency))
			fmt.Fprintf(w, "  edge age             %s   (glass-to-glass − behind edge: age of the newest listed media)\n", st(r.EdgeAge))
		}
		if r.Buffer.N > 0 {
			fmt.Fprintf(w, "  forward buffer       %s\n", st(r.Buffer))
		}
	}
	fmt.Fprintf(w, "  playback             stalls %d (%.2f s buffering), longest freeze %.2f s, played faster than 1× %.0f%% of the time\n",
		r.Stalls, r.RebufferTime, r.LongestFreeze, 100*r.CatchUp)
	fmt.Fprintf(w, "  player               state %s at the end; %d errors, %d recoverable errors\n", r.State, r.Errors, r.RecoverableErrors)
	for _, m := range r.ErrorMessages {
		if len(m) > 300 {
			m = m[:300] + "…"
		}
		fmt.Fprintf(w, "    %s\n", m)
	}
	if r.NoProgramDateTime > 0 {
		fmt.Fprintf(w, "  WARNING              %d PLAYING ticks had no EXT-X-PROGRAM-DATE-TIME to measure against; not counted\n", r.NoProgramDateTime)
	}
	if r.CutShort != "" {
		fmt.Fprintf(w, "  WARNING              the window was cut short: %s\n", r.CutShort)
	}
	if r.OK() {
		fmt.Fprintf(w, "  result               %s\n", r.Summary())
	} else {
		fmt.Fprintf(w, "  result               FAIL: %s\n", r.Summary())
	}
}

// MarshalJSON is the result with its one-line summary.
// JSON writes the result as indented JSON.
func (r *LatencyResult) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

func (r *LatencyResult) MarshalJSON() ([]byte, error) {
	type plain LatencyResult
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		*plain
		OK      bool   `json:"ok"`
		Summary string `json:"summary"`
	}{(*plain)(r), r.OK(), r.Summary()}); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
