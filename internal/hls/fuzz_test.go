package hls

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzServeMedia throws arbitrary resource names and query strings at an
// ended packager (so nothing blocks): it must never panic and must answer
// with one of the statuses the API documents.
func FuzzServeMedia(f *testing.F) {
	for _, s := range [][2]string{
		{"playlist.m3u8", "_HLS_msn=3&_HLS_part=1"},
		{"playlist.m3u8", "_HLS_skip=YES"},
		{"playlist.m3u8", "_HLS_msn=18446744073709551615&_HLS_part=-1"},
		{"part1.2.ts", ""},
		{"part1..ts", ""},
		{"seg-1.ts", ""},
		{"init.mp4", ""},
		{"seg99999999999999999999.ts", ""},
	} {
		f.Add(s[0], s[1])
	}
	p := packageAll(f, Options{LowLatency: true}, synth{seconds: 3, gop: 30}.frames(time.Now()))
	f.Fuzz(func(t *testing.T, name, query string) {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		p.ServeMedia(w, r, name)
		switch w.Code {
		case 200, 400, 404:
		default:
			t.Fatalf("%q?%q: status %d", name, query, w.Code)
		}
	})
}
