package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func f64p(v float64) *float64 { return &v }

// TestAnalyzeLatency feeds a made-up session to the analysis: warm-up
// ticks are left out, the window's PLAYING ticks are the samples, and
// stalls, buffering, freezes and catch-up are counted in the window only.
func TestAnalyzeLatency(t *testing.T) {
	const nav = 1_000_000.0 // browser ms
	first := nav + 1500     // first PLAYING
	ws, we := first+2000, first+2000+1000
	s := &latencySnapshot{
		navStart: nav, loadAt: nav + 200,
		info: latencyInfoJSON{Browser: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
			Version: "1.44.0-openivs.0", LowLatency: true, PartTarget: 0.25, PartHoldBack: 0.75, TargetDuration: 1, Container: "ts"},
		events: []latencyEventJSON{
			{T: first, Type: "PlayerStateChanged", Detail: "Playing"},
			{T: first + 500, Type: "PlayerRebuffering"}, // warm-up: not counted
			{T: ws + 450, Type: "PlayerRebuffering"},
			{T: ws + 460, Type: "PlayerRecoverableError", Detail: `{"type":"ErrorNetwork","code":503}`},
			{T: ws + 470, Type: "PlayerRecoverableError", Detail: `{"type":"ErrorNetwork","code":503}`},
		},
	}
	// Warm-up: huge latencies that must not count.
	for i := range 20 {
		s.ticks = append(s.ticks, latencyTickJSON{T: first + float64(i*100), State: "Playing", Pos: f64p(float64(i) / 10), Lat: f64p(9)})
	}
	// Window, 11 ticks: 0.9..1.3 s latency, two buffering ticks whose
	// position stands still, a tick with no latency, one without a
	// program-date-time, two at 1.5×.
	pos := 2.0
	win := []latencyTickJSON{
		{State: "Playing", Lat: f64p(1.0), Edge: f64p(0.9), Buf: f64p(0.9), Rate: f64p(1)},
		{State: "Playing", Lat: f64p(1.1), Edge: f64p(1.0), Buf: f64p(1.0), Rate: f64p(1.5)},
		{State: "Playing", Lat: f64p(0.9), Edge: f64p(0.8), Buf: f64p(0.8), Rate: f64p(1)},
		{State: "Playing", Lat: f64p(1.2), Edge: f64p(1.0), Buf: f64p(1.0), Rate: f64p(1.5)},
		{State: "Playing", Lat: f64p(1.0), Edge: f64p(0.9), Buf: f64p(0.9), Rate: f64p(1)},
		{State: "Buffering", Lat: f64p(1.3), Rate: f64p(1)},
		{State: "Buffering", Lat: f64p(1.4), Rate: f64p(1)},
		{State: "Playing", Lat: nil, Rate: f64p(1)},
		{State: "Playing", Lat: f64p(0.5), Rate: f64p(1), NoPDT: true},
		{State: "Playing", Lat: f64p(1.3), Edge: f64p(1.1), Rate: f64p(1), Target: f64p(0.75)},
		{State: "Playing", Lat: f64p(1.1), Edge: f64p(1.0), Rate: f64p(1), Target: f64p(1.0)},
	}
	for i, tk := range win {
		tk.T = ws + float64(i*100)*10/11
		if i != 5 && i != 6 { // frozen while buffering
			pos += 0.1
		}
		tk.Pos = f64p(pos)
		s.ticks = append(s.ticks, tk)
	}
	// After the window: not counted either.
	s.ticks = append(s.ticks, latencyTickJSON{T: we, State: "Playing", Pos: f64p(pos + 0.1), Lat: f64p(7)})

	r := analyzeLatency(s, ws, we)
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	eq("samples", r.Samples, 7)
	eq("invalid", r.Invalid, 2)
	eq("no PDT", r.NoProgramDateTime, 1)
	// Sorted: 0.9 1.0 1.0 1.1 1.1 1.2 1.3 — nearest rank.
	near("p50", r.Latency.P50, 1.1)
	near("p95", r.Latency.P95, 1.3)
	near("min", r.Latency.Min, 0.9)
	near("max", r.Latency.Max, 1.3)
	near("mean", r.Latency.Mean, 7.6/7)
	eq("behind-edge n", r.BehindEdge.N, 7)
	near("edge age max", r.EdgeAge.Max, 0.2)
	near("edge age min", r.EdgeAge.Min, 0.1)
	eq("buffer n", r.Buffer.N, 5)
	near("target", r.TargetLatency, 1.0)
	eq("stalls", r.Stalls, 1)
	near("rebuffer time", r.RebufferTime, 0.2/1.1)
	near("longest freeze", r.LongestFreeze, 0.2/1.1)
	near("catch-up", r.CatchUp, 2.0/9)
	near("window", r.Window, 1.0)
	near("first frame", r.FirstFrame, 1.5)
	near("first frame from load", r.FirstFrameFromLoad, 1.3)
	eq("recoverable errors", r.RecoverableErrors, 2)
	eq("distinct messages", len(r.ErrorMessages), 1)
	eq("browser", r.Browser, "HeadlessChrome/156.0.0.0")
	eq("state", r.State, "Playing")
	if !r.OK() {
		t.Error("not OK with samples")
	}

	var text bytes.Buffer
	r.Report(&text)
	t.Log("\n" + text.String())
	for _, want := range []string{
		"latency p50 1.10 s  p95 1.30 s  min 0.90 s  max 1.30 s (7 samples over 1 s), stalls 1, first frame after 1.5 s",
		"PART-HOLD-BACK 0.75 s", "container ts", "stalls 1 (0.18 s buffering)", "1 PLAYING ticks had no EXT-X-PROGRAM-DATE-TIME",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		OK      bool
		Summary string
		Samples int
		Latency LatencyStats
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if !back.OK || back.Samples != 7 || back.Latency.P50 != 1.1 || !strings.HasPrefix(back.Summary, "latency p50 1.10 s") {
		t.Errorf("JSON %s", b)
	}
}

// TestAnalyzeLatencyNothing: never playing gives no samples and not OK.
func TestAnalyzeLatencyNothing(t *testing.T) {
	s := &latencySnapshot{ticks: []latencyTickJSON{{T: 1000, State: "Buffering"}}}
	r := analyzeLatency(s, 2000, 3000)
	if r.OK() || r.Samples != 0 || r.FirstFrame != 0 || r.State != "Buffering" {
		t.Errorf("%+v", r)
	}
	var text bytes.Buffer
	r.Report(&text)
	if !strings.Contains(text.String(), "FAIL: no latency samples") {
		t.Errorf("report:\n%s", text.String())
	}
}

func TestStatsNearestRank(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	s := latencyStatsOf(v)
	if s.P50 != 51 || s.P95 != 96 || s.Min != 1 || s.Max != 100 || s.Mean != 50.5 || s.N != 100 {
		t.Errorf("%+v", s)
	}
	if v[0] != 100 {
		t.Error("stats sorted its input")
	}
	if (latencyStatsOf(nil) != LatencyStats{}) {
		t.Error("stats of nothing")
	}
}

// TestLatencyHandler: the page carries the settings safely, the player
// bundle and probe are served, and /report collects batches.
func TestLatencyHandler(t *testing.T) {
	evil := "http://example.com/a.m3u8?x=</script><script>alert(1)</script>"
	page, err := latencyPageFor(evil, false, evil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(page), "</script><script>alert") || !strings.Contains(string(page), `"lowLatency":false`) {
		t.Fatalf("page:\n%s", page)
	}
	col := &latencyCollector{update: make(chan struct{}, 1)}
	h, err := latencyHandler(page, col)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	if !bytes.Equal([]byte(get("/")), page) {
		t.Error("page differs")
	}
	if js := get("/openivs-player.min.js"); len(js) < 100_000 || !strings.Contains(js, "IVSPlayer") {
		t.Errorf("player bundle: %d bytes", len(js))
	}
	if !strings.Contains(get("/bench.js"), "getLiveLatency") {
		t.Error("probe")
	}
	body := `{"seq":0,"navStart":1000.5,"loadAt":1100,"ticks":[{"t":2000,"state":"Playing","pos":1.5,"lat":null,"buf":0.5,"rate":1}],
		"events":[{"t":1900,"type":"PlayerStateChanged","detail":"Playing"}],"info":{"version":"v","lowLatency":true}}`
	resp, err := http.Post(srv.URL+"/report", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	select {
	case <-col.update:
	default:
		t.Error("no update signalled")
	}
	s := col.snapshot()
	if s.batches != 1 || len(s.ticks) != 1 || s.ticks[0].Lat != nil || *s.ticks[0].Pos != 1.5 || s.firstPlaying() != 1900 || s.navStart != 1000.5 || !s.info.LowLatency {
		t.Errorf("collected %+v", s)
	}
	resp, err = http.Post(srv.URL+"/report", "application/json", strings.NewReader("{"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad report: %d", resp.StatusCode)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 32}
	for _, s := range []string{"one\n", "[1:1:WARNING:x] drmGetDevices2() none\n", "two\n", strings.Repeat("x", 20) + "\n", "three\n"} {
		_, _ = b.Write([]byte(s))
	}
	if got := b.Lines(2); got != strings.Repeat("x", 20)+"\nthree" {
		t.Errorf("Lines(2) = %q", got)
	}
	if len(b.buf) > 32 {
		t.Errorf("kept %d bytes", len(b.buf))
	}
}

func TestRunLatencyRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/y.m3u8", "not a url", "http:///nohost.m3u8"} {
		if _, err := RunLatency(t.Context(), LatencyOptions{URL: u}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			t.Errorf("%q: %v", u, err)
		}
	}
	_, err := RunLatency(t.Context(), LatencyOptions{URL: "http://127.0.0.1:1/x.m3u8", Chromium: "/nonexistent/chromium"})
	if err == nil || !strings.Contains(err.Error(), "Chromium not found") {
		t.Errorf("missing Chromium: %v", err)
	}
}

// chromiumOrSkip returns the Chromium binary; without one the test fails
// unless OPENIVS_NO_CHROMIUM=1 says the machine has none on purpose.
func chromiumOrSkip(t *testing.T) string {
	path := os.Getenv("OPENIVS_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("OPENIVS_NO_CHROMIUM") == "1" {
			t.Skipf("\n!!!!!!!! SKIPPED: no Chromium at %s (OPENIVS_NO_CHROMIUM=1); the latency benchmark's browser is NOT tested !!!!!!!!", path)
		}
		t.Fatalf("Chromium missing at %s (make test installs it; OPENIVS_NO_CHROMIUM=1 to skip)", path)
	}
	return path
}

// TestRunLatencyPlayerError runs the real browser against a server that
// answers 404 with CORS: the player's fatal error ends the run with an
// error that says what the player said, and the browser is gone after.
func TestRunLatencyPlayerError(t *testing.T) {
	chromium := chromiumOrSkip(t)
	hits := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hits <- r.URL.Path:
		default:
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		http.NotFound(w, r)
	}))
	defer srv.Close()
	var progress bytes.Buffer
	_, err := RunLatency(t.Context(), LatencyOptions{URL: srv.URL + "/live/missing.m3u8", Chromium: chromium,
		Duration: time.Second, StartTimeout: 60 * time.Second, Progress: &progress})
	if err == nil {
		t.Fatal("no error for a 404 playlist")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "failed before playing") || !strings.Contains(err.Error(), "404") {
		t.Errorf("error %v\nprogress:\n%s", err, progress.String())
	}
	select {
	case p := <-hits:
		if p != "/live/missing.m3u8" {
			t.Errorf("the player asked for %s", p)
		}
	default:
		t.Error("the player never asked for the playlist")
	}
}
