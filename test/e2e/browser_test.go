package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/testutil/browserlock"
)

// browserProbe rides along the demo page and posts what the player does.
const browserProbe = `(function () {
  var firstPlaying = 0, lastT = -1, lastAdvance = 0, maxStall = 0, lat = [];
  setInterval(function () {
    var p = window.player; if (!p) return;
    var now = Date.now(), s = p.getState(), t = p.getPosition();
    if (!firstPlaying && s === IVSPlayer.PlayerState.PLAYING) { firstPlaying = now; lastAdvance = now; lastT = t; }
    if (firstPlaying && s !== IVSPlayer.PlayerState.ENDED) {
      if (t > lastT) { lastT = t; lastAdvance = now; } else { maxStall = Math.max(maxStall, now - lastAdvance); }
      if (s === IVSPlayer.PlayerState.PLAYING) { var l = p.getLiveLatency(); if (l > 0) lat.push(l); }
    }
  }, 100);
  setInterval(function () {
    var p = window.player; if (!p) return;
    fetch('/__report', {method: 'POST', keepalive: true, body: JSON.stringify({
      state: p.getState(), position: p.getPosition(), playedMs: firstPlaying ? Date.now() - firstPlaying : 0,
      maxStallMs: maxStall, qualities: p.getQualities().length, lowLatency: p.isLiveLowLatency(), latencies: lat,
      events: (window.playerEvents || []).map(function (e) { return e.type; }),
      errors: (window.playerEvents || []).filter(function (e) { return /Error/.test(e.type); }).map(function (e) { return JSON.stringify(e.payload); }),
      qualityNames: p.getQualities().map(function (q) { return q.name; }),
      metaCues: (window.playerEvents || []).filter(function (e) { return e.type === 'PlayerTextMetadataCue'; }).map(function (e) { return e.payload; }),
      textCues: (window.playerEvents || []).filter(function (e) { return e.type === 'PlayerTextCue'; }).map(function (e) { return e.payload; }),
      captionTracks: Array.prototype.filter.call((document.querySelector('video') || {textTracks: []}).textTracks, function (t) { return t.kind === 'captions'; }).length,
      quality: p.getQuality().name || '', qualityHeight: p.getQuality().height || 0, qualityBitrate: p.getQuality().bitrate || 0,
      autoQuality: p.isAutoQualityMode(), videoHeight: p.getVideoHeight(),
      qualityChanges: (window.playerEvents || []).filter(function (e) { return e.type === 'PlayerQualityChanged'; }).map(function (e) { return e.payload && e.payload.name; })
    })});
  }, 500);
})();`

type browserReport struct {
	State      string    `json:"state"`
	Position   float64   `json:"position"`
	PlayedMs   float64   `json:"playedMs"`
	MaxStallMs float64   `json:"maxStallMs"`
	Qualities  int       `json:"qualities"`
	LowLatency bool      `json:"lowLatency"`
	Latencies  []float64 `json:"latencies"`
	Events     []string  `json:"events"`
	Errors     []string  `json:"errors"`
	// The player's qualities by name in getQualities() order, the current
	// one (getQuality) with its height and bitrate, whether ABR is on, the
	// decoded video's height, and the names QUALITY_CHANGED events carried.
	QualityNames   []string `json:"qualityNames"`
	Quality        string   `json:"quality"`
	QualityHeight  int      `json:"qualityHeight"`
	QualityBitrate int      `json:"qualityBitrate"`
	AutoQuality    bool     `json:"autoQuality"`
	VideoHeight    int      `json:"videoHeight"`
	QualityChanges []string `json:"qualityChanges"`
	// MetaCues are the TEXT_METADATA_CUE payloads, in the order fired.
	MetaCues []metaCue `json:"metaCues"`
	// TextCues are the TEXT_CUE payloads (captions), in the order fired;
	// CaptionTracks counts the video element's "captions" text tracks.
	TextCues []struct {
		Type      string  `json:"type"`
		Text      string  `json:"text"`
		StartTime float64 `json:"startTime"`
		EndTime   float64 `json:"endTime"`
	} `json:"textCues"`
	CaptionTracks int `json:"captionTracks"`
}

