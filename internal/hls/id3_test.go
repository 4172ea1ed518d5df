package hls

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/media"
)

// testID3 is a minimal ID3v2.4 tag with one TXXX frame holding text.
func testID3(text string) []byte {
	body := append([]byte{3, 0}, text...) // UTF-8, empty description
	frame := append([]byte("TXXX"), syncsafe(len(body))...)
	frame = append(frame, 0, 0)
	frame = append(frame, body...)
	return append(append([]byte{'I', 'D', '3', 4, 0, 0}, syncsafe(len(frame))...), frame...)
}

func syncsafe(n int) []byte {
	return []byte{byte(n >> 21 & 0x7f), byte(n >> 14 & 0x7f), byte(n >> 7 & 0x7f), byte(n & 0x7f)}
}

// withID3 is the synthetic stream plus an ID3 track (ID 2) carrying a tag
// at each of the given seconds, in DTS order.
func withID3(t *testing.T, at ...float64) ([]media.Track, []*media.Frame) {
	tracks := append(testTracks(t), media.Track{ID: 2, Kind: media.Data, Codec: media.CodecID3})
	var out []*media.Frame
	next := 0
	for _, f := range (synth{seconds: 4, gop: 30}).frames(time.Now()) {
		for next < len(at) && f.Track == 0 && f.DTS >= time.Duration(at[next]*float64(time.Second)) {
			pts := time.Duration(at[next] * float64(time.Second))
			out = append(out, &media.Frame{Track: 2, PTS: pts, DTS: pts, Wall: f.Wall, Key: true,
				NALUs: [][]byte{testID3("cue " + string(rune('A'+next)))}})
			next++
		}
		out = append(out, f)
	}
	return tracks, out
}

