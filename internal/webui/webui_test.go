package webui

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testHandler() http.Handler {
	return Handler(func(id string) string {
		if id == "abcd" {
			return `https://play.example.com/api/video/v1/us-west-2.123.channel.abcd.m3u8?a=1&b="2"`
		}
		return ""
	})
}

func TestHandler(t *testing.T) {
	h := testHandler()
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		cacheControl       string
		bodyHas            string
	}{
		{"player", "GET", PlayerPath, 200, "text/javascript; charset=utf-8", "public, max-age=300", "IVSPlayer"},
		{"player head", "HEAD", PlayerPath, 200, "text/javascript; charset=utf-8", "public, max-age=300", ""},
		{"demo script", "GET", "/player/play.js", 200, "text/javascript; charset=utf-8", "public, max-age=300", "attachHTMLVideoElement"},
		{"demo css", "GET", "/player/play.css", 200, "text/css; charset=utf-8", "public, max-age=300", "video"},
		{"page", "GET", "/play/abcd", 200, "text/html; charset=utf-8", "no-store", `data-playback-url="https://play.example.com/api/video/v1/us-west-2.123.channel.abcd.m3u8?a=1&amp;b=&#34;2&#34;"`},
		{"page with a playback token", "GET", "/play/abcd?token=eyJh.eyJb.c-_d", 200, "text/html; charset=utf-8", "no-store", `data-playback-url="https://play.example.com/api/video/v1/us-west-2.123.channel.abcd.m3u8?a=1&amp;b=%222%22&amp;token=eyJh.eyJb.c-_d"`},
		{"unknown channel", "GET", "/play/nope", 404, "", "", ""},
		{"no channel", "GET", "/play/", 404, "", "", ""},
		{"nested", "GET", "/play/abcd/x", 404, "", "", ""},
		{"other", "GET", "/player/other.js", 404, "", "", ""},
		{"post", "POST", PlayerPath, 405, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.contentType != "" && rec.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), tc.contentType)
			}
			if tc.cacheControl != "" && rec.Header().Get("Cache-Control") != tc.cacheControl {
				t.Errorf("Cache-Control %q, want %q", rec.Header().Get("Cache-Control"), tc.cacheControl)
			}
			if tc.bodyHas != "" && !strings.Contains(rec.Body.String(), tc.bodyHas) {
				t.Errorf("body lacks %q", tc.bodyHas)
			}
			if tc.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD has a body")
			}
		})
	}
}

func TestPageCSP(t *testing.T) {
	rec := httptest.NewRecorder()
	testHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/play/abcd?url=http://other.test:8080/x.m3u8", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{
		"worker-src 'self' blob:", "media-src 'self' blob: data:", "script-src 'self' 'wasm-unsafe-eval'",
		"connect-src 'self' https://play.example.com http://other.test:8080",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline script: %q", csp)
	}
}

func TestPlayerGzipAndETag(t *testing.T) {
	h := testHandler()
	req := httptest.NewRequest("GET", PlayerPath, nil)
	req.Header.Set("Accept-Encoding", "br, gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "PlayerStateChanged") {
		t.Error("gunzipped bundle lacks PlayerStateChanged")
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req = httptest.NewRequest("GET", PlayerPath, nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation status %d, want 304", rec.Code)
	}
}
