package playback

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

const (
	region     = "us-west-2"
	channelARN = "arn:aws:ivs:us-west-2:123456789012:channel/abcdEFGH1234"
	streamPath = Prefix + "us-west-2.123456789012.channel.abcdEFGH1234"
)

// liveStreams serves one live channel: its source packager and, on
// request, an audio-only one.
type liveStreams struct {
	variants []hls.Variant
}

func (l *liveStreams) Playback(arn string) ([]hls.Variant, bool) {
	if arn != channelARN || l.variants == nil {
		return nil, false
	}
	return l.variants, true
}

// startLive packages two seconds of a synthetic 30 fps stream with a
// keyframe every second, low latency, and returns once it is playable.
func startLive(t testing.TB) *liveStreams {
	t.Helper()
	tracks := mediatest.Tracks(t)
	hub := media.NewHub(tracks, media.HubOptions{})
	audio := tracks[1]
	audio.ID = 0
	audioHub := media.NewHub([]media.Track{audio}, media.HubOptions{})
	p := hls.NewPackager(hub, hls.Options{LowLatency: true})
	pa := hls.NewPackager(audioHub, hls.Options{LowLatency: true})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	go func() { defer wg.Done(); _ = pa.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	// An audio-only hub keeps nothing for late subscribers.
	for audioHub.Stats().Subscribers == 0 {
		time.Sleep(time.Millisecond)
	}

	base := time.Now()
	const fps = 30
	for i := range 2 * fps {
		dts := time.Duration(i) * time.Second / fps
		key := i%fps == 0
		nalus := [][]byte{append([]byte{0x41}, make([]byte, 500)...)}
		if key {
			nalus = [][]byte{mediatest.SPS, mediatest.PPS, append([]byte{0x65}, make([]byte, 3000)...)}
		}
		hub.Write(&media.Frame{Track: 0, DTS: dts, PTS: dts, Key: key, NALUs: nalus, Wall: base.Add(dts)})
		a := &media.Frame{Track: 1, DTS: dts, PTS: dts, Key: true, NALUs: [][]byte{make([]byte, 200)}, Wall: base.Add(dts)}
		hub.Write(a)
		b := *a
		b.Track = 0
		audioHub.Write(&b)
	}
	for _, pk := range []*hls.Packager{p, pa} {
		select {
		case <-pk.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("packager never became ready")
		}
	}
	return &liveStreams{variants: []hls.Variant{
		{Path: "source", Packager: p, Width: 1920, Height: 1080},
		{Name: "audio_only", Path: "audio_only", Packager: pa, AudioOnly: true, OnRequest: true, Bandwidth: 140800},
	}}
}

func get(t *testing.T, h http.Handler, target string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

func TestOfflineAndUnknownChannelsAre404JSON(t *testing.T) {
	h := &Handler{Region: region, Streams: &liveStreams{}, Viewers: NewViewers()}
	for _, target := range []string{
		streamPath + ".m3u8",                             // offline
		streamPath + "/source/playlist.m3u8",             // offline rendition
		Prefix + "eu-west-1.123456789012.channel.x.m3u8", // other region
		Prefix + "us-west-2.123456789012.stage.x.m3u8",   // not a channel
		Prefix + "nonsense.m3u8",
	} {
		resp, body := get(t, h, target)
		var e struct{ Message string }
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(body), &e) != nil || e.Message == "" {
			t.Errorf("GET %s = %d %q %s, want 404 with a JSON message", target, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: no CORS header on the error", target)
		}
	}
}

// sessionURI matches a rendition URI with its viewer session path element.
var sessionURI = regexp.MustCompile(`(?m)^\S+/([A-Za-z0-9_-]{30,})/source/playlist\.m3u8$`)

// sessionID is the viewer session id a session parameter carries.
func sessionID(t *testing.T, h *Handler, param string) string {
	t.Helper()
	s, ok := h.sessions.Verify(channelARN, param, time.Now())
	if !ok {
		t.Fatalf("session parameter %q does not verify", param)
	}
	return s.ID
}

// TestViewerSessions: the multivariant playlist mints a session id into
// its rendition URL, media playlist fetches keep that session alive, and
// Count reports the sessions seen within the window.
func TestViewerSessions(t *testing.T) {
	live := startLive(t)
	v := NewViewers()
	now := time.Now()
	v.now = func() time.Time { return now }
	h := &Handler{Region: region, Streams: live, Viewers: v}

	resp, body := get(t, h, streamPath+".m3u8")
	m := sessionURI.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("multivariant = %d:\n%s\nwant a rendition URI with a session id", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
		t.Errorf("multivariant Cache-Control %q: a CDN must not share one viewer's session id", cc)
	}
	first := m[1]
	if got := v.Count(channelARN); got != 1 {
		t.Errorf("after one multivariant fetch: %d viewers, want 1", got)
	}

	// Reloading the multivariant playlist with its session keeps it.
	_, body = get(t, h, streamPath+".m3u8?vs="+first)
	if m := sessionURI.FindStringSubmatch(body); m == nil || sessionID(t, h, m[1]) != sessionID(t, h, first) {
		t.Errorf("reload with vs=%s gave %q", first, body)
	}
	// A second and third viewer, and the first one's media playlist fetches.
	for range 2 {
		get(t, h, streamPath+".m3u8")
	}
	for range 3 {
		resp, body := get(t, h, streamPath+"/"+first+"/source/playlist.m3u8")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "#EXTM3U") {
			t.Fatalf("media playlist = %d %q", resp.StatusCode, body)
		}
	}
	if got := v.Count(channelARN); got != 3 {
		t.Errorf("three sessions: %d viewers, want 3", got)
	}

	// Only the first viewer keeps fetching; the others time out.
	now = now.Add(ViewerWindow / 2)
	get(t, h, streamPath+"/"+first+"/source/playlist.m3u8")
	now = now.Add(ViewerWindow/2 + time.Second)
	if got := v.Count(channelARN); got != 1 {
		t.Errorf("after the window: %d viewers, want 1 (the one still fetching)", got)
	}
	now = now.Add(ViewerWindow + time.Second)
	if got := v.Count(channelARN); got != 0 {
		t.Errorf("after everyone left: %d viewers, want 0", got)
	}
}

// TestViewersWithoutSession: clients that load the media playlist directly
// (or carry a malformed id) are told apart by address and user agent.
func TestViewersWithoutSession(t *testing.T) {
	live := startLive(t)
	v := NewViewers()
	h := &Handler{Region: region, Streams: live, Viewers: v}
	for _, ua := range []string{"player-a", "player-b", "player-a"} {
		get(t, h, streamPath+"/source/playlist.m3u8", "User-Agent", ua)
	}
	get(t, h, streamPath+"/"+strings.Repeat("x", 5000)+"/source/playlist.m3u8", "User-Agent", "player-a")
	if got := v.Count(channelARN); got != 2 {
		t.Errorf("%d viewers, want 2 (two user agents from one address)", got)
	}
	// Segments and parts do not count: a CDN may serve them to anyone.
	if got := v.Count("arn:aws:ivs:us-west-2:123456789012:channel/other"); got != 0 {
		t.Errorf("unknown channel has %d viewers", got)
	}
}

// TestAudioOnlyOnRequest: a BASIC/STANDARD stream lists its audio-only
// rendition only with ?allow_audio_only=true, last, never auto-selected,
// with an audio codec alone; and it is served either way.
func TestAudioOnlyOnRequest(t *testing.T) {
	h := &Handler{Region: region, Streams: startLive(t)}
	_, plain := get(t, h, streamPath+".m3u8")
	if strings.Contains(plain, "audio_only") || strings.Count(plain, "#EXT-X-STREAM-INF") != 1 {
		t.Fatalf("without allow_audio_only:\n%s", plain)
	}
	_, with := get(t, h, streamPath+".m3u8?allow_audio_only=true")
	if strings.Count(with, "#EXT-X-STREAM-INF") != 2 {
		t.Fatalf("with allow_audio_only:\n%s", with)
	}
	lines := strings.Split(strings.TrimSpace(with), "\n")
	last, inf, media := lines[len(lines)-1], lines[len(lines)-2], lines[len(lines)-3]
	if !strings.HasSuffix(last, "/audio_only/playlist.m3u8") || !strings.Contains(inf, `CODECS="mp4a.40.2"`) ||
		strings.Contains(inf, "RESOLUTION") || !strings.Contains(inf, "BANDWIDTH=") ||
		media != `#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID="audio_only",NAME="audio_only",AUTOSELECT=NO,DEFAULT=NO` {
		t.Fatalf("audio-only entry:\n%s", with)
	}
	if !strings.Contains(lines[3], `TYPE=CLOSED-CAPTIONS`) || strings.Contains(inf, "CLOSED-CAPTIONS") {
		t.Fatalf("captions should be declared for video variants only:\n%s", with)
	}
	if !strings.Contains(lines[4], `NAME="1080p30"`) || !strings.Contains(lines[4], "DEFAULT=YES") {
		t.Fatalf("first rendition should be the source, named from what it measured:\n%s", with)
	}
	resp, body := get(t, h, streamPath+"/audio_only/playlist.m3u8")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "#EXT-X-PART:") {
		t.Fatalf("audio-only playlist: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := get(t, h, streamPath+"/720p30/playlist.m3u8"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a rendition the stream does not have: %d", resp.StatusCode)
	}
}

