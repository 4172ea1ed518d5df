package hls

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// partHoldAhead is how many parts past the newest one a part request may
// name and still be held until the part exists (the preload hint and a
// little more); requests further ahead get 404.
const partHoldAhead = 3

// PlaylistName is the media playlist's resource name for ServeMedia.
const PlaylistName = playlistName

// Content types of what ServeMedia returns.
const (
	typePlaylist = "application/vnd.apple.mpegurl"
	typeTS       = "video/mp2t"
	typeMP4      = "video/mp4"
)

// immutable is for init sections, segments and parts: their names are
// never reused within a packager, so a CDN may keep them for good.
const immutable = "public, max-age=31536000, immutable"

// ServeMedia serves one of this rendition's resources: "playlist.m3u8"
// (with blocking reload and delta updates), "init.mp4", or a segment or
// part named as the playlist names them. Unknown or expired names get 404.
// The caller routes, authorizes and sets CORS.
func (p *Packager) ServeMedia(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case name == playlistName:
		p.servePlaylist(w, r)
	case strings.HasPrefix(name, "init") && strings.HasSuffix(name, ".mp4"):
		v := 0
		if n := strings.TrimSuffix(name[4:], ".mp4"); n != "" {
			var err error
			if v, err = strconv.Atoi(n); err != nil || v <= 0 || name != initName(v) {
				http.NotFound(w, r)
				return
			}
		}
		p.serveInit(w, v)
	case strings.HasPrefix(name, "seg") && strings.HasSuffix(name, p.ext):
		msn, err := strconv.ParseUint(strings.TrimSuffix(name[3:], p.ext), 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		p.serveSegment(w, r, msn)
	case strings.HasPrefix(name, "part") && strings.HasSuffix(name, p.ext):
		ms, is, ok := strings.Cut(strings.TrimSuffix(name[4:], p.ext), ".")
		msn, err1 := strconv.ParseUint(ms, 10, 64)
		idx, err2 := strconv.Atoi(is)
		if !ok || err1 != nil || err2 != nil || idx < 0 {
			http.NotFound(w, r)
			return
		}
		p.servePart(w, r, msn, idx)
	default:
		http.NotFound(w, r)
	}
}

func (p *Packager) mediaType() string {
	if p.opts.Container == ContainerFMP4 {
		return typeMP4
	}
	return typeTS
}

func (p *Packager) serveInit(w http.ResponseWriter, version int) {
	p.mu.Lock()
	data := p.inits[version]
	p.mu.Unlock()
	if len(data) == 0 {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	writeBody(w, typeMP4, immutable, data)
}

func writeBody(w http.ResponseWriter, ctype, cache string, chunks ...[]byte) {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cache)
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	for _, c := range chunks {
		if _, err := w.Write(c); err != nil {
			return
		}
	}
}

// findLocked returns the retained segment with msn, or nil.
func (p *Packager) findLocked(msn uint64) *segment {
	if len(p.segs) == 0 || msn < p.segs[0].msn {
		return nil
	}
	i := msn - p.segs[0].msn
	if i >= uint64(len(p.segs)) {
		return nil
	}
	return p.segs[i]
}

func (p *Packager) serveSegment(w http.ResponseWriter, r *http.Request, msn uint64) {
	p.mu.Lock()
	s := p.findLocked(msn)
	var chunks [][]byte
	if s != nil && s.complete {
		for _, pt := range s.parts {
			chunks = append(chunks, pt.data)
		}
	}
	p.mu.Unlock()
	if chunks == nil {
		http.NotFound(w, r)
		return
	}
	writeBody(w, p.mediaType(), immutable, chunks...)
}

// blockTimeoutLocked bounds how long a blocking request is held: the spec
// lets clients give up after three target durations, so holding longer
// only wastes a connection.
func (p *Packager) blockTimeoutLocked() time.Duration {
	return time.Duration(3*p.target) * time.Second
}

// startHoldLocked bounds how long a playlist request is held while the
// rendition has no complete segment yet: its first segment is cut at most
// MaxSegment after its first frame, and a second more lets a rendition
// whose encoder starts late catch up. It stays well under the 10 s hls.js
// waits for a playlist's first byte.
func (p *Packager) startHoldLocked() time.Duration {
	return max(p.blockTimeoutLocked(), p.opts.MaxSegment+time.Second)
}

// playableLocked reports whether the playlist lists a complete segment.
// Until then it would hold parts only, and hls.js rejects a media playlist
// without a segment ("No Segments found in Playlist", LEVEL_EMPTY_ERROR);
// after two retries it marks the rendition failed, and its ABR no longer
// switches up to it. Segments leave the window only when a newer one
// completes, so once true it stays true.
func (p *Packager) playableLocked() bool {
	return len(p.segs) > 0 && p.segs[0].complete
}

// wait blocks until ready reports true (called with p.mu held, returning
// with it held), the timeout passes, the stream ends or ctx ends. It
// reports whether ready became true.
func (p *Packager) waitLocked(ctx context.Context, timeout time.Duration, ready func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for !ready() {
		if p.ended {
			return false
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
			p.mu.Lock()
		case <-timer.C:
			p.mu.Lock()
			return ready()
		case <-ctx.Done():
			p.mu.Lock()
			return false
		}
	}
	return true
}

