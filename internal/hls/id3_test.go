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
	var cues []string
	for _, pk := range pr.Packets {
		var at float64
		_, _ = fmt.Sscan(pk.PTSTime, &at)
		if pk.StreamIndex == 0 && videoStart < 0 {
			videoStart = at
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

// TestTimedID3InFMP4: each tag is an emsg box (ID3 scheme, version 1,
// 90 kHz presentation time on the video's clock) in front of the moof of
// the part it falls in, and nowhere else.
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
	var found []emsg
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
					if box[0] != 1 || binary.BigEndian.Uint32(box[4:]) != 90000 {
						t.Fatalf("emsg version %d timescale %d", box[0], binary.BigEndian.Uint32(box[4:]))
					}
					rest := box[24:]
					scheme, rest, _ := bytes.Cut(rest, []byte{0})
					_, rest, _ = bytes.Cut(rest, []byte{0})
					if string(scheme) != id3Scheme {
						t.Fatalf("scheme %q", scheme)
					}
					found = append(found, emsg{binary.BigEndian.Uint64(box[8:]), rest})
				}
				b = b[size:]
			}
		}
	}
	p.mu.Unlock()
	if len(found) != 2 {
		t.Fatalf("%d emsg boxes, want 2", len(found))
	}
	for i, at := range []float64{1.0, 2.5} {
		if want := uint64(to90k(time.Duration(at * float64(time.Second)))); found[i].time != want {
			t.Errorf("emsg %d at %d, want %d", i, found[i].time, want)
		}
		if want := testID3("cue " + string(rune('A'+i))); !bytes.Equal(found[i].data, want) {
			t.Errorf("emsg %d carries %q, want the tag %q", i, found[i].data, want)
		}
	}
}
