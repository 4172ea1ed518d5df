package hls

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/openivs/openivs/internal/media"
)

type result struct {
	status int
	body   []byte
	at     time.Time
}

func getAsync(url string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			ch <- result{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- result{status: resp.StatusCode, body: b, at: time.Now()}
	}()
	return ch
}

func TestBlockingReload(t *testing.T) {
	base := time.Now()
	frames := synth{seconds: 10, gop: 30}.frames(base)
	hub, p, done := started(t, Options{LowLatency: true}, testTracks(t))
	srv := serve(t, p)
	// The first two seconds at once, the rest on demand.
	next := 0
	feed := func(d time.Duration) {
		end := frames[next].DTS + d
		for next < len(frames) && (frames[next].Track != 0 || frames[next].DTS < end) {
			hub.Write(frames[next])
			next++
		}
	}
	feed(2 * time.Second)
	select {
	case <-p.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	time.Sleep(50 * time.Millisecond) // let the packager drain
	_, body := get(t, srv.URL+"/playlist.m3u8")
	m := parseMedia(t, body)
	if m.PreloadHint == nil {
		t.Fatalf("no preload hint:\n%s", body)
	}
	var msn, idx int
	if _, err := fmt.Sscanf(m.PreloadHint.URI, "part%d.%d.ts", &msn, &idx); err != nil {
		t.Fatalf("hint %q: %v", m.PreloadHint.URI, err)
	}

	t.Run("too far ahead", func(t *testing.T) {
		for _, q := range []string{
			fmt.Sprintf("_HLS_msn=%d", msn+3),
			fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn, idx+p.advancePartLimit()+1),
			"_HLS_part=1",
			"_HLS_msn=x",
		} {
			resp, _ := get(t, srv.URL+"/playlist.m3u8?"+q)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
			}
		}
	})

	t.Run("waits for the part", func(t *testing.T) {
		pl := getAsync(fmt.Sprintf("%s/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d", srv.URL, msn, idx))
		hinted := getAsync(srv.URL + "/" + m.PreloadHint.URI)
		select {
		case r := <-pl:
			t.Fatalf("blocking reload returned before the part existed: %d\n%s", r.status, r.body)
		case r := <-hinted:
			t.Fatalf("hinted part returned before it existed: %d", r.status)
		case <-time.After(300 * time.Millisecond):
		}
		fed := time.Now()
		feed(400 * time.Millisecond) // enough to complete the hinted part
		for _, ch := range []<-chan result{pl, hinted} {
			select {
			case r := <-ch:
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				if d := r.at.Sub(fed); d > 500*time.Millisecond {
					t.Errorf("answered %v after the part was fed", d)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("blocked request not answered once the part existed")
			}
		}
		_, body := get(t, fmt.Sprintf("%s/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d", srv.URL, msn, idx))
		if !strings.Contains(string(body), fmt.Sprintf("URI=\"part%d.%d.ts\"", msn, idx)) {
			t.Errorf("blocking response lacks the requested part:\n%s", body)
		}
	})

	t.Run("times out", func(t *testing.T) {
		_, body := get(t, srv.URL+"/playlist.m3u8")
		m := parseMedia(t, body)
		fmt.Sscanf(m.PreloadHint.URI, "part%d.%d.ts", &msn, &idx)
		start := time.Now()
		resp, _ := get(t, fmt.Sprintf("%s/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d", srv.URL, msn, idx))
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
		if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
			t.Errorf("held %v, want 3 target durations", d)
		}
	})

	t.Run("ends with ENDLIST", func(t *testing.T) {
		pl := getAsync(fmt.Sprintf("%s/playlist.m3u8?_HLS_msn=%d", srv.URL, msn+1))
		time.Sleep(100 * time.Millisecond)
		hub.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		r := <-pl
		if r.status != 200 || !strings.Contains(string(r.body), "#EXT-X-ENDLIST") {
			t.Errorf("status %d, body:\n%s", r.status, r.body)
		}
		if strings.Contains(string(r.body), "PRELOAD-HINT") {
			t.Error("ended playlist still hints a part")
		}
	})
}

