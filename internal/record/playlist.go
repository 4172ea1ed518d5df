package record

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/openivs/openivs/internal/hls"
)

// fileTarget is how much media one recorded file holds: IVS records
// "10-second media files"; a file closes at the first segment boundary
// past it.
const fileTarget = 10 * time.Second

// mediaFile is one recorded media file and the segments it holds.
type mediaFile struct {
	n        int
	segments []indexEntry
}

func (f mediaFile) duration() time.Duration {
	var d time.Duration
	for _, s := range f.segments {
		d += s.duration()
	}
	return d
}

func (f mediaFile) size() int64 {
	var n int64
	for _, s := range f.segments {
		n += s.Size
	}
	return n
}

// groupFiles turns a rendition's index into its media files in order.
func groupFiles(index []indexEntry) []mediaFile {
	var out []mediaFile
	for _, e := range index {
		if len(out) == 0 || out[len(out)-1].n != e.File {
			out = append(out, mediaFile{n: e.File})
		}
		out[len(out)-1].segments = append(out[len(out)-1].segments, e)
	}
	return out
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// targetDuration is EXT-X-TARGETDURATION for entries of these durations.
func targetDuration(durs []time.Duration) int {
	t := 1
	for _, d := range durs {
		t = max(t, int(math.Round(d.Seconds())))
	}
	return t
}

// writeHeader starts a recorded media playlist: EVENT while recording,
// VOD once ended. fMP4 segments (EXT-X-MAP) need version 6 or more;
// TS needs only minVersion.
func writeHeader(b *bytes.Buffer, minVersion int, container string, durs []time.Duration, ended bool) {
	version := minVersion
	if container == containerFMP4 {
		version = 7
	}
	fmt.Fprintf(b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", version, targetDuration(durs))
	if ended {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
}

// variantPlaylistFor lists whole media files (playlist.m3u8); ended adds
// EXT-X-ENDLIST. Files listed are the closed ones (and all of them once
// ended).
func variantPlaylistFor(files []mediaFile, container string, ended bool) []byte {
	var durs []time.Duration
	for _, f := range files {
		durs = append(durs, f.duration())
	}
	var b bytes.Buffer
	writeHeader(&b, 3, container, durs, ended)
	init := -1
	for i, f := range files {
		if len(f.segments) == 0 {
			continue
		}
		first := f.segments[0]
		if first.Disc && i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if container == containerFMP4 && first.Init != init {
			init = first.Init
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", initName(init))
		}
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", first.PDT.UTC().Format("2006-01-02T15:04:05.000Z"))
		fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n", secs(f.duration()), mediaName(f.n, container))
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

// byteRangePlaylistFor lists every segment (one keyframe interval) as a
// byte range of its media file (byte-range-variant.m3u8, HLS version 4+).
func byteRangePlaylistFor(files []mediaFile, container string, ended bool) []byte {
	var durs []time.Duration
	for _, f := range files {
		for _, s := range f.segments {
			durs = append(durs, s.duration())
		}
	}
	var b bytes.Buffer
	writeHeader(&b, 4, container, durs, ended) // EXT-X-BYTERANGE needs version 4
	init := -1
	first := true
	for _, f := range files {
		name := mediaName(f.n, container)
		for _, s := range f.segments {
			if s.Disc && !first {
				b.WriteString("#EXT-X-DISCONTINUITY\n")
			}
			first = false
			if container == containerFMP4 && s.Init != init {
				init = s.Init
				fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", initName(init))
			}
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.PDT.UTC().Format("2006-01-02T15:04:05.000Z"))
			fmt.Fprintf(&b, "#EXTINF:%s,\n#EXT-X-BYTERANGE:%d@%d\n%s\n", secs(s.duration()), s.Size, s.Offset, name)
		}
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

// masterPlaylists renders master.m3u8 and byte-range-multivariant.m3u8.
// peak is each rendition's highest bits/s over a file (index-aligned with
// m.Renditions).
func masterPlaylists(m *meta, peak, avg []int) (master, byteRange []byte) {
	var std, br []hls.Rendition
	for i, r := range m.Renditions {
		info := hls.RenditionInfo{Bandwidth: peak[i], AverageBandwidth: avg[i], Codecs: r.Codecs, FrameRate: r.FrameRate}
		if !r.AudioOnly {
			info.Width, info.Height = r.Width, r.Height
		}
		std = append(std, hls.Rendition{Name: r.Path, URI: r.Path + "/" + variantPlaylist, Info: info, AudioOnly: r.AudioOnly})
		br = append(br, hls.Rendition{Name: r.Path, URI: r.Path + "/" + byteRangeVariant, Info: info, AudioOnly: r.AudioOnly})
	}
	return hls.MultivariantPlaylist(std), hls.MultivariantPlaylist(br)
}

// bandwidth measures a rendition's peak and average bits/s over its files.
func bandwidth(files []mediaFile) (peak, avg int) {
	var bytes int64
	var total time.Duration
	for _, f := range files {
		d := f.duration()
		if d <= 0 {
			continue
		}
		bytes += f.size()
		total += d
		peak = max(peak, int(float64(f.size()*8)/d.Seconds()))
	}
	if total > 0 {
		avg = int(float64(bytes*8) / total.Seconds())
	}
	return peak, avg
}