// metaCue is a TEXT_METADATA_CUE payload.
type metaCue struct {
	Type        string  `json:"type"`
	Text        string  `json:"text"`
	Owner       string  `json:"owner"`
	Description string  `json:"description"`
	StartTime   float64 `json:"startTime"`
}

// TestBrowserPlaysLiveStream: ffmpeg → openivs (RTMPS, LL-HLS) → our player
// in headless Chromium on the demo page: it plays continuously, reports its
// live latency, and reaches ENDED when the stream ends, for both container
// formats.
func TestBrowserPlaysLiveStream(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	// One after the other: two browsers and encoders at once would starve
	// the two cores and make stalls the machine's, not the server's.
	for _, format := range []types.ContainerFormat{types.ContainerFormatTs, types.ContainerFormatFragmentedMP4} {
		t.Run(string(format), func(t *testing.T) {
			ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, ContainerFormat: format})
			arn := aws.ToString(ch.Channel.Arn)
			id := arn[strings.LastIndex(arn, "/")+1:]
			enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: 600})
			waitLive(t, c, ch.Channel.Arn, enc)
			waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)

			if st, err := c.GetStream(t.Context(), &ivs.GetStreamInput{ChannelArn: ch.Channel.Arn}); err != nil || st.Stream.ViewerCount != 0 {
				t.Errorf("GetStream before anyone watches: %+v, %v; want viewerCount 0", st, err)
			}

			snapshot, chromiumOut := startBrowser(t, srv, chromium, id)

			// Play for 30 s.
			deadline := time.Now().Add(90 * time.Second)
			for {
				rep, n := snapshot()
				if rep.PlayedMs >= 30_000 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("played %.1f s of 30 within 90 s (state %q, position %.1f, %d reports, events %v, errors %v)\nchromium:\n%s",
						rep.PlayedMs/1000, rep.State, rep.Position, n, rep.Events, rep.Errors, chromiumLog(chromiumOut()))
				}
				time.Sleep(250 * time.Millisecond)
			}
			// The one browser is the channel's one viewer.
			if st, err := c.GetStream(t.Context(), &ivs.GetStreamInput{ChannelArn: ch.Channel.Arn}); err != nil {
				t.Errorf("GetStream: %v", err)
			} else if st.Stream.ViewerCount != 1 {
				t.Errorf("GetStream.viewerCount = %d while one browser plays, want 1", st.Stream.ViewerCount)
			}
			rep, _ := snapshot()
			if rep.MaxStallMs > 1000 {
				t.Errorf("playback stalled for %.0f ms", rep.MaxStallMs)
			}
			if rep.Qualities == 0 || !rep.LowLatency {
				t.Errorf("qualities %d, low latency %v", rep.Qualities, rep.LowLatency)
			}
			if !hasInOrder(rep.Events, "PlayerInitialized", "PlayerStateChanged", "PlayerStateChanged") {
				t.Errorf("state events %v", rep.Events)
			}
			if lat := rep.Latencies; len(lat) > 0 {
				sort.Float64s(lat)
				t.Logf("live latency over %d samples: p50 %.2f s, p95 %.2f s", len(lat), lat[len(lat)/2], lat[len(lat)*95/100])
			}

			// The stream ends: the player reaches ENDED.
			_ = enc.cmd.Process.Kill()
			deadline = time.Now().Add(20 * time.Second)
			for {
				if rep, _ := snapshot(); rep.State == "Ended" {
					break
				}
				if time.Now().After(deadline) {
					rep, _ := snapshot()
					t.Fatalf("state %q 20 s after the stream ended", rep.State)
				}
				time.Sleep(250 * time.Millisecond)
			}
		})
	}
}

