package bench

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// liveStream is a real LL-HLS source: the project's packager fed in real
// time with synthetic 30 fps video (1 s GOP) and AAC, served at
// /live.m3u8 (multivariant) and /live/<resource>.
type liveStream struct {
	srv  *httptest.Server
	hub  *media.Hub
	p    *hls.Packager
	gone atomic.Bool // answer 404 to everything
}

func (s *liveStream) url() string { return s.srv.URL + "/live.m3u8" }

// startLive starts a stream that runs for seconds (0: until the test
// ends) and then ends (EXT-X-ENDLIST); it returns once the first part is
// published. tls serves HTTPS with HTTP/2 enabled.
func startLive(t *testing.T, container string, seconds float64, tls bool) *liveStream {
	t.Helper()
	s := &liveStream{hub: media.NewHub(mediatest.Tracks(t), media.HubOptions{})}
	s.p = hls.NewPackager(s.hub, hls.Options{LowLatency: true, Container: container, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.p.Run(ctx) }()
	for s.hub.Stats().Subscribers == 0 {
		time.Sleep(time.Millisecond)
	}
	fed := make(chan struct{})
	go func() { defer close(fed); feed(ctx, s.hub, seconds) }()
	t.Cleanup(func() { cancel(); <-fed; s.hub.Close(); <-done })

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.gone.Load():
			http.NotFound(w, r)
		case r.URL.Path == "/live.m3u8":
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			_, _ = w.Write(hls.MultivariantPlaylist([]hls.Rendition{{Name: "1080p30", URI: "live/playlist.m3u8", Info: s.p.Info()}}))
		case strings.HasPrefix(r.URL.Path, "/live/"):
			s.p.ServeMedia(w, r, strings.TrimPrefix(r.URL.Path, "/live/"))
		default:
			http.NotFound(w, r)
		}
	})
	if tls {
		s.srv = httptest.NewUnstartedServer(h)
		s.srv.EnableHTTP2 = true
		s.srv.StartTLS()
	} else {
		s.srv = httptest.NewServer(h)
	}
	t.Cleanup(s.srv.Close)
	select {
	case <-s.p.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the packager published no part")
	}
	return s
}

// feed writes 30 fps video with a keyframe every 30 frames and 48 kHz AAC
// at real-time pace, stamped with the wall clock as ingest does, for
// seconds (0: until ctx ends), then closes the hub.
func feed(ctx context.Context, hub *media.Hub, seconds float64) {
	const fps = 30
	frameDur := time.Second / fps
	audioDur := time.Duration(1024) * time.Second / 48000
	start := time.Now()
	var audioAt time.Duration
	for i := 0; seconds == 0 || float64(i) < seconds*fps; i++ {
		dts := time.Duration(i) * frameDur
		if d := time.Until(start.Add(dts)); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		key := i%fps == 0
		nal := make([]byte, 3000)
		nal[0] = 0x01
		nalus := [][]byte{nal}
		if key {
			nal = make([]byte, 30000)
			nal[0] = 0x65
			nalus = [][]byte{mediatest.SPS, mediatest.PPS, nal}
		}
		now := time.Now()
		hub.Write(&media.Frame{Track: 0, PTS: dts, DTS: dts, Wall: now, Key: key, NALUs: nalus})
		for audioAt < dts+frameDur {
			hub.Write(&media.Frame{Track: 1, PTS: audioAt, DTS: audioAt, Wall: now, Key: true, NALUs: [][]byte{make([]byte, 300)}})
			audioAt += audioDur
		}
	}
	hub.Close()
}

// checkConsistent checks what must hold of any result whatever the timing.
func checkConsistent(t *testing.T, res *ViewersResult) {
	t.Helper()
	var report strings.Builder
	res.Report(&report)
	t.Logf("\n%s", report.String())
	if res.PartDelay.N != res.AnnounceDelay.N {
		t.Errorf("%d part delays but %d announce delays", res.PartDelay.N, res.AnnounceDelay.N)
	}
	if got := int64(res.PartDelay.N) + res.Untimed; got != res.PartsReceived {
		t.Errorf("part delays %d + untimed %d != parts received %d", res.PartDelay.N, res.Untimed, res.PartsReceived)
	}
	if res.HintRequests > res.PartRequests || res.HintMisses > res.HintRequests {
		t.Errorf("hint requests %d, misses %d, part requests %d", res.HintRequests, res.HintMisses, res.PartRequests)
	}
	if res.Started+res.Failed != res.Viewers {
		t.Errorf("started %d + failed %d != %d viewers", res.Started, res.Failed, res.Viewers)
	}
	q := res.PartDelay
	if q.N > 0 && !(q.P50 <= q.P90 && q.P90 <= q.P99 && q.P99 <= q.P999 && q.P999 <= q.Max) {
		t.Errorf("quantiles out of order: %+v", q)
	}
}