// TestConcurrentViewerLimit: beyond the account's concurrent views a new
// viewer gets 429 and the limit is reported; viewers already watching keep
// their session, and a place frees up when one leaves.
func TestConcurrentViewerLimit(t *testing.T) {
	live := startLive(t)
	v := NewViewers()
	now := time.Now()
	v.now = func() time.Time { return now }
	type breach struct {
		account          string
		limit, attempted int
	}
	var breaches []breach
	h := &Handler{Region: region, Streams: live, Viewers: v, ViewerLimit: 2,
		OnViewerLimit: func(account string, limit, attempted int) {
			breaches = append(breaches, breach{account, limit, attempted})
		}}
	var ids []string
	for range 2 {
		resp, body := get(t, h, streamPath+".m3u8")
		m := sessionURI.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("viewer within the limit: %d %s", resp.StatusCode, body)
		}
		ids = append(ids, m[1])
	}
	resp, body := get(t, h, streamPath+".m3u8")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "concurrent viewers") {
		t.Fatalf("third viewer: %d %s, want 429", resp.StatusCode, body)
	}
	if len(breaches) != 1 || breaches[0] != (breach{"123456789012", 2, 3}) {
		t.Fatalf("breaches %+v", breaches)
	}
	// A watching viewer reloading keeps its place.
	if resp, _ := get(t, h, streamPath+".m3u8?vs="+ids[0]); resp.StatusCode != http.StatusOK {
		t.Fatalf("a viewer already watching was refused: %d", resp.StatusCode)
	}
	// The second viewer stops; after the window a new one gets in.
	now = now.Add(ViewerWindow / 2)
	get(t, h, streamPath+"/"+ids[0]+"/source/playlist.m3u8")
	now = now.Add(ViewerWindow/2 + 2*time.Second)
	if resp, body := get(t, h, streamPath+".m3u8"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a new viewer after one left: %d %s", resp.StatusCode, body)
	}
}
