package hls

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

func parseMedia(t *testing.T, body []byte) *playlist.Media {
	t.Helper()
	pl, err := playlist.Unmarshal(body)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		t.Fatalf("not a media playlist: %T", pl)
	}
	return m
}

func near(a, b time.Duration) bool {
	d := a - b
	return d > -2*time.Millisecond && d < 2*time.Millisecond
}

// contentDuration measures what a segment or part really holds: the span
// of its video timestamps plus one frame (TS), or the sum of its video
// sample durations (fMP4).
func contentDuration(t *testing.T, container string, data []byte, initData []byte) time.Duration {
	t.Helper()
	if container == ContainerFMP4 {
		var parts fmp4.Parts
		if err := parts.Unmarshal(data); err != nil {
			t.Fatalf("fmp4 parts: %v", err)
		}
		var total uint64
		for _, p := range parts {
			for _, tr := range p.Tracks {
				if tr.ID != 1 {
					continue
				}
				for _, s := range tr.Samples {
					total += uint64(s.Duration)
				}
			}
		}
		return time.Duration(total) * time.Second / 90000
	}
	r := &mpegts.Reader{R: bytes.NewReader(data)}
	if err := r.Initialize(); err != nil {
		t.Fatalf("ts: %v", err)
	}
	var first, last int64 = -1, -1
	for _, tr := range r.Tracks() {
		if _, ok := tr.Codec.(*mpegtsH264); ok {
			r.OnDataH264(tr, func(pts, dts int64, _ [][]byte) error {
				if first < 0 {
					first = dts
				}
				last = dts
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			break
		}
	}
	if first < 0 {
		t.Fatal("no video in TS")
	}
	return time.Duration(last-first)*time.Second/90000 + time.Second/30
}

func TestMediaPlaylist(t *testing.T) {
	base := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		opts      Options
		stream    synth
		wantDisc  int // DISCONTINUITY tags expected
		maxSegDur time.Duration
		indepSegs bool // every segment starts with a keyframe
	}{
		{"ts-ll", Options{LowLatency: true, WindowSegments: 30}, synth{seconds: 8, gop: 30}, 0, 1100 * time.Millisecond, true},
		{"fmp4-ll", Options{Container: ContainerFMP4, LowLatency: true, WindowSegments: 30}, synth{seconds: 8, gop: 30}, 0, 1100 * time.Millisecond, true},
		{"ts-plain", Options{WindowSegments: 30}, synth{seconds: 8, gop: 60}, 0, 2100 * time.Millisecond, true},
		{"fmp4-plain", Options{Container: ContainerFMP4, WindowSegments: 30}, synth{seconds: 8, gop: 60}, 0, 2100 * time.Millisecond, true},
		{"long-gop-capped", Options{LowLatency: true, MaxSegment: 2 * time.Second, WindowSegments: 30}, synth{seconds: 9, gop: 0}, 0, 2100 * time.Millisecond, false},
		{"takeover", Options{LowLatency: true, WindowSegments: 30}, synth{seconds: 6, gop: 30, discAt: 100}, 1, 1100 * time.Millisecond, true},
		{"window", Options{LowLatency: true, WindowSegments: 3}, synth{seconds: 8, gop: 30}, 0, 1100 * time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := packageAll(t, tc.opts, tc.stream.frames(base))
			select {
			case <-p.Ready():
			default:
				t.Fatal("Ready not closed")
			}
			srv := serve(t, p)
			resp, body := get(t, srv.URL+"/playlist.m3u8")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != typePlaylist {
				t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			m := parseMedia(t, body)
			opts := p.opts
			if !m.Endlist {
				t.Error("no EXT-X-ENDLIST after the hub closed")
			}
			wantVersion := map[bool]int{true: 9, false: 3}[opts.LowLatency]
			if !opts.LowLatency && opts.Container == ContainerFMP4 {
				wantVersion = 7
			}
			if m.Version != wantVersion {
				t.Errorf("version %d, want %d", m.Version, wantVersion)
			}
			if (m.Map != nil) != (opts.Container == ContainerFMP4) {
				t.Errorf("EXT-X-MAP presence wrong: %v", m.Map)
			}
			if opts.LowLatency {
				if m.ServerControl == nil || !m.ServerControl.CanBlockReload || m.ServerControl.PartHoldBack == nil ||
					*m.ServerControl.PartHoldBack != 3*opts.partLimit() || m.ServerControl.CanSkipUntil == nil ||
					*m.ServerControl.CanSkipUntil != time.Duration(6*m.TargetDuration)*time.Second {
					t.Errorf("server control %+v", m.ServerControl)
				}
				if m.PartInf == nil || m.PartInf.PartTarget != opts.partLimit() {
					t.Errorf("part inf %+v", m.PartInf)
				}
			} else if m.ServerControl != nil || m.PartInf != nil || strings.Contains(string(body), "#EXT-X-PART") {
				t.Error("plain HLS playlist carries LL-HLS tags")
			}
			if len(m.Segments) == 0 {
				t.Fatal("no segments")
			}
			if len(m.Segments) > opts.WindowSegments {
				t.Errorf("%d segments listed, window %d", len(m.Segments), opts.WindowSegments)
			}
			wantSeq := 0
			if tc.opts.WindowSegments == 3 {
				wantSeq = int(p.segs[len(p.segs)-1].msn) - 2
			}
			if m.MediaSequence != wantSeq {
				t.Errorf("media sequence %d, want %d", m.MediaSequence, wantSeq)
			}
			disc := 0
			var total time.Duration
			for i, s := range m.Segments {
				msn := m.MediaSequence + i
				if want := fmt.Sprintf("seg%d%s", msn, p.ext); s.URI != want {
					t.Errorf("segment %d URI %q, want %q", i, s.URI, want)
				}
				if s.Discontinuity {
					disc++
				}
				if s.DateTime == nil {
					t.Fatalf("segment %d without PROGRAM-DATE-TIME", msn)
				}
				if i > 0 {
					prev := m.Segments[i-1]
					gap := s.DateTime.Sub(*prev.DateTime)
					if gap <= 0 {
						t.Errorf("PDT not increasing at %d", msn)
					}
					if !s.Discontinuity && !near(gap, prev.Duration) {
						t.Errorf("PDT gap %v != previous duration %v at %d", gap, prev.Duration, msn)
					}
				}
				if int(math.Round(s.Duration.Seconds())) > m.TargetDuration {
					t.Errorf("segment %d duration %v above target %d", msn, s.Duration, m.TargetDuration)
				}
				if s.Duration > tc.maxSegDur {
					t.Errorf("segment %d duration %v above %v", msn, s.Duration, tc.maxSegDur)
				}
				total += s.Duration

				_, seg := get(t, srv.URL+"/"+s.URI)
				if got := contentDuration(t, opts.Container, seg, nil); !near(got, s.Duration) {
					t.Errorf("segment %d EXTINF %v, content %v", msn, s.Duration, got)
				}
				if opts.Container == ContainerTS && (len(seg)%188 != 0 || seg[0] != 0x47) {
					t.Errorf("segment %d is not whole TS packets", msn)
				}
				if len(s.Parts) == 0 {
					continue
				}
				var partSum time.Duration
				var joined []byte
				for j, pt := range s.Parts {
					if pt.Duration > opts.partLimit() {
						t.Errorf("part %d.%d lasts %v > PART-TARGET", msn, j, pt.Duration)
					}
					if j == 0 && tc.indepSegs && !pt.Independent {
						t.Errorf("first part of %d not INDEPENDENT", msn)
					}
					partSum += pt.Duration
					_, pb := get(t, srv.URL+"/"+pt.URI)
					if opts.Container == ContainerTS && !bytes.Equal(pb[1:3], []byte{0x40, 0x00}) {
						t.Errorf("part %s does not open with a PAT", pt.URI)
					}
					if got := contentDuration(t, opts.Container, pb, nil); !near(got, pt.Duration) {
						t.Errorf("part %s DURATION %v, content %v", pt.URI, pt.Duration, got)
					}
					joined = append(joined, pb...)
				}
				if !near(partSum, s.Duration) {
					t.Errorf("segment %d: parts sum %v, EXTINF %v", msn, partSum, s.Duration)
				}
				if !bytes.Equal(joined, seg) {
					t.Errorf("segment %d differs from its parts concatenated", msn)
				}
			}
			if disc != tc.wantDisc {
				t.Errorf("%d discontinuities, want %d", disc, tc.wantDisc)
			}
			if tc.opts.WindowSegments >= 30 && !near(total, time.Duration(tc.stream.seconds*float64(time.Second))) {
				t.Errorf("total duration %v, fed %vs", total, tc.stream.seconds)
			}
			if !tc.indepSegs {
				notIndep := 0
				for _, s := range p.segs {
					if !s.independent {
						notIndep++
					}
				}
				if notIndep == 0 {
					t.Error("capped long-GOP segments claim to be independent")
				}
			}
			if opts.Container == ContainerFMP4 {
				_, initData := get(t, srv.URL+"/init.mp4")
				var init fmp4.Init
				if err := init.Unmarshal(bytes.NewReader(initData)); err != nil || len(init.Tracks) != 2 {
					t.Errorf("init: %v, %d tracks", err, len(init.Tracks))
				}
			}
			if resp, _ := get(t, srv.URL+"/seg99999"+p.ext); resp.StatusCode != http.StatusNotFound {
				t.Errorf("unknown segment: %d", resp.StatusCode)
			}
		})
	}
}

// TestTakeoverNewInit: a takeover by an encoder with other parameter sets
// gets a new fMP4 init section, announced after the discontinuity.
func TestTakeoverNewInit(t *testing.T) {
	p := packageAll(t, Options{Container: ContainerFMP4, LowLatency: true, WindowSegments: 30},
		synth{seconds: 6, gop: 30, discAt: 100, newSPS: testSPS720}.frames(time.Now()))
	srv := serve(t, p)
	_, body := get(t, srv.URL+"/playlist.m3u8")
	parseMedia(t, body) // gohlslib keeps only the last EXT-X-MAP, so check order by hand
	text := string(body)
	if !strings.Contains(text, "#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PROGRAM-DATE-TIME") {
		t.Fatalf("first EXT-X-MAP is not init.mp4:\n%s", text)
	}
	disc := strings.Index(text, "#EXT-X-DISCONTINUITY\n")
	newMap := strings.Index(text, `#EXT-X-MAP:URI="init1.mp4"`)
	if disc < 0 || newMap < disc || strings.Count(text, "#EXT-X-MAP") != 2 {
		t.Fatalf("new EXT-X-MAP missing or misplaced:\n%s", text)
	}
	for name, wantW := range map[string]int{"init.mp4": 1920, "init1.mp4": 1280} {
		resp, data := get(t, srv.URL+"/"+name)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
		var init fmp4.Init
		if err := init.Unmarshal(bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		c, ok := init.Tracks[0].Codec.(*mp4codecs.H264)
		if !ok {
			t.Fatalf("%s: codec %T", name, init.Tracks[0].Codec)
		}
		var sps h264.SPS
		if err := sps.Unmarshal(c.SPS); err != nil || sps.Width() != wantW {
			t.Errorf("%s: width %d (%v), want %d", name, sps.Width(), err, wantW)
		}
	}
	if info := p.Info(); info.Width != 1280 || !strings.HasPrefix(info.Codecs, "avc1.64001F") {
		t.Errorf("info after takeover %+v", info)
	}
	if resp, _ := get(t, srv.URL+"/init0.mp4"); resp.StatusCode != 404 {
		t.Errorf("init0.mp4: %d", resp.StatusCode)
	}
}

// TestPartsWithMillisecondTimestamps: RTMP stamps frames in whole
// milliseconds, so 30 fps frames last 33 or 34 ms. Parts still come out as
// six frames each, five to a one-second GOP, with no one-frame part at the
// end of every segment, and every part but a segment's last (and
// independent ones) lasts at least 85% of PART-TARGET (RFC 8216bis 4.4.4.9).
func TestPartsWithMillisecondTimestamps(t *testing.T) {
	frames := synth{seconds: 5, gop: 30}.frames(time.Now())
	for _, f := range frames {
		f.DTS, f.PTS = f.DTS.Round(time.Millisecond), f.PTS.Round(time.Millisecond)
	}
	p := packageAll(t, Options{LowLatency: true, WindowSegments: 30}, frames)
	srv := serve(t, p)
	_, body := get(t, srv.URL+"/playlist.m3u8")
	m := parseMedia(t, body)
	limit := m.PartInf.PartTarget
	checked := 0
	for i, s := range m.Segments[:len(m.Segments)-1] {
		if len(s.Parts) == 0 {
			continue // parts are listed for the last few segments only
		}
		checked++
		if len(s.Parts) != 5 {
			durs := []time.Duration{}
			for _, pt := range s.Parts {
				durs = append(durs, pt.Duration)
			}
			t.Errorf("segment %d has %d parts %v, want 5 of 200 ms", i, len(s.Parts), durs)
		}
		for j, pt := range s.Parts {
			if pt.Duration > limit {
				t.Errorf("part %d.%d lasts %v > PART-TARGET %v", i, j, pt.Duration, limit)
			}
			if j < len(s.Parts)-1 && !pt.Independent && pt.Duration < limit*85/100 {
				t.Errorf("part %d.%d lasts %v < 85%% of PART-TARGET %v", i, j, pt.Duration, limit)
			}
		}
	}
	if checked == 0 {
		t.Fatalf("no complete segment lists its parts:\n%s", body)
	}
}

// TestDiscontinuitySequenceAtTheHead: the discontinuity sequence number
// of every segment stays the same from one playlist to the next while the
// window slides (RFC 8216 §6.2.2): when the segment that follows a
// takeover is the first listed, its EXT-X-DISCONTINUITY tag is what raises
// the count, so EXT-X-DISCONTINUITY-SEQUENCE must not include it yet.
func TestDiscontinuitySequenceAtTheHead(t *testing.T) {
	frames := synth{seconds: 6, gop: 30, discAt: 90}.frames(time.Now())
	// Segments 0–5, one per second; segment 3 follows the takeover.
	for _, c := range []struct {
		window   int
		wantDS   int
		firstTag bool
	}{
		{window: 4, wantDS: 0, firstTag: false}, // 2,3,4,5: the tag on the second segment
		{window: 3, wantDS: 0, firstTag: true},  // 3,4,5: the tag on the first
		{window: 2, wantDS: 1, firstTag: false}, // 4,5: it slid out; the count took it
	} {
		p := packageAll(t, Options{Container: ContainerTS, LowLatency: true, WindowSegments: c.window}, frames)
		srv := serve(t, p)
		_, body := get(t, srv.URL+"/playlist.m3u8")
		m := parseMedia(t, body)
		ds := 0
		if m.DiscontinuitySequence != nil {
			ds = *m.DiscontinuitySequence
		}
		if ds != c.wantDS {
			t.Errorf("window %d: DISCONTINUITY-SEQUENCE %d, want %d\n%s", c.window, ds, c.wantDS, body)
		}
		// The segment after the takeover must come out as number 1 either way.
		cc := ds
		for _, s := range m.Segments {
			if s.Discontinuity {
				cc++
			}
		}
		if cc != 1 {
			t.Errorf("window %d: the last segment's discontinuity number is %d, want 1\n%s", c.window, cc, body)
		}
		if len(m.Segments) == 0 || m.Segments[0].Discontinuity != c.firstTag {
			t.Errorf("window %d: first segment's discontinuity tag %v, want %v\n%s", c.window, !c.firstTag, c.firstTag, body)
		}
	}
}