func TestViewersLive(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	for _, container := range []string{hls.ContainerTS, hls.ContainerFMP4} {
		t.Run(container, func(t *testing.T) {
			t.Parallel()
			s := startLive(t, container, 0, false)
			res, err := RunViewers(context.Background(), ViewersOptions{
				URL: s.url(), Viewers: 20, Ramp: 200 * time.Millisecond, Warmup: time.Second, Duration: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkConsistent(t, res)
			if !res.OK() {
				t.Errorf("run failed: %v", res.problems())
			}
			if res.Started != 20 || res.Failed != 0 || res.Ended != 0 || res.Gone != 0 {
				t.Errorf("viewers: %d started, %d failed, %d ended, %d gone", res.Started, res.Failed, res.Ended, res.Gone)
			}
			if res.PartsReceived == 0 || res.PartDelay.N == 0 || res.PartBytes == 0 || res.MediaSeconds == 0 {
				t.Errorf("parts %d, delays %d, bytes %d, media %.1f s", res.PartsReceived, res.PartDelay.N, res.PartBytes, res.MediaSeconds)
			}
			if res.PlaylistRequests == 0 || res.HintRequests == 0 || res.ErrorsTotal != 0 {
				t.Errorf("playlist requests %d, hint requests %d, errors %v", res.PlaylistRequests, res.HintRequests, res.ErrorKinds)
			}
			if !res.HasPDT || !res.Skip || res.Protocol != "HTTP/1.1" || res.MediaURL != s.srv.URL+"/live/playlist.m3u8" {
				t.Errorf("pdt %v, skip %v, protocol %q, media URL %s", res.HasPDT, res.Skip, res.Protocol, res.MediaURL)
			}
		})
	}
}

// TestViewersWithoutHints plays from the playlists alone (blocking reload,
// then each listed part), and over HTTPS: HTTP/2 by default, HTTP/1.1
// when asked.
func TestViewersHTTPSAndNoHints(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	for _, tc := range []struct {
		name  string
		http1 bool
		proto string
	}{{"h2", false, "HTTP/2.0"}, {"http1", true, "HTTP/1.1"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startLive(t, hls.ContainerTS, 0, true)
			if _, err := RunViewers(context.Background(), ViewersOptions{URL: s.url(), Viewers: 1, Duration: time.Second}); err == nil {
				t.Error("a self-signed server was accepted without --insecure")
			}
			res, err := RunViewers(context.Background(), ViewersOptions{
				URL: s.url(), Viewers: 10, Warmup: time.Second, Duration: 2 * time.Second,
				Insecure: true, HTTP1: tc.http1, NoHints: true, NoSkip: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkConsistent(t, res)
			if !res.OK() || res.Protocol != tc.proto || res.HintRequests != 0 || res.Skip || res.PartDelay.N == 0 {
				t.Errorf("ok %v (%v), protocol %q, hint requests %d, skip %v, delays %d",
					res.OK(), res.problems(), res.Protocol, res.HintRequests, res.Skip, res.PartDelay.N)
			}
		})
	}
}

func TestViewersStopAtEndlist(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	t.Parallel()
	s := startLive(t, hls.ContainerTS, 4, false)
	res, err := RunViewers(context.Background(), ViewersOptions{
		URL: s.url(), Viewers: 10, Warmup: 500 * time.Millisecond, Duration: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, res)
	if res.Ended != 10 || res.Gone != 0 || res.ErrorsTotal != 0 {
		t.Errorf("%d of 10 viewers saw ENDLIST, %d gone, errors %v", res.Ended, res.Gone, res.ErrorKinds)
	}
	if res.Window >= time.Minute {
		t.Errorf("the window ran its whole %v: viewers did not stop at ENDLIST", res.Window)
	}
}

func TestViewersStreamGone(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	t.Parallel()
	s := startLive(t, hls.ContainerTS, 0, false)
	// Not live at all: an error, not a run.
	if _, err := RunViewers(context.Background(), ViewersOptions{URL: s.srv.URL + "/nothing.m3u8", Viewers: 1}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404 URL: %v", err)
	}
	// Gone during the run: every viewer reports it and stops.
	time.AfterFunc(2*time.Second, func() { s.gone.Store(true) })
	res, err := RunViewers(context.Background(), ViewersOptions{
		URL: s.url(), Viewers: 10, Warmup: 500 * time.Millisecond, Duration: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, res)
	// A viewer sees the 404 on its media playlist, or on the multivariant
	// playlist if it was just starting.
	if n404 := res.ErrorKinds["playlist 404"] + res.ErrorKinds["multivariant 404"]; res.Gone != 10 || n404 < 10 {
		t.Errorf("%d of 10 viewers gone; errors %v", res.Gone, res.ErrorKinds)
	}
	if res.Window >= time.Minute {
		t.Errorf("the window ran its whole %v: viewers did not stop at 404", res.Window)
	}
}

// llPlaylist is what the packager serves: a delta update of a live
// low-latency TS playlist.
const llPlaylist = `#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.75000,CAN-SKIP-UNTIL=6.00000
#EXT-X-PART-INF:PART-TARGET=0.25000
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-SKIP:SKIPPED-SEGMENTS=2
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:02.000Z
#EXT-X-PART:DURATION=0.26667,URI="part12.0.ts",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.23333,URI="part12.1.ts"
#EXT-X-PART:DURATION=0.26667,URI="part12.2.ts"
#EXT-X-PART:DURATION=0.23333,URI="part12.3.ts"
#EXTINF:1.00000,
seg12.ts
#EXT-X-PART:DURATION=0.26667,URI="part13.0.ts",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.23333,URI="part13.1.ts"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part13.2.ts"
`

func TestParseMediaPlaylist(t *testing.T) {
	m, err := parseMediaPlaylist([]byte(llPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	if !m.canBlockReload || m.canSkipUntil != 6*time.Second || m.partHoldBack != 750*time.Millisecond ||
		m.partTarget != 250*time.Millisecond || m.targetDuration != time.Second || m.skipped != 2 || m.ended {
		t.Fatalf("header: %+v", m)
	}
	if len(m.segments) != 2 || m.segments[0].msn != 12 || m.segments[1].msn != 13 ||
		!m.segments[0].complete() || m.segments[1].complete() || len(m.segments[0].parts) != 4 || len(m.segments[1].parts) != 2 {
		t.Fatalf("segments: %+v", m.segments)
	}
	pdt := time.Date(2026, 11, 21, 10, 0, 2, 0, time.UTC)
	if !m.segments[0].pdt.Equal(pdt) || !m.segments[1].pdt.Equal(pdt.Add(time.Second)) {
		t.Errorf("program-date-times %v, %v (the second extrapolated)", m.segments[0].pdt, m.segments[1].pdt)
	}
	if msn, idx := m.nextPosition(); msn != 13 || idx != 2 {
		t.Errorf("next position %d.%d", msn, idx)
	}
	if k, ok := m.hintPosition(); !ok || k != (partKey{13, 2}) || m.hint != "part13.2.ts" {
		t.Errorf("hint %q at %v", m.hint, k)
	}
	// 0.75 s back from the end is inside part 12.3; the nearest
	// independent part before it is 12.0.
	if k := m.startPosition(); k != (partKey{12, 0}) {
		t.Errorf("start position %v", k)
	}
	for _, tc := range []struct {
		k    partKey
		want int
	}{
		{partKey{11, 0}, partGone}, {partKey{12, 3}, partListed}, {partKey{12, 4}, partPastSegment},
		{partKey{13, 1}, partListed}, {partKey{13, 2}, partNotYet}, {partKey{14, 0}, partNotYet},
	} {
		if _, got := m.locate(tc.k); got != tc.want {
			t.Errorf("locate %v = %d, want %d", tc.k, got, tc.want)
		}
	}

	// The part's wall-clock end: its segment's date + the parts up to and
	// including it.
	v := (&viewersRun{opts: ViewersOptions{Timeout: time.Second}}).newViewer(0)
	defer v.close()
	at := time.Now()
	v.publish(m, at)
	info := v.known[partKey{12, 2}]
	if want := pdt.Add(766670 * time.Microsecond); !info.wallEnd.Equal(want) || !info.announced.Equal(at) {
		t.Errorf("part 12.2 ends %v (want %v), announced %v", info.wallEnd, want, info.announced)
	}
	if info := v.known[partKey{13, 1}]; !info.wallEnd.Equal(pdt.Add(1500 * time.Millisecond)) {
		t.Errorf("part 13.1 ends %v", info.wallEnd)
	}
}

func TestParseMediaPlaylistVariants(t *testing.T) {
	// A delta update without dates inherits them from the previous
	// playlist by media sequence number.
	prev, err := parseMediaPlaylist([]byte(llPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	next, err := parseMediaPlaylist([]byte(`#EXTM3U
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:11
#EXT-X-SKIP:SKIPPED-SEGMENTS=1
#EXTINF:1.0,
seg12.ts
#EXT-X-PART:DURATION=0.5,URI="https://cdn.example/a/part13.0.ts",BYTERANGE="1000@2000"
`))
	if err != nil {
		t.Fatal(err)
	}
	next.inherit(prev)
	if !next.segments[0].pdt.Equal(prev.segments[0].pdt) || !next.segments[1].pdt.Equal(prev.segments[1].pdt) {
		t.Errorf("inherited dates %v %v", next.segments[0].pdt, next.segments[1].pdt)
	}
	if p := next.segments[1].parts[0]; p.byteRange != "bytes=2000-2999" || p.duration != 500*time.Millisecond {
		t.Errorf("part %+v", p)
	}
	if next.hint != "" {
		t.Errorf("hint %q", next.hint)
	}

	bad := map[string]string{
		"empty":          "",
		"no EXTM3U":      "#EXT-X-TARGETDURATION:1\n",
		"NaN duration":   "#EXTM3U\n#EXTINF:NaN,\nseg.ts\n",
		"huge duration":  "#EXTM3U\n#EXT-X-PART:DURATION=1e300,URI=\"p\"\n",
		"negative":       "#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=-1\n",
		"unterminated":   "#EXTM3U\n#EXT-X-PART:DURATION=1,URI=\"p\n",
		"part no URI":    "#EXTM3U\n#EXT-X-PART:DURATION=1\n",
		"bad date":       "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n",
		"bad sequence":   "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n",
		"range w/o offs": "#EXTM3U\n#EXT-X-PART:DURATION=1,URI=\"p\",BYTERANGE=\"100\"\n",
	}
	for name, pl := range bad {
		if _, err := parseMediaPlaylist([]byte(pl)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}

	// Byte-range preload hints are not part requests; an ended playlist
	// has nothing next.
	m, err := parseMediaPlaylist([]byte("#EXTM3U\r\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg1.mp4\",BYTERANGE-START=100\r\n#EXT-X-ENDLIST\r\n"))
	if err != nil || m.hint != "" || !m.ended {
		t.Errorf("%+v %v", m, err)
	}
}

func TestParseMultivariant(t *testing.T) {
	b := []byte(hls.MultivariantPlaylist([]hls.Rendition{
		{Name: "720p30", URI: "a/720.m3u8", Info: hls.RenditionInfo{Bandwidth: 3_000_000, Width: 1280, Height: 720}},
		{Name: "360p30", URI: "https://other.example/360.m3u8", Info: hls.RenditionInfo{Bandwidth: 800_000}},
	}))
	if !isMultivariant(b) {
		t.Fatal("not recognised as multivariant")
	}
	vs, err := parseMultivariant(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].uri != "a/720.m3u8" || vs[0].bandwidth != 3_000_000 || vs[0].resolution != "1280x720" ||
		vs[1].uri != "https://other.example/360.m3u8" {
		t.Errorf("%+v", vs)
	}
	if isMultivariant([]byte(llPlaylist)) {
		t.Error("a media playlist taken for multivariant")
	}
}

func TestProcessCPU(t *testing.T) {
	if _, err := processCPU(0); err == nil {
		t.Error("pid 0 measured")
	}
	start, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for { // burn a little CPU
		if d, _ := processCPU(os.Getpid()); d > start {
			break
		}
	}
}

func FuzzParseMediaPlaylist(f *testing.F) {
	f.Add([]byte(llPlaylist))
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00+0000\n#EXTINF:4.0,\nseg0.ts\n#EXT-X-ENDLIST\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PART:DURATION=0.2,URI=\"p0.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p1.m4s\"\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3,RECENTLY-REMOVED-DATERANGES=\"\"\n#EXT-X-PART:DURATION=1,URI=\"p\",BYTERANGE=\"10@0\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMediaPlaylist(b)
		if err != nil {
			return
		}
		for i := 1; i < len(m.segments); i++ {
			if m.segments[i].msn != m.segments[i-1].msn+1 {
				t.Fatalf("media sequence numbers not consecutive: %d after %d", m.segments[i].msn, m.segments[i-1].msn)
			}
			if !m.segments[i-1].complete() {
				t.Fatal("an open segment before the last")
			}
		}
		for _, s := range m.segments {
			for _, p := range s.parts {
				if p.duration < 0 || p.uri == "" {
					t.Fatalf("part %+v", p)
				}
			}
		}
		k := m.startPosition()
		m.locate(k)
		m.mapFor(k.msn)
		m.hintPosition()
		m.inherit(m)
		// What a viewer does with each playlist must not panic either.
		v := (&viewersRun{opts: ViewersOptions{Timeout: time.Second}}).newViewer(0)
		v.publish(m, time.Now())
		if vs, err := parseMultivariant(b); err == nil {
			_ = vs
		}
	})
}
