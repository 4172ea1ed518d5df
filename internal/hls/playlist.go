package hls

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Resource names the media playlist refers to. They are relative so the
// caller can mount a rendition under any path (and append a viewer-session
// query the same way for every resource).
const (
	playlistName = "playlist.m3u8"
)

func (p *Packager) segmentName(msn uint64) string {
	return "seg" + strconv.FormatUint(msn, 10) + p.ext
}

func initName(version int) string {
	if version == 0 {
		return "init.mp4"
	}
	return "init" + strconv.Itoa(version) + ".mp4"
}

func (p *Packager) partName(msn uint64, i int) string {
	return "part" + strconv.FormatUint(msn, 10) + "." + strconv.Itoa(i) + p.ext
}

// playlistCache holds the rendered playlists of the current state, so
// that the many viewers woken by one publish share one rendering.
type playlistCache struct {
	full, skip     []byte
	fullGz, skipGz []byte
}

// secs formats a duration as decimal seconds; five decimals keep part
// durations summing to the segment's EXTINF to well under a millisecond.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 5, 64)
}

// canSkipUntil is how far from the live edge a delta update may skip; the
// spec requires at least six target durations.
func (p *Packager) canSkipUntilLocked() time.Duration {
	return time.Duration(6*p.target) * time.Second
}

// mediaPlaylistLocked renders the media playlist; skip asks for a delta
// update (EXT-X-SKIP) where the window allows one.
func (p *Packager) mediaPlaylistLocked(skip bool) []byte {
	if skip && p.cache.skip != nil {
		return p.cache.skip
	}
	if !skip && p.cache.full != nil {
		return p.cache.full
	}
	ll := p.opts.LowLatency
	segs := p.listedLocked()
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	version := 3
	switch {
	case ll:
		version = 9 // EXT-X-SKIP needs 9; parts need 6
	case p.opts.Container == ContainerFMP4:
		version = 7
	}
	fmt.Fprintf(&b, "#EXT-X-VERSION:%d\n", version)
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", p.target)
	if ll {
		fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%s,CAN-SKIP-UNTIL=%s\n",
			secs(3*p.opts.partLimit()), secs(p.canSkipUntilLocked()))
		fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%s\n", secs(p.opts.partLimit()))
	}
	var msn, disc uint64
	if len(segs) > 0 {
		msn, disc = segs[0].msn, segs[0].disc
		if segs[0].discontinuity && disc > 0 {
			// Its EXT-X-DISCONTINUITY tag, still listed, is what counts it:
			// counting it here as well would renumber it (RFC 8216 §6.2.2).
			disc--
		}
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", msn)
	if disc > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", disc)
	}
	fmp4 := p.opts.Container == ContainerFMP4
	mapVersion := 0
	if len(segs) > 0 {
		mapVersion = segs[0].initVersion
	}
	if fmp4 {
		fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", initName(mapVersion))
	}

	// Skip the complete segments that end more than CAN-SKIP-UNTIL before
	// the end of the playlist.
	var total time.Duration
	for _, s := range segs {
		total += s.dur
	}
	skipped := 0
	if skip {
		var end time.Duration
		limit := p.canSkipUntilLocked()
		for _, s := range segs {
			end += s.dur
			// The millisecond of slack makes the rule agree with the
			// rounded durations a client sums from the playlist.
			if !s.complete || total-end < limit-time.Millisecond {
				break
			}
			skipped++
		}
		if skipped > 0 {
			fmt.Fprintf(&b, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n", skipped)
		}
	}

	// Parts are listed only within three target durations of the end, as
	// the spec asks; older segments are reachable whole.
	partsFrom := total - time.Duration(3*p.target)*time.Second
	var start time.Duration
	for i, s := range segs {
		start += s.dur
		if i < skipped {
			continue
		}
		if s.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if fmp4 && s.initVersion != mapVersion {
			mapVersion = s.initVersion
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", initName(mapVersion))
		}
		b.WriteString("#EXT-X-PROGRAM-DATE-TIME:")
		b.WriteString(s.pdt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		b.WriteByte('\n')
		if ll && (start > partsFrom || !s.complete) {
			for j, pt := range s.parts {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%s,URI=\"%s\"", secs(pt.dur), p.partName(s.msn, j))
				if pt.independent {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteByte('\n')
			}
		}
		if s.complete {
			fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n", secs(s.dur), p.segmentName(s.msn))
		}
	}
	if ll && !p.ended && len(segs) > 0 {
		last := segs[len(segs)-1]
		next, idx := last.msn, len(last.parts)
		if last.complete {
			next, idx = last.msn+1, 0
		}
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s\"\n", p.partName(next, idx))
	}
	if ll {
		for _, r := range p.reports {
			if r.Packager == nil || r.Packager == p {
				continue
			}
			if msn, part, ok := r.Packager.livePosition(); ok {
				fmt.Fprintf(&b, "#EXT-X-RENDITION-REPORT:URI=\"%s\",LAST-MSN=%d,LAST-PART=%d\n", r.URI, msn, part)
			}
		}
	}
	if p.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	out := b.Bytes()
	if skip {
		p.cache.skip = out
	} else {
		p.cache.full = out
	}
	return out
}