// startBrowser opens /play/<channelID> in headless Chromium behind a
// same-origin proxy that injects the probe; it returns the probe's latest
// report (and how many arrived) and Chromium's output so far. wrap, when
// given, wraps the proxy's whole handler (a test's own endpoints, page
// rewrites or throttling).
func startBrowser(t *testing.T, srv *server, chromium, id string, wrap ...func(http.Handler) http.Handler) (snapshot func() (browserReport, int), output func() string) {
	t.Helper()
	// A same-origin proxy in front of the server injects the probe into the
	// demo page; player, playlists and media pass through unchanged.
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Request.URL.Path, "/play/") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		page := strings.Replace(string(body), "<head>", `<head><script src="/__probe.js"></script>`, 1)
		// The page's CSP names the server's origin; the proxy is another one.
		page = strings.ReplaceAll(page, srv.Endpoint, "")
		resp.Header.Del("Content-Security-Policy")
		resp.Header.Del("Content-Length")
		resp.Body = io.NopCloser(strings.NewReader(page))
		return nil
	}
	var mu sync.Mutex
	var last browserReport
	reports := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/__probe.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, browserProbe)
	})
	mux.HandleFunc("/__report", func(w http.ResponseWriter, r *http.Request) {
		var rep browserReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err == nil {
			mu.Lock()
			last, reports = rep, reports+1
			mu.Unlock()
		}
	})
	mux.Handle("/", proxy)
	var handler http.Handler = mux
	for _, w := range wrap {
		handler = w(handler)
	}
	front := httptest.NewServer(handler)
	t.Cleanup(front.Close)
	snapshot = func() (browserReport, int) {
		mu.Lock()
		defer mu.Unlock()
		return last, reports
	}

	return snapshot, launchChromium(t, chromium, front.URL+"/play/"+id)
}

