package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// scrape is one /metrics answer.
type scrape string

var (
	metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// value is the sample of name whose labels are exactly labels.
func (s scrape) value(name string, labels map[string]string) (float64, bool) {
	for _, line := range strings.Split(string(s), "\n") {
		m := metricLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		got := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			got[p[1]] = p[2]
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			v, err := strconv.ParseFloat(m[3], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// series lists the sample lines of name that mention text.
func (s scrape) series(name, text string) []string {
	var out []string
	for _, line := range strings.Split(string(s), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, text) {
			out = append(out, line)
		}
	}
	return out
}

func scrapeMetrics(t *testing.T, srv *server) scrape {
	t.Helper()
	resp, err := http.Get(srv.Endpoint + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return scrape(body)
}

// waitMetric polls /metrics until ok accepts the value of name{labels}
// (missing: ok(0, false)).
func waitMetric(t *testing.T, srv *server, name string, labels map[string]string, within time.Duration, what string, ok func(float64, bool) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, found := scrapeMetrics(t, srv).value(name, labels)
		if ok(v, found) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v (found %v) after %v", what, name, labels, v, found, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// playlistViewer is a plain HTTP viewer: the multivariant playlist, then
// its first media playlist every 500 ms until stop is called.
func playlistViewer(t *testing.T, url string) (stop func()) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var media string
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			media = line
			break
		}
	}
	if resp.StatusCode != http.StatusOK || media == "" {
		t.Fatalf("multivariant playlist %d:\n%s", resp.StatusCode, body)
	}
	mediaURL := url[:strings.LastIndex(url, "/")+1] + media
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stopped.Load() {
			if resp, err := http.Get(mediaURL); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	stop = func() {
		if stopped.CompareAndSwap(false, true) {
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// median of at least one value.
func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestMetricsDuringLiveStream: a CBR ffmpeg stream (800 kbps video at
// 30 fps, a keyframe every 2 s) shows in /metrics under the IVS metric
// names — IngestVideoBitrate and IngestFramerate within 10% of what ffmpeg
// sends, KeyframeInterval the GOP, ConcurrentStreams{HEALTHY} 1 — and
// ConcurrentViews follows the viewers: 0, 1 with our player in Chromium,
// 2 with a second (plain HTTP) viewer, back to 1 and 0 as they stop;
// LiveDeliveredTime and LiveInputTime grow. /v1/sessions/<id>/metrics
// serves the session's 1-second samples, and the end of the stream
// removes the channel's ingest and view series.
func TestMetricsDuringLiveStream(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	// BASIC: no transcode next to the browser. Its 360p limit is 1.5 Mbps
	// over 5 s, so the stream stays well below it: an encoder's start-up
	// burst under load must not end the stream with a Limit Breach.
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType})
	arn := aws.ToString(ch.Channel.Arn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	channel := map[string]string{"channel": arn}
	video := map[string]string{"channel": arn, "track": "video"}

	// The page plays through the test's proxy (its playback URL made
	// same-origin), which stops passing playback requests once blocked.
	pb := aws.ToString(ch.Channel.PlaybackUrl)
	playbackOrigin := pb[:strings.Index(pb, "/api/")]
	var blocked atomic.Bool
	block := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasPrefix(r.URL.Path, "/play/"):
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.Header().Del("Content-Length")
				w.WriteHeader(rec.Code)
				_, _ = io.WriteString(w, strings.ReplaceAll(rec.Body.String(), playbackOrigin, ""))
			case blocked.Load() && strings.HasPrefix(r.URL.Path, "/api/video/"):
				http.Error(w, "blocked by the test", http.StatusServiceUnavailable)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	// Chromium first (it takes the browser lock), then the stream.
	live := make(chan struct{})
	snapshot, output := startBrowser(t, srv, chromium, id, liveGate(live), block)

	const (
		bitrate = 800_000
		fps     = 30
		gop     = 60 // frames: a keyframe every 2 s
	)
	rate := strconv.Itoa(bitrate/1000) + "k"
	enc := startFFmpegEncoder(t, "-hide_banner", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=%d", fps),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "600",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
		"-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", rate, "-x264-params", "nal-hrd=cbr",
		"-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2",
		"-f", "flv", rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)))
	st := waitLive(t, c, ch.Channel.Arn, enc)
	streamID := aws.ToString(st.StreamId)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)

	// Nobody watches yet: ConcurrentViews 0 (not absent: the channel is live).
	waitMetric(t, srv, "openivs_concurrent_views", channel, 10*time.Second, "views before anyone watches",
		func(v float64, ok bool) bool { return ok && v == 0 })
	m := scrapeMetrics(t, srv)
	for health, want := range map[string]float64{"HEALTHY": 1, "STARVING": 0, "UNKNOWN": 0} {
		if v, ok := m.value("openivs_concurrent_streams", map[string]string{"health": health}); !ok || v != want {
			t.Errorf("ConcurrentStreams{health=%s} = %v (found %v), want %v", health, v, ok, want)
		}
	}

	// Five 1-second samples once the encoder has settled.
	time.Sleep(3 * time.Second)
	var vbr, fr, kfi, abr, total []float64
	for range 5 {
		m := scrapeMetrics(t, srv)
		for _, x := range []struct {
			name   string
			labels map[string]string
			into   *[]float64
		}{
			{"openivs_ingest_video_bitrate_bits_per_second", video, &vbr},
			{"openivs_ingest_framerate_frames_per_second", video, &fr},
			{"openivs_keyframe_interval_seconds", video, &kfi},
			{"openivs_ingest_audio_bitrate_bits_per_second", map[string]string{"channel": arn, "track": "audio"}, &abr},
			{"openivs_ingest_bitrate_bits_per_second", channel, &total},
		} {
			v, ok := m.value(x.name, x.labels)
			if !ok {
				t.Fatalf("no %s%v while live:\n%s", x.name, x.labels, strings.Join(m.series(x.name, ""), "\n"))
			}
			*x.into = append(*x.into, v)
		}
		time.Sleep(time.Second)
	}
	t.Logf("samples: video %v b/s, audio %v b/s, total %v b/s, framerate %v, keyframe interval %v s", vbr, abr, total, fr, kfi)
	within := func(what string, got, want float64) {
		t.Helper()
		if got < want*0.9 || got > want*1.1 {
			t.Errorf("%s = %.3f (median of %d scrapes), want %.3f ± 10%%", what, got, len(vbr), want)
		}
	}
	within("IngestVideoBitrate", medianOf(vbr), bitrate)
	within("IngestFramerate", medianOf(fr), fps)
	within("KeyframeInterval", medianOf(kfi), float64(gop)/fps)
	within("IngestAudioBitrate", medianOf(abr), 96_000)
	// IngestBitrate is every track's: video + audio of the same sample.
	var rest []float64
	for i := range total {
		rest = append(rest, total[i]-vbr[i]-abr[i])
	}
	if r := medianOf(rest); r < -0.01*medianOf(total) || r > 0.01*medianOf(total) {
		t.Errorf("IngestBitrate %v is not video + audio (%v + %v)", total, vbr, abr)
	}

	// One viewer: our player in Chromium.
	close(live)
	deadline := time.Now().Add(45 * time.Second)
	for rep, _ := snapshot(); rep.PlayedMs < 2000; rep, _ = snapshot() {
		if time.Now().After(deadline) {
			rep, n := snapshot()
			t.Fatalf("the player did not play 2 s (%d reports, last %+v)\nchromium:\n%s", n, rep, logTail(chromiumLog(output()), 60))
		}
		time.Sleep(200 * time.Millisecond)
	}
	exactly := func(n float64) func(float64, bool) bool { return func(v float64, ok bool) bool { return ok && v == n } }
	waitMetric(t, srv, "openivs_concurrent_views", channel, 10*time.Second, "views with the browser playing", exactly(1))
	// A second viewer, then each leaves: sessions silent for 10 s stop counting.
	stopViewer := playlistViewer(t, playbackURL(srv, ch))
	waitMetric(t, srv, "openivs_concurrent_views", channel, 10*time.Second, "views with a second viewer", exactly(2))
	delivered := map[string]string{"channel": arn, "country": "UNKNOWN"}
	before, _ := scrapeMetrics(t, srv).value("openivs_live_delivered_time_seconds_total", delivered)
	time.Sleep(3 * time.Second)
	after, _ := scrapeMetrics(t, srv).value("openivs_live_delivered_time_seconds_total", delivered)
	// Two viewers for 3 s: ~6 viewer-seconds (a second's drain either side).
	if d := after - before; d < 3.5 || d > 8.5 {
		t.Errorf("LiveDeliveredTime grew %.2f s in 3 s with two viewers, want ~6", d)
	}
	stopViewer()
	waitMetric(t, srv, "openivs_concurrent_views", channel, 15*time.Second, "views after the second viewer left", exactly(1))
	if out, err := c.GetStream(ctx(t), &ivs.GetStreamInput{ChannelArn: ch.Channel.Arn}); err != nil || out.Stream.ViewerCount != 1 {
		t.Errorf("GetStream viewerCount with one viewer left: %+v, %v", out, err)
	}
	blocked.Store(true) // the browser's playback requests fail from now on
	waitMetric(t, srv, "openivs_concurrent_views", channel, 15*time.Second, "views after the browser stopped fetching", exactly(0))

	// The session's samples as JSON.
	resp, err := http.Get(srv.Endpoint + "/v1/sessions/" + streamID + "/metrics")
	must(t, err, "GET session metrics")
	var sm struct {
		StreamID   string     `json:"streamId"`
		ChannelArn string     `json:"channelArn"`
		StartTime  time.Time  `json:"startTime"`
		EndTime    *time.Time `json:"endTime"`
		Samples    []struct {
			Time               time.Time `json:"time"`
			IngestBitrate      float64   `json:"ingestBitrate"`
			IngestVideoBitrate float64   `json:"ingestVideoBitrate"`
			IngestAudioBitrate float64   `json:"ingestAudioBitrate"`
			IngestFramerate    float64   `json:"ingestFramerate"`
			KeyframeInterval   *float64  `json:"keyframeInterval"`
		} `json:"samples"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&sm), "decode session metrics")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || sm.StreamID != streamID || sm.ChannelArn != arn || sm.StartTime.IsZero() || sm.EndTime != nil {
		t.Errorf("session metrics %d: %+v", resp.StatusCode, sm)
	}
	if n := len(sm.Samples); n < 20 {
		t.Errorf("%d samples after more than 20 s of stream", n)
	} else {
		last := sm.Samples[n-1]
		gap := last.Time.Sub(sm.Samples[n-2].Time)
		if last.KeyframeInterval == nil || *last.KeyframeInterval != 2 || last.IngestFramerate < 27 || last.IngestVideoBitrate < 0.8*bitrate ||
			last.IngestBitrate < last.IngestVideoBitrate+last.IngestAudioBitrate-1 || gap < 900*time.Millisecond || gap > 1300*time.Millisecond {
			t.Errorf("last sample %+v, %v after the one before", last, gap)
		}
	}
	if resp, err := http.Get(srv.Endpoint + "/v1/sessions/st-nope/metrics"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown stream: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}

	// The end: no ingest or view series for the channel, nothing live;
	// the counters stay.
	_ = enc.cmd.Process.Kill()
	waitOffline(t, c, ch.Channel.Arn, 15*time.Second)
	waitMetric(t, srv, "openivs_ingest_video_bitrate_bits_per_second", video, 5*time.Second, "after the stream ended",
		func(_ float64, ok bool) bool { return !ok })
	m = scrapeMetrics(t, srv)
	for _, name := range []string{"openivs_ingest_bitrate_bits_per_second", "openivs_ingest_audio_bitrate_bits_per_second",
		"openivs_ingest_framerate_frames_per_second", "openivs_keyframe_interval_seconds", "openivs_concurrent_views", "openivs_concurrent_streams"} {
		if s := m.series(name, ""); len(s) != 0 {
			t.Errorf("after the stream ended: %v", s)
		}
	}
	if v, ok := m.value("openivs_live_input_time_seconds_total", channel); !ok || v < 20 {
		t.Errorf("LiveInputTime %v (found %v) after more than 20 s of stream", v, ok)
	}
	resp, err = http.Get(srv.Endpoint + "/v1/sessions/" + streamID + "/metrics")
	must(t, err, "GET session metrics")
	sm.EndTime = nil
	must(t, json.NewDecoder(resp.Body).Decode(&sm), "decode session metrics")
	resp.Body.Close()
	if sm.EndTime == nil || len(sm.Samples) < 20 {
		t.Errorf("ended session: endTime %v, %d samples", sm.EndTime, len(sm.Samples))
	}
}