// TestTimedID3InTS: the ID3 stream is declared in the PMT so that ffmpeg
// sees timed_id3, and every tag arrives once at its presentation time.
func TestTimedID3InTS(t *testing.T) {
	ffprobe := needFFmpeg(t, "ffprobe")
	tracks, frames := withID3(t, 1.0, 2.5)
	hub, p, done := started(t, Options{Container: ContainerTS, LowLatency: true}, tracks)
	for _, f := range frames {
		hub.Write(f)
	}
	hub.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The segments, concatenated: what a recorder or a plain client reads.
	var ts []byte
	p.mu.Lock()
	for _, s := range p.segs {
		for _, pt := range s.parts {
			ts = append(ts, pt.data...)
		}
	}
	p.mu.Unlock()
	file := filepath.Join(t.TempDir(), "out.ts")
	if err := os.WriteFile(file, ts, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=index,codec_name:packet=stream_index,pts_time,data",
		"-show_data", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var pr struct {
		Streams []struct {
			Index     int    `json:"index"`
			CodecName string `json:"codec_name"`
		} `json:"streams"`
		Packets []struct {
			StreamIndex int    `json:"stream_index"`
			PTSTime     string `json:"pts_time"`
			Data        string `json:"data"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &pr); err != nil {
		t.Fatal(err)
	}
	id3 := -1
	for _, s := range pr.Streams {
		if s.CodecName == "timed_id3" {
			id3 = s.Index
		}
	}
	if id3 < 0 {
		t.Fatalf("no timed_id3 stream: %+v", pr.Streams)
	}
	var videoStart float64 = -1
	for _, pk := range pr.Packets {
		var at float64
		_, _ = fmt.Sscan(pk.PTSTime, &at)
		if pk.StreamIndex == 0 && (videoStart < 0 || at < videoStart) {
			videoStart = at
		}
	}
	var cues, segmentTags []string
	for _, pk := range pr.Packets {
		var at float64
		_, _ = fmt.Sscan(pk.PTSTime, &at)
		if pk.StreamIndex == id3 && bytes.Contains(hexDump(pk.Data), []byte(media.SegmentMetadataDescription)) {
			// Every segment opens with IVS's segmentmetadata tag, dated at
			// its first frame, naming its offset in the stream.
			want := media.SegmentMetadataID3(time.Duration((at - videoStart) * float64(time.Second)))
			if got := hexDump(pk.Data); !bytes.HasSuffix(want, got) || len(got) < len(want)-5 {
				t.Errorf("segment tag %q, want %q", got, want)
			}
			segmentTags = append(segmentTags, fmt.Sprintf("%.2f", at-videoStart))
			continue
		}
		if pk.StreamIndex == id3 {
			// ffmpeg 5.1's demuxer hands timed_id3 packets over without
			// their first five bytes, as if a metadata AU cell header led
			// them (our PES carries the bare tag, as Apple's spec and
			// hls.js want, and its own muxer's output reads back the same
			// way); the rest must be the tag as written.
			want := testID3("cue " + string(rune('A'+len(cues))))
			if got := hexDump(pk.Data); !bytes.HasSuffix(want, got) || len(got) < len(want)-5 {
				t.Errorf("ID3 packet %d carries %q, want the tag %q", len(cues), got, want)
			}
			cues = append(cues, fmt.Sprintf("%.2f", at-videoStart))
		}
	}
	if strings.Join(cues, " ") != "1.00 2.50" {
		t.Fatalf("ID3 packets at %v s after the first video frame, want 1.00 and 2.50", cues)
	}
	p.mu.Lock()
	segments := len(p.segs)
	p.mu.Unlock()
	if len(segmentTags) != segments || segmentTags[0] != "0.00" {
		t.Fatalf("segmentmetadata tags at %v s, want one at the start of each of the %d segments", segmentTags, segments)
	}
}

// hexDump reads back the bytes of ffprobe's -show_data dump: lines of
// "offset: hhhh hhhh ...  ascii".
func hexDump(s string) []byte {
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		_, rest, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		hexPart, _, _ := strings.Cut(rest, "  ")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			return nil
		}
		out = append(out, b...)
	}
	return out
}

// TestTimedID3InFMP4: each tag is two emsg boxes in front of the moof of
// the part it falls in, and nowhere else: version 1 with AOM's ID3 scheme
// and the 90 kHz presentation time on the video's clock (hls.js, Safari),
// and version 0 with the IVS player's scheme and the time as a delta from
// the start of the part (moof) it precedes.
func TestTimedID3InFMP4(t *testing.T) {
	tracks, frames := withID3(t, 1.0, 2.5)
	hub, p, done := started(t, Options{Container: ContainerFMP4, LowLatency: true}, tracks)
	for _, f := range frames {
		hub.Write(f)
	}
	hub.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	type emsg struct {
		time uint64
		data []byte
	}
	var aom, ivs []emsg
	p.mu.Lock()
	for _, s := range p.segs {
		for _, pt := range s.parts {
			b := pt.data
			for len(b) >= 8 {
				size := int(binary.BigEndian.Uint32(b))
				if size < 8 || size > len(b) {
					t.Fatalf("bad box size %d", size)
				}
				if string(b[4:8]) == "emsg" {
					box := b[8:size]
					switch box[0] {
					case 1:
						if binary.BigEndian.Uint32(box[4:]) != 90000 {
							t.Fatalf("emsg v1 timescale %d", binary.BigEndian.Uint32(box[4:]))
						}
						rest := box[24:]
						scheme, rest, _ := bytes.Cut(rest, []byte{0})
						_, rest, _ = bytes.Cut(rest, []byte{0})
						if string(scheme) != id3Scheme {
							t.Fatalf("scheme %q", scheme)
						}
						aom = append(aom, emsg{binary.BigEndian.Uint64(box[8:]), rest})
					case 0:
						scheme, rest, _ := bytes.Cut(box[4:], []byte{0})
						_, rest, _ = bytes.Cut(rest, []byte{0})
						if string(scheme) != ivsID3Scheme || binary.BigEndian.Uint32(rest) != 90000 {
							t.Fatalf("emsg v0 scheme %q timescale %d", scheme, binary.BigEndian.Uint32(rest))
						}
						ivs = append(ivs, emsg{uint64(binary.BigEndian.Uint32(rest[4:])), rest[16:]})
					default:
						t.Fatalf("emsg version %d", box[0])
					}
				}
				b = b[size:]
			}
		}
	}
	p.mu.Unlock()
	if len(aom) != 2 || len(ivs) != 2 {
		t.Fatalf("%d AOM and %d IVS emsg boxes, want 2 of each", len(aom), len(ivs))
	}
	// 200 ms parts of 1 s segments: the tags fall 0 s into the part that
	// opens the second segment (1.0 s) and 0.1 s into the part from 2.4 s.
	for i, at := range []float64{1.0, 2.5} {
		want := testID3("cue " + string(rune('A'+i)))
		if w := uint64(to90k(time.Duration(at * float64(time.Second)))); aom[i].time != w {
			t.Errorf("AOM emsg %d at %d, want %d", i, aom[i].time, w)
		}
		if w := []uint64{0, 9000}[i]; ivs[i].time != w {
			t.Errorf("IVS emsg %d at delta %d, want %d", i, ivs[i].time, w)
		}
		if !bytes.Equal(aom[i].data, want) || !bytes.Equal(ivs[i].data, want) {
			t.Errorf("emsg %d carries %q / %q, want the tag %q", i, aom[i].data, ivs[i].data, want)
		}
	}
}
