// Package webui serves the browser side of openivs: the IVS-compatible web
// player bundle (/player/openivs-player.min.js) and the demo page
// (/play/<channelId>[?token=<playback token>][&room=<chat room ARN>]); with
// room, a chat panel beside the player runs the official IVS Chat SDK
// (/player/openivs-chat-demo.min.js). The assets are built under web/ and embedded.
package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/openivs/openivs/web"
)

// PlayerPath is where the player bundle is served; pages written for the IVS
// player switch to it by changing only their script URL.
const PlayerPath = "/player/openivs-player.min.js"

// ChatDemoPath is where the demo page's chat panel script is served: the
// official amazon-ivs-chat-messaging SDK and the panel, in one bundle.
const ChatDemoPath = "/player/openivs-chat-demo.min.js"

const (
	// The bundle's URL is not versioned, so caches must revalidate soon after a
	// deploy; the ETag keeps revalidation cheap.
	playerCacheControl = "public, max-age=300"
	pageCacheControl   = "no-store"
	urlPlaceholder     = "{{PLAYBACK_URL}}"
	roomPlaceholder    = "{{ROOM}}"
	// chatHead goes before </head> of a page with a chat panel.
	chatHead = `<link rel="stylesheet" href="/player/chat.css">` + "\n"
)

// asset is one embedded file, prepared once: hash for the ETag, gzip variant.
type asset struct {
	body        []byte
	gz          []byte
	contentType string
	etag        string
}

func newAsset(body []byte, contentType string) (*asset, error) {
	sum := sha256.Sum256(body)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &asset{
		body:        body,
		gz:          buf.Bytes(),
		contentType: contentType,
		etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
	}, nil
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", a.etag)
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	// The player may be loaded by pages on other origins, like IVS's CDN script.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

type handler struct {
	playbackURL func(channelID string) string
	assets      map[string]*asset // by request path
	page        string            // play.html with the URL placeholder
	chatPanel   string            // chat.html with the room placeholder
}

// Handler serves PlayerPath, the demo page's own assets under /player/, and
// /play/<channelId>: the demo page with the channel's playback URL, from
// playbackURL(channelID), filled in; "" means unknown channel → 404.
// It panics if the embedded assets are missing, which is a build error.
func Handler(playbackURL func(channelID string) string) http.Handler {
	h, err := newHandler(playbackURL, web.FS)
	if err != nil {
		panic("webui: " + err.Error())
	}
	return h
}

func newHandler(playbackURL func(string) string, files fs.FS) (*handler, error) {
	h := &handler{playbackURL: playbackURL, assets: map[string]*asset{}}
	for path, file := range map[string]struct{ name, contentType string }{
		PlayerPath:         {"dist/openivs-player.min.js", "text/javascript; charset=utf-8"},
		"/player/play.js":  {"demo/play.js", "text/javascript; charset=utf-8"},
		"/player/play.css": {"demo/play.css", "text/css; charset=utf-8"},
		ChatDemoPath:       {"dist/openivs-chat-demo.min.js", "text/javascript; charset=utf-8"},
		"/player/chat.css": {"demo/chat.css", "text/css; charset=utf-8"},
	} {
		body, err := fs.ReadFile(files, file.name)
		if err != nil {
			return nil, err
		}
		if h.assets[path], err = newAsset(body, file.contentType); err != nil {
			return nil, err
		}
	}
	page, err := fs.ReadFile(files, "demo/play.html")
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(page, []byte(urlPlaceholder)) {
		return nil, fmt.Errorf("demo/play.html lacks %s", urlPlaceholder)
	}
	for _, mark := range []string{"</head>", "</body>"} {
		if !bytes.Contains(page, []byte(mark)) {
			return nil, fmt.Errorf("demo/play.html lacks %s", mark)
		}
	}
	h.page = string(page)
	panel, err := fs.ReadFile(files, "demo/chat.html")
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(panel, []byte(roomPlaceholder)) {
		return nil, fmt.Errorf("demo/chat.html lacks %s", roomPlaceholder)
	}
	h.chatPanel = string(panel)
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if a, ok := h.assets[r.URL.Path]; ok {
		a.serve(w, r, playerCacheControl)
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/play/"); ok && id != "" && !strings.Contains(id, "/") {
		h.servePage(w, r, id)
		return
	}
	http.NotFound(w, r)
}

func (h *handler) servePage(w http.ResponseWriter, r *http.Request, channelID string) {
	playback := h.playbackURL(channelID)
	if playback == "" {
		http.NotFound(w, r)
		return
	}
	// A private channel's page passes its playback token on, as an app
	// loads playbackUrl?token=<jwt>.
	if token := r.URL.Query().Get("token"); token != "" {
		if u, err := url.Parse(playback); err == nil {
			q := u.Query()
			q.Set("token", token)
			u.RawQuery = q.Encode()
			playback = u.String()
		}
	}
	body := strings.Replace(h.page, urlPlaceholder, html.EscapeString(playback), 1)
	var chatOrigins []string
	// ?room=<roomArn> adds the chat panel; its script connects to this
	// node's /chat and asks POST /chat-demo/token, which mints tokens only
	// for rooms tagged openivs:chat-demo=true.
	if room := r.URL.Query().Get("room"); room != "" {
		panel := strings.Replace(h.chatPanel, roomPlaceholder, html.EscapeString(room), 1)
		body = strings.Replace(body, "</head>", chatHead+"</head>", 1)
		body = strings.Replace(body, "</body>", panel+"</body>", 1)
		// 'self' covers ws(s) to the page's host in CSP 3; older browsers
		// need it said.
		if host := r.Host; validHost(host) {
			chatOrigins = []string{"ws://" + host, "wss://" + host}
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", pageCacheControl)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy(chatOrigins, playback, r.URL.Query().Get("url")))
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(body))
}

// contentSecurityPolicy is the IVS player's documented minimum (spec/03 §11:
// worker-src blob:, media-src blob:, wasm-unsafe-eval) narrowed to this page:
// hls.js runs its transmuxer in a blob: worker and feeds MSE through blob:
// URLs, and gives each captions <track> an empty "data:,WEBVTT" source;
// playlists and segments are fetched from the playback origin(s), and the
// chat panel connects to the origins in extra.
func contentSecurityPolicy(extra []string, playbackURLs ...string) string {
	connect := append([]string{"'self'"}, extra...)
	for _, u := range playbackURLs {
		if o := origin(u); o != "" && !contains(connect, o) {
			connect = append(connect, o)
		}
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' 'wasm-unsafe-eval'",
		"worker-src 'self' blob:",
		"media-src 'self' blob: data:",
		"connect-src " + strings.Join(connect, " "),
		"img-src 'self' data: blob:",
		"style-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
	}, "; ")
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// validHost reports whether a Host header is a plain host[:port] that can
// go into a CSP source as it is.
func validHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
