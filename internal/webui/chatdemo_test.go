package webui

import (
	"html"
	"io/fs"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openivs/openivs/web"
)

const testPlayback = `https://play.example.com/api/video/v1/us-west-2.123.channel.abcd.m3u8?a=1&b="2"`

// TestPageWithoutRoomUnchanged: without ?room the page is play.html with
// the playback URL filled in, nothing more.
func TestPageWithoutRoomUnchanged(t *testing.T) {
	raw, err := fs.ReadFile(web.FS, "demo/play.html")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(raw), urlPlaceholder, html.EscapeString(testPlayback), 1)
	rec := httptest.NewRecorder()
	testHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/play/abcd", nil))
	if rec.Body.String() != want {
		t.Errorf("page without ?room differs from play.html:\n%s", rec.Body.String())
	}
	if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "ws://") {
		t.Errorf("CSP without ?room names a WebSocket origin: %q", csp)
	}
}

// TestPageWithChatPanel: ?room adds the chat panel (escaped room, its
// stylesheet and the chat bundle) and lets the page reach this host's
// WebSocket; the bundle and stylesheet are served like the player.
func TestPageWithChatPanel(t *testing.T) {
	h := testHandler()
	room := `arn:aws:ivschat:us-west-2:123456789012:room/AbCdEfGhIjKl"><script>`
	req := httptest.NewRequest("GET", "/play/abcd?token=tok&room="+strings.NewReplacer(":", "%3A", "/", "%2F", `"`, "%22", "<", "%3C", ">", "%3E").Replace(room), nil)
	req.Host = "live.example.com:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	page := rec.Body.String()
	head, bodyPart, _ := strings.Cut(page, "</head>")
	for _, want := range []string{`<link rel="stylesheet" href="/player/chat.css">`} {
		if !strings.Contains(head, want) {
			t.Errorf("head lacks %q", want)
		}
	}
	for _, want := range []string{
		`data-room="` + html.EscapeString(room) + `"`,
		`<script src="` + ChatDemoPath + `"></script>`,
		`id="chat-messages"`, `id="chat-name"`, `id="chat-input"`, `id="chat-send"`,
		// The player is still there, with its token.
		`<script src="` + PlayerPath + `"></script>`, "token=tok",
	} {
		if !strings.Contains(bodyPart, want) {
			t.Errorf("body lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "{{") {
		t.Errorf("the room was not escaped or a placeholder is left:\n%s", page)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "connect-src 'self' ws://live.example.com:8080 wss://live.example.com:8080 https://play.example.com") {
		t.Errorf("CSP %q does not allow the chat WebSocket", csp)
	}

	// A Host that cannot go into a CSP source is left out ('self' still covers it).
	req = httptest.NewRequest("GET", "/play/abcd?room=r", nil)
	req.Host = "x;script-src"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "ws://") || strings.Contains(csp, "x;") {
		t.Errorf("CSP %q took a bad Host", csp)
	}

	for path, want := range map[string]string{ChatDemoPath: "/chat-demo/token", "/player/chat.css": "#chat-messages"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != playerCacheControl || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: status %d, Cache-Control %q, has %q: %v", path, rec.Code, rec.Header().Get("Cache-Control"), want, strings.Contains(rec.Body.String(), want))
		}
	}
}