func TestDeltaUpdate(t *testing.T) {
	cases := []struct {
		name   string
		window int
		secs   float64
		skip   string
	}{
		{"yes", 20, 15, "YES"},
		{"v2", 20, 15, "v2"},
		{"short window, nothing to skip", 5, 8, "YES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := packageAll(t, Options{LowLatency: true, WindowSegments: tc.window}, synth{seconds: tc.secs, gop: 30}.frames(time.Now()))
			srv := serve(t, p)
			_, full := get(t, srv.URL+"/playlist.m3u8")
			_, delta := get(t, srv.URL+"/playlist.m3u8?_HLS_skip="+tc.skip)
			fm, dm := parseMedia(t, full), parseMedia(t, delta)
			limit := *fm.ServerControl.CanSkipUntil
			var total, end time.Duration
			for _, s := range fm.Segments {
				total += s.Duration
			}
			want := 0
			for _, s := range fm.Segments {
				end += s.Duration
				if total-end < limit-time.Millisecond {
					break
				}
				want++
			}
			got := 0
			if dm.Skip != nil {
				got = dm.Skip.SkippedSegments
			}
			if got != want {
				t.Fatalf("skipped %d, want %d", got, want)
			}
			if tc.name != "short window, nothing to skip" && want == 0 {
				t.Fatal("test stream too short to skip anything")
			}
			if dm.MediaSequence != fm.MediaSequence {
				t.Errorf("media sequence %d != %d", dm.MediaSequence, fm.MediaSequence)
			}
			if len(dm.Segments)+got != len(fm.Segments) {
				t.Fatalf("%d + %d skipped != %d", len(dm.Segments), got, len(fm.Segments))
			}
			for i, s := range dm.Segments {
				if f := fm.Segments[i+got]; f.URI != s.URI || f.Duration != s.Duration || !f.DateTime.Equal(*s.DateTime) {
					t.Errorf("delta segment %d differs: %s vs %s", i, s.URI, f.URI)
				}
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	p := packageAll(t, Options{LowLatency: true, Container: ContainerFMP4}, synth{seconds: 3, gop: 30}.frames(time.Now()))
	srv := serve(t, p)
	cases := []struct {
		path, ctype, cache string
		status             int
	}{
		{"/playlist.m3u8", typePlaylist, "public, max-age=60", 200},
		{"/init.mp4", typeMP4, immutable, 200},
		{"/seg0.m4s", typeMP4, immutable, 200},
		{"/part1.0.m4s", typeMP4, immutable, 200},
		{"/seg0.ts", "", "", 404},
		{"/part1.99.m4s", "", "", 404},
		{"/other", "", "", 404},
	}
	for _, tc := range cases {
		resp, _ := get(t, srv.URL+tc.path)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q", tc.path, got)
		}
		if got := resp.Header.Get("Cache-Control"); got != tc.cache {
			t.Errorf("%s: Cache-Control %q", tc.path, got)
		}
	}

	req, _ := http.NewRequest("GET", srv.URL+"/playlist.m3u8", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatal("playlist not gzipped")
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	parseMedia(t, body)
}

func TestMultivariantPlaylist(t *testing.T) {
	in := []Rendition{
		{Name: RenditionName(1080, 30), URI: "1080p30/playlist.m3u8", Info: RenditionInfo{
			Bandwidth: 6000000, AverageBandwidth: 5000000, Codecs: "avc1.64002A,mp4a.40.2", Width: 1920, Height: 1080, FrameRate: 30}},
		{Name: RenditionName(360, 30), URI: "360p30/playlist.m3u8", Info: RenditionInfo{
			Codecs: "avc1.4D401E,mp4a.40.2", Width: 640, Height: 360, FrameRate: 29.97}},
	}
	pl, err := playlist.Unmarshal(MultivariantPlaylist(in))
	if err != nil {
		t.Fatal(err)
	}
	mv, ok := pl.(*playlist.Multivariant)
	if !ok || !mv.IndependentSegments || len(mv.Variants) != 2 || len(mv.Renditions) != 3 {
		t.Fatalf("%+v", pl)
	}
	// The CC1 caption channel, declared once and named by every variant.
	cc := mv.Renditions[0]
	if cc.Type != playlist.MultivariantRenditionTypeClosedCaptions || cc.GroupID != "CC" || cc.InStreamID == nil || *cc.InStreamID != "CC1" {
		t.Fatalf("caption rendition %+v", cc)
	}
	mv.Renditions = mv.Renditions[1:]
	for i, v := range mv.Variants {
		if v.ClosedCaptions != "CC" {
			t.Errorf("variant %d names captions %q", i, v.ClosedCaptions)
		}
		r := in[i]
		wantBW := r.Info.Bandwidth
		if wantBW == 0 {
			wantBW = fallbackBandwidth
		}
		if v.Bandwidth != wantBW || v.AverageBandwidth == nil || *v.AverageBandwidth > v.Bandwidth ||
			strings.Join(v.Codecs, ",") != r.Info.Codecs || v.URI != r.URI || v.Video != r.Name ||
			v.Resolution != fmt.Sprintf("%dx%d", r.Info.Width, r.Info.Height) ||
			v.FrameRate == nil || *v.FrameRate != r.Info.FrameRate {
			t.Errorf("variant %d: %+v", i, v)
		}
		if mv.Renditions[i].Name != r.Name || mv.Renditions[i].GroupID != r.Name {
			t.Errorf("rendition %d: %+v", i, mv.Renditions[i])
		}
	}
	if RenditionName(720, 60) != "720p60" {
		t.Error(RenditionName(720, 60))
	}
}

func TestInfoMeasured(t *testing.T) {
	p := packageAll(t, Options{LowLatency: true}, synth{seconds: 5, gop: 30}.frames(time.Now()))
	info := p.Info()
	if info.Codecs != "avc1.42C028,mp4a.40.2" || info.Width != 1920 || info.Height != 1080 {
		t.Errorf("%+v", info)
	}
	if info.FrameRate < 29.9 || info.FrameRate > 30.1 {
		t.Errorf("frame rate %v", info.FrameRate)
	}
	// One 20 kB keyframe and 29 2 kB frames a second, plus 300 B of audio
	// every 21.3 ms, is about 0.73 Mbit/s before TS overhead.
	if info.AverageBandwidth < 700_000 || info.AverageBandwidth > 900_000 || info.Bandwidth < info.AverageBandwidth {
		t.Errorf("bandwidth %d avg %d", info.Bandwidth, info.AverageBandwidth)
	}
}

func TestRenditionReports(t *testing.T) {
	frames := synth{seconds: 3, gop: 30}.frames(time.Now())
	a := packageAll(t, Options{LowLatency: true}, frames)
	b := packageAll(t, Options{LowLatency: true}, frames[:len(frames)/2])
	a.SetRenditionReports([]RenditionReport{{URI: "../low/playlist.m3u8", Packager: b}, {URI: "self", Packager: a}})
	srv := serve(t, a)
	_, body := get(t, srv.URL+"/playlist.m3u8")
	m := parseMedia(t, body)
	if len(m.RenditionReport) != 1 {
		t.Fatalf("%d rendition reports:\n%s", len(m.RenditionReport), body)
	}
	last := b.segs[len(b.segs)-1]
	r := m.RenditionReport[0]
	if r.URI != "../low/playlist.m3u8" || r.LastMSN != int(last.msn) || r.LastPart == nil || *r.LastPart != len(last.parts)-1 {
		t.Errorf("report %+v, want msn %d part %d", r, last.msn, len(last.parts)-1)
	}
}

// feeder writes a synthetic stream into a hub on demand.
type feeder struct {
	hub    *media.Hub
	frames []*media.Frame
	next   int
}

// until writes every frame up to and including the first video frame at
// or after dts (with the audio before it).
func (f *feeder) until(dts time.Duration) {
	for f.next < len(f.frames) {
		fr := f.frames[f.next]
		f.hub.Write(fr)
		f.next++
		if fr.Track == 0 && fr.DTS >= dts {
			return
		}
	}
}

// waitPosition waits until the packager's newest part is (msn, part).
func waitPosition(t *testing.T, p *Packager, msn uint64, part int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := p.lastPart.Load()
		if v>>16 == msn && int(v&0xffff)-1 == part {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("newest part %d.%d, want %d.%d", v>>16, int(v&0xffff)-1, msn, part)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPlaylistBeforeFirstSegment: a rendition that has parts but no
// complete segment yet (a transcoded rung just after Stream Start, which
// the first part triggers) answers no playlist without a segment: hls.js
// fails such a playlist ("No Segments found in Playlist"). Plain, blocking
// and delta requests are held until the first segment is complete; one
// that outwaits the hold gets 503, which hls.js retries.
func TestPlaylistBeforeFirstSegment(t *testing.T) {
	hub, p, _ := started(t, Options{LowLatency: true}, testTracks(t))
	srv := serve(t, p)
	f := &feeder{hub: hub, frames: synth{seconds: 4, gop: 30}.frames(time.Now())}
	// Parts 0.0 and 0.1: the keyframe that ends segment 0 is at 1 s.
	f.until(400 * time.Millisecond)
	waitPosition(t, p, 0, 1)

	queries := []string{"", "?_HLS_skip=YES", "?_HLS_msn=0&_HLS_part=0", "?_HLS_msn=0&_HLS_part=1&_HLS_skip=YES"}
	// Nothing is fed meanwhile, so whatever comes back within the client's
	// patience is an answer about parts only.
	for _, q := range queries {
		req, _ := http.NewRequest("GET", srv.URL+"/playlist.m3u8"+q, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Errorf("playlist%s answered %d before any segment was complete:\n%s", q, resp.StatusCode, body)
		}
		cancel()
	}

	var held []<-chan result
	for _, q := range queries {
		held = append(held, getAsync(srv.URL+"/playlist.m3u8"+q))
	}
	f.until(1200 * time.Millisecond) // segment 0 completes, 1.0 begins
	for i, ch := range held {
		select {
		case r := <-ch:
			if r.status != 200 || !strings.Contains(string(r.body), "#EXTINF:") {
				t.Errorf("playlist%s: status %d once segment 0 was complete:\n%s", queries[i], r.status, r.body)
				continue
			}
			m := parseMedia(t, r.body)
			if len(m.Segments) == 0 || m.Segments[0].URI != "seg0.ts" {
				t.Errorf("playlist%s lists %d segments:\n%s", queries[i], len(m.Segments), r.body)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("playlist%s still held after segment 0 was complete", queries[i])
		}
	}

	t.Run("503 when nothing comes", func(t *testing.T) {
		_, idle, _ := started(t, Options{LowLatency: true, MaxSegment: time.Second}, testTracks(t))
		srv := serve(t, idle)
		start := time.Now()
		resp, body := get(t, srv.URL+"/playlist.m3u8")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503:\n%s", resp.StatusCode, body)
		}
		if d := time.Since(start); d < 2*time.Second {
			t.Errorf("answered after %v, want a hold of 3 target durations", d)
		}
	})
}

// hlsjsSwitch is the delivery directives hls.js (level-controller
// switchParams) sends to the rendition at uri when it switches to it from
// the rendition whose playlist is from: the report's LAST-MSN and
// LAST-PART, where a 0 (falsy to parseInt(...) ||) is replaced by the last
// part of from's own playlist. ok is false without a report: hls.js then
// loads the playlist without directives.
func hlsjsSwitch(t *testing.T, from []byte, uri string) (msn, part int, ok bool) {
	t.Helper()
	lastSN, lastIdx := -1, -1
	var report string
	for _, line := range strings.Split(string(from), "\n") {
		if strings.HasPrefix(line, "#EXT-X-PART:") {
			u := line[strings.Index(line, `URI="`)+5:]
			if _, err := fmt.Sscanf(u[:strings.Index(u, `"`)], "part%d.%d.ts", &lastSN, &lastIdx); err != nil {
				t.Fatal(err)
			}
		}
		if strings.HasPrefix(line, `#EXT-X-RENDITION-REPORT:URI="`+uri+`"`) {
			report = line
		}
	}
	if report == "" {
		return 0, 0, false
	}
	var m, p int
	if _, err := fmt.Sscanf(report[strings.Index(report, "LAST-MSN="):], "LAST-MSN=%d,LAST-PART=%d", &m, &p); err != nil {
		t.Fatalf("%q: %v", report, err)
	}
	if m == 0 {
		m = lastSN
	}
	if p == 0 {
		p = lastIdx
	}
	return m, p, true
}

// TestRenditionSwitchLikeHLSJS: switching renditions, hls.js asks the new
// one for the part its rendition report names, or, when the report says
// LAST-MSN=0 or LAST-PART=0, for the msn or part index of the rendition it
// leaves. The source runs ahead of transcoded renditions, so that may be
// a few parts past the new rendition's edge: within RFC 8216bis's Advance
// Part Limit (three seconds of parts), the request is held, not refused —
// a 400 makes hls.js penalize the rendition and never climb back to it.
func TestRenditionSwitchLikeHLSJS(t *testing.T) {
	frames := synth{seconds: 10, gop: 30}.frames(time.Now())
	srcHub, src, _ := started(t, Options{LowLatency: true}, testTracks(t))
	lowHub, low, _ := started(t, Options{LowLatency: true}, testTracks(t))
	src.SetRenditionReports([]RenditionReport{{URI: "../low/playlist.m3u8", Packager: low}})
	srcSrv, lowSrv := serve(t, src), serve(t, low)
	srcFeed, lowFeed := &feeder{hub: srcHub, frames: frames}, &feeder{hub: lowHub, frames: frames}

	// The low rendition is still in its first segment: not reported, so
	// hls.js loads it without directives (and never asks for the source's
	// msn, segments past the low rendition's edge).
	srcFeed.until(2900 * time.Millisecond)
	waitPosition(t, src, 2, 3)
	lowFeed.until(400 * time.Millisecond)
	waitPosition(t, low, 0, 1)
	_, body := get(t, srcSrv.URL+"/playlist.m3u8")
	if _, _, ok := hlsjsSwitch(t, body, "../low/playlist.m3u8"); ok {
		t.Errorf("a rendition without a second segment is reported:\n%s", body)
	}

	// The low rendition has just begun segment 3 (LAST-PART=0); the source
	// has completed it (its last part is 3.4).
	lowFeed.until(3200 * time.Millisecond)
	waitPosition(t, low, 3, 0)
	srcFeed.until(4000 * time.Millisecond)
	waitPosition(t, src, 3, 4)
	_, body = get(t, srcSrv.URL+"/playlist.m3u8")
	msn, part, ok := hlsjsSwitch(t, body, "../low/playlist.m3u8")
	if !ok || msn != 3 || part != 4 {
		t.Fatalf("hls.js would switch with _HLS_msn=%d&_HLS_part=%d (reported %v), want 3 and 4 (the source's part)\n%s", msn, part, ok, body)
	}
	url := fmt.Sprintf("%s/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d", lowSrv.URL, msn, part)
	// Nothing is fed meanwhile: the request is held, and a client that
	// gives up first has no answer.
	req, _ := http.NewRequest("GET", url, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	if resp, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		resp.Body.Close()
		t.Errorf("switch request _HLS_msn=%d&_HLS_part=%d answered %d at once, want it held", msn, part, resp.StatusCode)
	}
	cancel()
	switched := getAsync(url)
	lowFeed.until(4000 * time.Millisecond)
	select {
	case r := <-switched:
		if r.status != 200 || !strings.Contains(string(r.body), fmt.Sprintf(`URI="part%d.%d.ts"`, msn, part)) {
			t.Fatalf("switch request: status %d\n%s", r.status, r.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("switch request not answered once the part existed")
	}

	// Past the Advance Part Limit, the spec's 400 stands.
	lowFeed.until(4400 * time.Millisecond)
	waitPosition(t, low, 4, 1)
	limit := low.advancePartLimit()
	if limit != 14 {
		t.Errorf("Advance Part Limit %d parts, want 3 s / 0.202 s = 14", limit)
	}
	for _, q := range []string{
		fmt.Sprintf("_HLS_msn=4&_HLS_part=%d", 1+limit+1),
		fmt.Sprintf("_HLS_msn=5&_HLS_part=%d", limit),
		"_HLS_msn=7&_HLS_part=0",
	} {
		if resp, _ := get(t, lowSrv.URL+"/playlist.m3u8?"+q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}