// servePart serves a part, holding the request when it is the part the
// preload hint announced and it is still being cut (LL-HLS clients fetch
// the hint ahead so the bytes flow the moment the part is complete).
func (p *Packager) servePart(w http.ResponseWriter, r *http.Request, msn uint64, idx int) {
	p.mu.Lock()
	upcoming := func() bool {
		n := len(p.segs)
		if n == 0 {
			return msn == 0 && idx == 0
		}
		last := p.segs[n-1]
		switch {
		case msn == last.msn && !last.complete:
			return idx >= len(last.parts) && idx <= len(last.parts)+partHoldAhead
		case msn == last.msn+1:
			return idx <= partHoldAhead
		}
		return false
	}
	if upcoming() {
		p.waitLocked(r.Context(), p.blockTimeoutLocked(), func() bool { return !upcoming() })
	}
	var data []byte
	if s := p.findLocked(msn); s != nil && idx < len(s.parts) {
		data = s.parts[idx].data
	}
	p.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	writeBody(w, p.mediaType(), immutable, data)
}

func (p *Packager) servePlaylist(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	skip := false
	switch q.Get("_HLS_skip") {
	case "YES", "v2":
		skip = p.opts.LowLatency
	}
	block := false
	var msn uint64
	part := -1
	if p.opts.LowLatency {
		if v := q.Get("_HLS_msn"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				http.Error(w, "bad _HLS_msn", http.StatusBadRequest)
				return
			}
			msn, block = n, true
		}
		if v := q.Get("_HLS_part"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || !block {
				http.Error(w, "bad _HLS_part", http.StatusBadRequest)
				return
			}
			part = n
		}
	}

	p.mu.Lock()
	if block && p.tooFarAheadLocked(msn, part) {
		p.mu.Unlock()
		http.Error(w, "_HLS_msn/_HLS_part too far ahead", http.StatusBadRequest)
		return
	}
	// Every answer lists a complete segment: a rendition that has only
	// parts of its first one (transcoded renditions start later than the
	// source) holds even a plain request until it has, as if blocking.
	ready := func() bool { return p.playableLocked() && (!block || p.hasLocked(msn, part)) }
	if !ready() {
		timeout := p.blockTimeoutLocked()
		if !p.playableLocked() {
			timeout = p.startHoldLocked()
		}
		if !p.waitLocked(r.Context(), timeout, ready) && !p.ended {
			p.mu.Unlock()
			if errors.Is(r.Context().Err(), context.Canceled) {
				return
			}
			// 503, not 404: hls.js retries a 5xx playlist load and
			// gives a 4xx one up, penalizing the rendition.
			http.Error(w, "playlist update not available in time", http.StatusServiceUnavailable)
			return
		}
	}
	body := p.mediaPlaylistLocked(skip)
	gz := acceptsGzip(r)
	if gz {
		body = p.gzipLocked(skip, body)
	}
	cache := p.playlistCacheControlLocked(block)
	p.mu.Unlock()

	h := w.Header()
	h.Set("Vary", "Accept-Encoding")
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	writeBody(w, typePlaylist, cache, body)
}

// playlistCacheControlLocked: a blocking response answers a URL naming a
// future state and is valid from then on, so a CDN may share it among
// viewers; a plain reload must stay fresh for about half a part (LL) or
// half a segment (plain HLS).
func (p *Packager) playlistCacheControlLocked(block bool) string {
	if p.ended {
		return "public, max-age=60"
	}
	if block {
		return "public, max-age=" + strconv.Itoa(6*p.target)
	}
	if p.opts.LowLatency {
		return "public, max-age=0, s-maxage=0"
	}
	return "public, max-age=" + strconv.Itoa(max(1, p.target/2))
}

// advancePartLimit is RFC 8216bis §6.2.5.2's Advance Part Limit: three
// divided by the Part Target Duration when that is under a second (three
// seconds' worth of parts), else three.
func (p *Packager) advancePartLimit() int {
	if pt := p.opts.partLimit(); pt < time.Second {
		return int(3 * time.Second / pt)
	}
	return 3
}

// tooFarAheadLocked implements the spec's 400 rule: an _HLS_msn more than
// two past the last segment, or an _HLS_part more than the Advance Part
// Limit past the last part. Parts of segments not begun yet are counted
// as few as they can be, so only requests certainly past the limit are
// refused: hls.js, switching renditions, asks for the part index of the
// rendition it leaves when the other one reports LAST-PART=0, and after a
// 400 its ABR no longer switches up to the rendition.
func (p *Packager) tooFarAheadLocked(msn uint64, part int) bool {
	n := len(p.segs)
	if n == 0 {
		return msn > 1
	}
	last := p.segs[n-1]
	if msn > last.msn+2 {
		return true
	}
	if part < 0 || msn < last.msn || (msn == last.msn && last.complete) {
		return false
	}
	// Parts from the newest one to the one asked for.
	ahead := part - (len(last.parts) - 1)
	if msn > last.msn {
		ahead = int(msn-last.msn-1) + part + 1
	}
	return ahead > p.advancePartLimit()
}

// hasLocked reports whether the playlist already holds segment msn (with
// part, when part >= 0): the condition a blocking reload waits for.
func (p *Packager) hasLocked(msn uint64, part int) bool {
	n := len(p.segs)
	if n == 0 {
		return false
	}
	last := p.segs[n-1]
	if msn < last.msn || (msn == last.msn && last.complete) {
		return true
	}
	return msn == last.msn && part >= 0 && part < len(last.parts)
}

func acceptsGzip(r *http.Request) bool {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		e, q, _ := strings.Cut(strings.TrimSpace(e), ";")
		if strings.EqualFold(e, "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (p *Packager) gzipLocked(skip bool, body []byte) []byte {
	c := &p.cache.fullGz
	if skip {
		c = &p.cache.skipGz
	}
	if *c != nil {
		return *c
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	_, _ = zw.Write(body)
	_ = zw.Close()
	*c = b.Bytes()
	return *c
}
