// Package playback serves viewers: the multivariant playlist at a
// channel's playbackUrl and the renditions' playlists and media below it.
// It also counts viewers (viewers.go). Private-channel tokens and
// restriction policies come with the private-channels issue.
package playback

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/openivs/openivs/internal/hls"
)

// Streams finds a channel's live renditions (live.Manager).
type Streams interface {
	Playback(channelARN string) ([]hls.Variant, bool)
}

// Handler serves /api/video/v1/<region>.<account>.channel.<id>.m3u8 and,
// below /api/video/v1/<region>.<account>.channel.<id>/<rendition>/, each
// rendition's playlist and media.
type Handler struct {
	Region  string
	Streams Streams
	// Viewers, when set, counts viewer sessions: the multivariant playlist
	// mints a session id into its rendition URLs and every media playlist
	// fetch renews it.
	Viewers *Viewers
	// ViewerLimit bounds the concurrent viewer sessions of the account
	// (IVS's "Concurrent views" quota, 15,000); 0 means no limit. A new
	// viewer beyond it gets 429, and OnViewerLimit is told.
	ViewerLimit   int
	OnViewerLimit func(account string, limit, attempted int)
}

// Prefix is the path every playback URL starts with.
const Prefix = "/api/video/v1/"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Playback is public and cacheable; the channel's own CORS rules come
	// with restriction policies.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, Prefix)
	stream, sub, _ := strings.Cut(rest, "/")
	if sub == "" {
		stream = strings.TrimSuffix(stream, ".m3u8")
	}
	arn, ok := h.channelARN(stream)
	if !ok {
		writeError(w, http.StatusNotFound, "no such channel")
		return
	}
	variants, ok := h.Streams.Playback(arn)
	if !ok {
		writeError(w, http.StatusNotFound, "the channel is not live")
		return
	}
	if sub == "" {
		h.serveMultivariant(w, r, arn, stream, variants)
		return
	}
	path, resource, ok := strings.Cut(sub, "/")
	if !ok || resource == "" || strings.Contains(resource, "/") {
		writeError(w, http.StatusNotFound, "no such rendition")
		return
	}
	var p *hls.Packager
	for _, v := range variants {
		if v.Path == path {
			p = v.Packager
			break
		}
	}
	if p == nil {
		writeError(w, http.StatusNotFound, "no such rendition")
		return
	}
	if h.Viewers != nil && resource == hls.PlaylistName {
		h.Viewers.Touch(arn, sessionKey(r))
	}
	p.ServeMedia(w, r, resource)
}

// serveMultivariant lists the stream's renditions, highest first; the
// audio-only rendition of BASIC and STANDARD channels only when the
// viewer asks with ?allow_audio_only=true.
func (h *Handler) serveMultivariant(w http.ResponseWriter, r *http.Request, arn, stream string, variants []hls.Variant) {
	query := ""
	cache := "max-age=1"
	if h.Viewers != nil {
		// A player reloading the multivariant playlist keeps its session.
		id := r.URL.Query().Get(sessionParam)
		if !validSessionID(id) {
			if h.ViewerLimit > 0 {
				if n := h.Viewers.Total(); n >= h.ViewerLimit {
					if h.OnViewerLimit != nil {
						h.OnViewerLimit(accountOf(arn), h.ViewerLimit, n+1)
					}
					writeError(w, http.StatusTooManyRequests, "the concurrent viewers limit of this account is reached")
					return
				}
			}
			id = newSessionID()
		}
		h.Viewers.Touch(arn, id)
		query = "?" + sessionParam + "=" + id
		cache = "private, no-store" // one viewer's session id
	}
	allowAudioOnly := r.URL.Query().Get("allow_audio_only") == "true"
	var list []hls.Rendition
	for _, v := range variants {
		if v.OnRequest && !(v.AudioOnly && allowAudioOnly) {
			continue
		}
		info := v.Packager.Info()
		if info.Bandwidth <= 0 {
			info.Bandwidth, info.AverageBandwidth = v.Bandwidth, v.Bandwidth
		}
		if info.FrameRate <= 0 && !v.AudioOnly {
			info.FrameRate = v.FrameRate
		}
		name := v.Name
		if v.Source && v.Packager.Info().FrameRate > 0 || name == "" {
			name = renditionName(info) // what the packager measured
		}
		list = append(list, hls.Rendition{
			Name: name, URI: stream + "/" + v.Path + "/" + hls.PlaylistName + query, Info: info, AudioOnly: v.AudioOnly,
		})
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", cache)
	_, _ = w.Write(hls.MultivariantPlaylist(list))
}

// channelARN turns "<region>.<account>.channel.<id>" into the channel ARN.
func (h *Handler) channelARN(stream string) (string, bool) {
	parts := strings.Split(stream, ".")
	if len(parts) != 4 || parts[0] != h.Region || parts[2] != "channel" || parts[1] == "" || parts[3] == "" {
		return "", false
	}
	return "arn:aws:ivs:" + parts[0] + ":" + parts[1] + ":channel/" + parts[3], true
}

// accountOf returns the account of a channel ARN.
func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// renditionName names the passthrough rendition as IVS does ("720p30")
// from what its packager measured.
func renditionName(info hls.RenditionInfo) string {
	short := min(info.Width, info.Height)
	fps := int(info.FrameRate + 0.5)
	if fps == 0 {
		fps = 30
	}
	return hls.RenditionName(short, fps)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