// liveGate holds the player page (/play/...) until live is closed: a test
// launches Chromium first, which takes the browser lock, and starts its
// stream (encoder, transcode) only then, so they never run next to
// another test's browser.
func liveGate(live <-chan struct{}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/play/") {
				select {
				case <-live:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// waitMetaCues waits (up to within) for the player to fire the wanted
// TEXT_METADATA_CUE texts, then a second more for a duplicate; it fails
// the test unless they came exactly, in order, each with the owner.
// IVS's segmentmetadata cues (TS segments) are left out, as apps do.
func waitMetaCues(t *testing.T, snapshot func() (browserReport, int), want []string, owner string, within time.Duration, diag func() string) {
	t.Helper()
	cues := func() []metaCue {
		rep, _ := snapshot()
		var out []metaCue
		for _, cue := range rep.MetaCues {
			if cue.Description != "segmentmetadata" {
				out = append(out, cue)
			}
		}
		return out
	}
	deadline := time.Now().Add(within)
	for len(cues()) < len(want) {
		if time.Now().After(deadline) {
			var got []string
			for _, cue := range cues() {
				got = append(got, fmt.Sprintf("%.3f %s", cue.StartTime, cue.Text))
			}
			t.Fatalf("%d of %d cues arrived:\n%s\n%s", len(got), len(want), strings.Join(got, "\n"), diag())
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate would show up now
	var got []string
	for _, cue := range cues() {
		got = append(got, cue.Text)
		if cue.Owner != owner || cue.Type != "TextMetadataCue" {
			t.Errorf("cue %+v: want type TextMetadataCue, owner %s", cue, owner)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("cues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// launchChromium opens pageURL in headless Chromium with a fresh profile,
// autoplay allowed and audio muted, in its own process group that is
// killed when the test ends; one browser test runs at a time (browserlock). extra flags go before the URL. It returns
// Chromium's output so far.
func launchChromium(t *testing.T, chromium, pageURL string, extra ...string) (output func() string) {
	t.Helper()
	browserlock.Acquire(t)
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--autoplay-policy=no-user-gesture-required", "--mute-audio", "--remote-debugging-port=0",
		"--user-data-dir=" + t.TempDir()}
	args = append(append(args, extra...), pageURL)
	cmd := exec.Command(chromium, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, cmd.Start(), "start chromium")
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return out.String
}

// chromiumPath is the Chromium to drive; a missing one fails the test
// (make test installs it) unless OPENIVS_NO_CHROMIUM=1 says to skip.
func chromiumPath(t *testing.T) string {
	t.Helper()
	chromium := os.Getenv("OPENIVS_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("OPENIVS_NO_CHROMIUM") == "1" {
			t.Skip("SKIPPING: Chromium is not installed and OPENIVS_NO_CHROMIUM=1")
		}
		t.Fatalf("Chromium missing at %s (make test installs it)", chromium)
	}
	return chromium
}

// chromiumLog drops the D-Bus complaints headless Chromium prints on a
// machine without a session bus, which would bury what matters.
func chromiumLog(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, "dbus") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func hasInOrder(seq []string, want ...string) bool {
	i := 0
	for _, s := range seq {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestBrowserPlaysThroughTakeover: a higher-priority encoder takes over a
// live stream while our player plays it in Chromium; the player crosses the
// discontinuity and keeps playing the new encoder's media.
func TestBrowserPlaysThroughTakeover(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	arn := aws.ToString(ch.Channel.Arn)
	key := aws.ToString(ch.StreamKey.Value)
	// Encoders run long: a browser test may wait its turn (browserlock)
	// while they stream; they are killed when the test ends.
	opts := encodeOpts{size: "640x360", bitrate: "800k", seconds: 600}
	first := startEncoder(t, rtmpsURL(srv, key+"?priority=1"), opts)
	waitLive(t, c, ch.Channel.Arn, first)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)
	snapshot, chromiumOut := startBrowser(t, srv, chromium, arn[strings.LastIndex(arn, "/")+1:])

	waitPlayed := func(ms float64, within time.Duration) browserReport {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			rep, n := snapshot()
			if rep.PlayedMs >= ms {
				return rep
			}
			if time.Now().After(deadline) {
				t.Fatalf("played %.1f s of %.0f (state %q, position %.1f, %d reports, events %v, errors %v)\nchromium:\n%s",
					rep.PlayedMs/1000, ms/1000, rep.State, rep.Position, n, rep.Events, rep.Errors, chromiumLog(chromiumOut()))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitPlayed(8_000, 90*time.Second)

	second := startEncoder(t, rtmpsURL(srv, key+"?priority=2"), opts)
	if !first.waitExit(20 * time.Second) {
		t.Fatalf("the first encoder was not taken over; second said:\n%s", second.out.String())
	}
	waitEvent(t, c, ch.Channel.Arn, "Stream Takeover", 5*time.Second)
	before, _ := snapshot()
	after := waitPlayed(before.PlayedMs+10_000, 30*time.Second)
	if adv := after.Position - before.Position; adv < 7 {
		t.Errorf("position advanced %.1f s in the 10 s after the takeover (state %q, errors %v)", adv, after.State, after.Errors)
	}
	if after.State != "Playing" {
		t.Errorf("state %q after the takeover, want Playing", after.State)
	}
	if !slices.Contains(after.Events, "PlayerSegmentDiscontinuity") {
		t.Errorf("no PlayerSegmentDiscontinuity event: %v", after.Events)
	}
	t.Logf("longest stall %.0f ms; latency samples p50 %.2f s", after.MaxStallMs, median(after.Latencies))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	sort.Float64s(v)
	return v[len(v)/2]
}

// TestBrowserPlaysNormalLatency: a latencyMode NORMAL channel gets plain
// HLS (no parts); our player plays it as a normal-latency live stream.
func TestBrowserPlaysNormalLatency(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, LatencyMode: types.ChannelLatencyModeNormalLatency})
	arn := aws.ToString(ch.Channel.Arn)
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: 600})
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)
	snapshot, chromiumOut := startBrowser(t, srv, chromium, arn[strings.LastIndex(arn, "/")+1:])

	deadline := time.Now().Add(90 * time.Second)
	var rep browserReport
	for {
		var n int
		rep, n = snapshot()
		if rep.PlayedMs >= 15_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("played %.1f s of 15 within 90 s (state %q, position %.1f, %d reports, events %v, errors %v)\nchromium:\n%s",
				rep.PlayedMs/1000, rep.State, rep.Position, n, rep.Events, rep.Errors, chromiumLog(chromiumOut()))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if rep.LowLatency {
		t.Error("the player reports low latency on a NORMAL channel")
	}
	if rep.MaxStallMs > 1000 {
		t.Errorf("playback stalled for %.0f ms", rep.MaxStallMs)
	}
	if rep.Position < 10 {
		t.Errorf("position %.1f s after 15 s of playback", rep.Position)
	}
	t.Logf("NORMAL latency p50 %.2f s over %d samples", median(rep.Latencies), len(rep.Latencies))
}
