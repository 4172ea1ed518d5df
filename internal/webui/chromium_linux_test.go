//go:build linux

package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/testutil/browserlock"
)

// The harness drives the real player in headless Chromium without a browser
// automation library: the test server injects /__probe.js into the demo page,
// and the probe posts what the page sees (state, events, currentTime) back to
// /__report. Assertions run here, on those reports.

// chromiumPath is Debian's Chromium (installed by scripts/deps.sh);
// OPENIVS_CHROMIUM points elsewhere.
func chromiumPath() string {
	if p := os.Getenv("OPENIVS_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// probeJS samples the page every 100 ms. Stall = longest time currentTime did
// not advance while the player was PLAYING or BUFFERING after first PLAYING
// and before the stream ended.
const probeJS = `(function () {
  var logs = [];
  ['log', 'warn', 'error'].forEach(function (k) {
    var orig = console[k];
    console[k] = function () { logs.push(k + ': ' + Array.prototype.map.call(arguments, String).join(' ')); if (logs.length > 50) logs.shift(); return orig.apply(console, arguments); };
  });
  window.addEventListener('error', function (e) { logs.push('uncaught: ' + e.message); });
  document.addEventListener('securitypolicyviolation', function (e) { logs.push('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });
  var workers = [];
  var NativeWorker = window.Worker;
  window.Worker = function (url, opts) { workers.push(String(url).slice(0, 5)); return new NativeWorker(url, opts); };
  window.Worker.prototype = NativeWorker.prototype;
  var start = Date.now(), firstPlaying = 0, lastT = -1, lastAdvance = 0, maxStall = 0, samples = 0, startPos = -1;
  var methods = ['attachHTMLVideoElement', 'getHTMLVideoElement', 'load', 'play', 'pause', 'isPaused', 'seekTo', 'setAutoplay', 'isAutoplay',
    'setMuted', 'isMuted', 'setVolume', 'getVolume', 'getQualities', 'getQuality', 'setQuality', 'setAutoQualityMode', 'isAutoQualityMode',
    'setAutoMaxQuality', 'setAutoMaxBitrate', 'setAutoMaxVideoSize', 'getLiveLatency', 'isLiveLowLatency', 'setLiveLowLatencyEnabled',
    'setInitialBufferDuration', 'setRebufferToLive', 'getPosition', 'getDuration', 'getBufferDuration', 'getBuffered', 'getState',
    'getSessionId', 'setLogLevel', 'getVersion', 'getPlaybackRate', 'setPlaybackRate', 'setRequestCredentials',
    'getDisplayWidth', 'getDisplayHeight', 'delete', 'addEventListener', 'removeEventListener'];
  function missingAPI(p) {
    var miss = methods.filter(function (m) { return typeof p[m] !== 'function'; });
    var PS = IVSPlayer.PlayerState, ET = IVSPlayer.PlayerEventType;
    var want = {IDLE: 'Idle', READY: 'Ready', BUFFERING: 'Buffering', PLAYING: 'Playing', ENDED: 'Ended'};
    Object.keys(want).forEach(function (k) { if (PS[k] !== want[k]) miss.push('PlayerState.' + k); });
    ['INITIALIZED', 'QUALITY_CHANGED', 'STATE_CHANGED', 'ERROR', 'RECOVERABLE_ERROR', 'TEXT_METADATA_CUE', 'REBUFFERING'].forEach(function (k) {
      if (typeof ET[k] !== 'string' || ET[k].indexOf('Player') !== 0) miss.push('PlayerEventType.' + k);
    });
    if (IVSPlayer.ErrorType.NOT_AVAILABLE !== 'ErrorNotAvailable') miss.push('ErrorType.NOT_AVAILABLE');
    return miss;
  }
  function report(final) {
    var p = window.player, ev = (window.playerEvents || []).map(function (e) { return {t: e.t - start, type: e.type, payload: e.payload}; });
    var body = JSON.stringify({
      page: location.pathname,
      supported: !!(window.IVSPlayer && IVSPlayer.isPlayerSupported),
      hasAPI: !!(window.IVSPlayer && IVSPlayer.PlayerState && IVSPlayer.PlayerEventType && IVSPlayer.ErrorType && typeof IVSPlayer.create === 'function'),
      missingAPI: p ? missingAPI(p) : ['player'],
      state: p ? p.getState() : '', position: p ? p.getPosition() : 0, startPosition: startPos,
      qualities: p ? p.getQualities() : [], quality: p ? p.getQuality() : null, latency: p ? p.getLiveLatency() : 0,
      lowLatency: p ? p.isLiveLowLatency() : false, buffer: p ? p.getBufferDuration() : 0,
      maxStallMs: maxStall, playedMs: firstPlaying ? Date.now() - firstPlaying : 0, samples: samples, events: ev,
      error: (document.getElementById('error') || {}).textContent || '', logs: logs, workers: workers
    });
    fetch('/__report', {method: 'POST', body: body, keepalive: true});
  }
  setInterval(function () {
    var p = window.player; if (!p) return;
    var now = Date.now(), s = p.getState(), t = p.getPosition();
    samples++;
    if (!firstPlaying && s === IVSPlayer.PlayerState.PLAYING) { firstPlaying = now; lastAdvance = now; lastT = t; startPos = t; }
    if (firstPlaying && s !== IVSPlayer.PlayerState.ENDED) {
      if (t > lastT) { lastT = t; lastAdvance = now; } else { maxStall = Math.max(maxStall, now - lastAdvance); }
    }
  }, 100);
  setInterval(report, 500);
})();`

type pageReport struct {
	Page          string            `json:"page"`
	Supported     bool              `json:"supported"`
	HasAPI        bool              `json:"hasAPI"`
	MissingAPI    []string          `json:"missingAPI"`
	State         string            `json:"state"`
	Position      float64           `json:"position"`
	StartPosition float64           `json:"startPosition"`
	Qualities     []json.RawMessage `json:"qualities"`
	Latency       float64           `json:"latency"`
	LowLatency    bool              `json:"lowLatency"`
	Buffer        float64           `json:"buffer"`
	MaxStallMs    float64           `json:"maxStallMs"`
	PlayedMs      float64           `json:"playedMs"`
	Events        []struct {
		T       int64           `json:"t"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	} `json:"events"`
	Error   string   `json:"error"`
	Logs    []string `json:"logs"`
	Workers []string `json:"workers"`
}

func requireTools(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath()); err != nil {
		if os.Getenv("OPENIVS_NO_CHROMIUM") == "1" {
			fmt.Fprintf(os.Stderr, "WARNING: %s missing and OPENIVS_NO_CHROMIUM=1: the web player is NOT tested in a browser\n", chromiumPath())
			t.Skipf("SKIPPING browser test: %s missing and OPENIVS_NO_CHROMIUM=1", chromiumPath())
		}
		t.Fatalf("%s missing (run make deps, or set OPENIVS_NO_CHROMIUM=1 to skip): %v", chromiumPath(), err)
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg missing (run make deps): %v", err)
	}
}

// startProcess runs cmd in its own process group so the whole tree (Chromium's
// zygote and renderers) is killed at cleanup.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", name, tail(out.String(), 3000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// harness serves the demo pages (with the probe injected), the HLS files of
// hlsDir, and collects the probe's reports by page path.
type harness struct {
	dir     string
	srv     *httptest.Server
	mu      sync.Mutex
	reports map[string]chan pageReport
	reqs    []string
}

func newHarness(t *testing.T, dir, hlsDir string, playbackURL func(base, id string) string) *harness {
	h := &harness{dir: dir, reports: map[string]chan pageReport{}}
	var base string
	player := Handler(func(id string) string { return playbackURL(base, id) })
	hlsFiles := http.StripPrefix("/hls/", http.FileServer(http.Dir(hlsDir)))
	mux := http.NewServeMux()
	mux.Handle("/hls/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		}
		hlsFiles.ServeHTTP(w, r)
	}))
	mux.HandleFunc("/__probe.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, probeJS)
	})
	mux.HandleFunc("/__report", func(w http.ResponseWriter, r *http.Request) {
		var rep pageReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err == nil {
			select {
			case h.channel(rep.Page) <- rep:
			default: // the test stopped reading
			}
		}
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/play/") {
			player.ServeHTTP(w, r)
			return
		}
		// The probe goes first in <head> so it sees everything the page does.
		rec := httptest.NewRecorder()
		player.ServeHTTP(rec, r)
		body := strings.Replace(rec.Body.String(), "<head>", `<head><script src="/__probe.js"></script>`, 1)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = io.WriteString(w, body)
	}))
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/__report" {
			h.mu.Lock()
			h.reqs = append(h.reqs, fmt.Sprintf("%s %s", time.Now().Format("15:04:05.000"), r.URL.RequestURI()))
			h.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	h.srv.Start()
	base = h.srv.URL // written before any request can read it
	t.Cleanup(func() {
		h.srv.Close()
		if t.Failed() {
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Logf("requests (last 40 of %d):\n%s", len(h.reqs), strings.Join(h.reqs[max(0, len(h.reqs)-40):], "\n"))
		}
	})
	return h
}

func (h *harness) channel(page string) chan pageReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.reports[page]
	if !ok {
		ch = make(chan pageReport, 128)
		h.reports[page] = ch
	}
	return ch
}

// open loads path in a fresh headless Chromium and returns the last report
// once done(report) holds or timeout passes; Chromium is killed on return.
func (h *harness) open(t *testing.T, path string, timeout time.Duration, done func(pageReport) bool) pageReport {
	t.Helper()
	profile, err := os.MkdirTemp(h.dir, "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(chromiumPath(),
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
		"--remote-debugging-port=0", // keeps headless Chromium running on the page
		"--user-data-dir="+profile,
		h.srv.URL+path)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Own process group, so the zygote and renderers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("chromium output for %s (tail):\n%s", path, tail(out.String(), 2000))
		}
	}()

	reports := h.channel(path)
	deadline := time.After(timeout)
	var rep pageReport
	got := false
	for {
		select {
		case rep = <-reports:
			got = true
			if done(rep) {
				return rep
			}
		case <-exited:
			t.Fatalf("chromium exited early loading %s", path)
		case <-deadline:
			if !got {
				t.Fatalf("no report from %s within %s: Chromium did not load it or the probe did not run", path, timeout)
			}
			return rep
		}
	}
}

func (r pageReport) states() []string {
	var states []string
	for _, e := range r.Events {
		var s string
		if e.Type == "PlayerStateChanged" && json.Unmarshal(e.Payload, &s) == nil {
			states = append(states, s)
		}
	}
	return states
}

func (r pageReport) logTo(t *testing.T) {
	t.Helper()
	for _, l := range r.Logs {
		t.Logf("page console: %s", l)
	}
}

// TestPlayerInChromium plays a live HLS stream (ffmpeg, real time, then
// EXT-X-ENDLIST) through /play/<id> with the project's player in headless
// Chromium, and checks the IVS player contract as page code sees it.
func TestPlayerInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	requireTools(t)
	browserlock.Acquire(t) // before the stream starts: it is real time
	const streamSeconds = 15

	dir := t.TempDir()
	hlsDir := filepath.Join(dir, "hls")
	if err := os.Mkdir(hlsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A live event playlist written in real time; ffmpeg appends EXT-X-ENDLIST when it finishes.
	ffmpeg := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(streamSeconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-b:v", "800k",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "event",
		"-hls_flags", "program_date_time+temp_file+independent_segments",
		"-master_pl_name", "master.m3u8",
		"-hls_segment_filename", filepath.Join(hlsDir, "seg%03d.ts"),
		filepath.Join(hlsDir, "index.m3u8"))
	startProcess(t, "ffmpeg", ffmpeg)

	h := newHarness(t, dir, hlsDir, func(base, id string) string {
		switch id {
		case "live":
			return base + "/hls/master.m3u8"
		case "offline":
			return base + "/hls/offline.m3u8" // never exists: the server's 404 for an offline channel
		}
		return ""
	})

	// While ffmpeg warms up: an offline channel is a fatal NOT_AVAILABLE error from the MasterPlaylist.
	t.Run("offline", func(t *testing.T) {
		rep := h.open(t, "/play/offline", 15*time.Second, func(r pageReport) bool { return r.Error != "" })
		var perr struct {
			Type, Source string
			Code         int
		}
		found := false
		for _, e := range rep.Events {
			if e.Type == "PlayerError" && json.Unmarshal(e.Payload, &perr) == nil {
				found = true
				break
			}
		}
		if !found {
			rep.logTo(t)
			t.Fatalf("no ERROR event; page error %q, events %d", rep.Error, len(rep.Events))
		}
		if perr.Type != "ErrorNotAvailable" || perr.Code != 404 || perr.Source != "MasterPlaylist" {
			t.Errorf("ERROR payload %+v, want {Type:ErrorNotAvailable Source:MasterPlaylist Code:404}", perr)
		}
		if rep.State != "Idle" {
			t.Errorf("state after a fatal error %q, want Idle", rep.State)
		}
	})

	// Join once the stream has a few seconds of media, as a viewer of a live stream would.
	waitFor(t, 10*time.Second, "ffmpeg to write 3 segments", func() bool {
		b, _ := os.ReadFile(filepath.Join(hlsDir, "index.m3u8"))
		_, err := os.Stat(filepath.Join(hlsDir, "master.m3u8"))
		return err == nil && strings.Count(string(b), "#EXTINF") >= 3
	})
	browserStart := time.Now()
	rep := h.open(t, "/play/live", streamSeconds*time.Second+20*time.Second, func(r pageReport) bool { return r.State == "Ended" })
	t.Logf("browser ran %s: state=%s position=%.2fs (from %.2fs) played=%.1fs maxStall=%.0fms latency=%.2fs lowLatency=%v qualities=%d events=%d",
		time.Since(browserStart).Round(100*time.Millisecond), rep.State, rep.Position, rep.StartPosition, rep.PlayedMs/1000, rep.MaxStallMs, rep.Latency, rep.LowLatency, len(rep.Qualities), len(rep.Events))
	defer func() {
		if t.Failed() {
			rep.logTo(t)
		}
	}()

	if !rep.Supported || !rep.HasAPI {
		t.Errorf("IVSPlayer.isPlayerSupported=%v, API complete=%v", rep.Supported, rep.HasAPI)
	}
	if len(rep.MissingAPI) > 0 {
		t.Errorf("IVS player API missing or wrong: %v", rep.MissingAPI)
	}
	if rep.Error != "" {
		t.Errorf("page shows an error: %s", rep.Error)
	}
	if len(rep.Qualities) == 0 {
		t.Error("getQualities() is empty")
	}
	// hls.js transmuxes in a blob: worker; the page's CSP must allow it (spec/03 §11).
	if len(rep.Workers) == 0 || rep.Workers[0] != "blob:" {
		t.Errorf("workers started: %v, want a blob: worker (hls.js transmuxer)", rep.Workers)
	}
	if len(rep.Events) == 0 || rep.Events[0].Type != "PlayerInitialized" {
		t.Errorf("first event is not INITIALIZED: %+v", rep.Events)
	}
	for _, e := range rep.Events {
		if e.Type == "PlayerError" {
			t.Errorf("ERROR event at %dms: %s", e.T, e.Payload)
		}
	}
	states := rep.states()
	t.Logf("STATE_CHANGED sequence: %v", states)
	if !hasSubsequence(states, []string{"Ready", "Buffering", "Playing"}) {
		t.Errorf("STATE_CHANGED sequence %v lacks Ready → Buffering → Playing", states)
	}
	if len(states) == 0 || states[len(states)-1] != "Ended" || rep.State != "Ended" {
		t.Errorf("after EXT-X-ENDLIST the state is %q (sequence %v), want Ended", rep.State, states)
	}
	if advanced := rep.Position - rep.StartPosition; advanced < 8 {
		t.Errorf("currentTime advanced %.2fs while playing, want ≥ 8s", advanced)
	}
	if rep.MaxStallMs > 1000 {
		t.Errorf("longest stall %.0fms, want ≤ 1000ms", rep.MaxStallMs)
	}
	if rep.Latency <= 0 {
		t.Errorf("getLiveLatency() = %.2f, want > 0 on a live stream with PROGRAM-DATE-TIME", rep.Latency)
	}
}

func hasSubsequence(seq, want []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", d, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