// Variant is one rendition of a live stream as playback serves it.
type Variant struct {
	// Name is the quality name players show ("720p30", "audio_only").
	// The passthrough rendition's is the ladder's guess from the input
	// until its packager has measured the frame rate.
	Name string
	// Source marks the passthrough rendition.
	Source bool
	// Path is the URL path element of the rendition: "source" for the
	// passthrough, else the name.
	Path     string
	Packager *Packager
	// Width and Height of the video (0 for audio-only).
	Width, Height int
	AudioOnly     bool
	// OnRequest variants are listed only when the viewer asks for them
	// (?allow_audio_only=true on BASIC and STANDARD channels).
	OnRequest bool
	// Bandwidth is the nominal bits/s and FrameRate the nominal frame rate,
	// advertised until the packager has measured them.
	Bandwidth int
	FrameRate float64
}

// Rendition is one entry of a multivariant playlist.
type Rendition struct {
	Name string // IVS-style, e.g. "360p30" (see RenditionName)
	URI  string // media playlist URI, relative to the multivariant playlist
	Info RenditionInfo
	// AudioOnly renditions are never auto-selected: players only switch
	// to them when asked to.
	AudioOnly bool
}

// RenditionName names a rendition as IVS does: height, "p", frame rate.
func RenditionName(height, fps int) string {
	return strconv.Itoa(height) + "p" + strconv.Itoa(fps)
}

// fallbackBandwidth is advertised before a rendition has a measured
// segment; BANDWIDTH is mandatory and players only use it to pick a start.
const fallbackBandwidth = 1_000_000

// captionsGroup is the CLOSED-CAPTIONS group every video variant names:
// CEA-608 field 1 (CC1) in the video's SEI, the one caption channel IVS
// players show.
const captionsGroup = "CC"

// MultivariantPlaylist lists renditions in the order given. Each variant
// also gets an EXT-X-MEDIA video group named after the rendition, the way
// IVS spells it: that is where the IVS player and hls.js read quality names.
// Video variants declare the CC1 caption channel: an encoder may start
// sending captions at any time, and players only show what arrives.
func MultivariantPlaylist(renditions []Rendition) []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	if slices.ContainsFunc(renditions, func(r Rendition) bool { return !r.AudioOnly }) {
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"%s\",NAME=\"English\",LANGUAGE=\"en\",INSTREAM-ID=\"CC1\",AUTOSELECT=YES,DEFAULT=NO\n", captionsGroup)
	}
	for i, r := range renditions {
		name := strings.ReplaceAll(r.Name, "\"", "")
		if name != "" {
			def, auto := "NO", "YES"
			if i == 0 {
				def = "YES"
			}
			if r.AudioOnly {
				def, auto = "NO", "NO"
			}
			fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"%s\",NAME=\"%s\",AUTOSELECT=%s,DEFAULT=%s\n", name, name, auto, def)
		}
		bw, avg := r.Info.Bandwidth, r.Info.AverageBandwidth
		if bw <= 0 {
			bw = fallbackBandwidth
		}
		if avg <= 0 || avg > bw {
			avg = bw
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d", bw, avg)
		if r.Info.Codecs != "" {
			fmt.Fprintf(&b, ",CODECS=\"%s\"", r.Info.Codecs)
		}
		if r.Info.Width > 0 && r.Info.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", r.Info.Width, r.Info.Height)
		}
		if r.Info.FrameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", math.Round(r.Info.FrameRate*1000)/1000)
		}
		if name != "" {
			fmt.Fprintf(&b, ",VIDEO=\"%s\"", name)
		}
		if !r.AudioOnly {
			fmt.Fprintf(&b, ",CLOSED-CAPTIONS=\"%s\"", captionsGroup)
		}
		b.WriteString("\n" + r.URI + "\n")
	}
	return b.Bytes()
}
