package mediatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/openivs/openivs/internal/media"
)

// PopOn608 returns CEA-608 field-1 (CC1) byte pairs that show text as a
// pop-on caption on row 15: resume caption loading, erase the off-screen
// memory, place the cursor, the characters, end of caption (which shows it).
// Control codes are doubled, as broadcast encoders send them. Empty text
// erases the displayed caption instead (EDM).
func PopOn608(text string) []media.CCTriplet {
	var pairs [][2]byte
	ctl := func(a, b byte) { pairs = append(pairs, [2]byte{a, b}, [2]byte{a, b}) }
	if text == "" {
		ctl(0x14, 0x2c) // EDM
		return triplets608(pairs)
	}
	ctl(0x14, 0x20) // RCL
	ctl(0x14, 0x2e) // ENM
	ctl(0x14, 0x70) // PAC: row 15, column 0, white
	chars := []byte(text)
	for i := 0; i < len(chars); i += 2 {
		p := [2]byte{chars[i], 0}
		if i+1 < len(chars) {
			p[1] = chars[i+1]
		}
		pairs = append(pairs, p)
	}
	ctl(0x14, 0x2f) // EOC
	return triplets608(pairs)
}

// triplets608 wraps field-1 byte pairs as valid cc_data constructs.
func triplets608(pairs [][2]byte) []media.CCTriplet {
	out := make([]media.CCTriplet, len(pairs))
	for i, p := range pairs {
		out[i] = media.CCTriplet{0xfc, oddParity(p[0]), oddParity(p[1])}
	}
	return out
}

// oddParity sets bit 7 so the byte has odd parity, as 608 requires.
func oddParity(b byte) byte {
	b &= 0x7f
	ones := 0
	for v := b; v != 0; v >>= 1 {
		ones += int(v & 1)
	}
	if ones%2 == 0 {
		b |= 0x80
	}
	return b
}

// Caption is a caption to show from a presentation time on.
type Caption struct {
	At   time.Duration
	Text string
}

// AddCaptions inserts each caption's 608 pairs, as one A/53 caption SEI, in
// the video frame presented at or right after its time.
func (es Encoded) AddCaptions(t testing.TB, captions []Caption) {
	t.Helper()
	for _, c := range captions {
		var best *media.Frame
		for _, f := range es.Frames {
			if f.Track == 0 && f.PTS >= c.At && (best == nil || f.PTS < best.PTS) {
				best = f
			}
		}
		if best == nil {
			t.Fatalf("no video frame at %v for caption %q", c.At, c.Text)
		}
		best.NALUs = media.WithCaptions(best.NALUs, media.CaptionSEI(PopOn608(c.Text)))
	}
}

// WriteTS writes the stream as an MPEG-TS file, for a real encoder (ffmpeg
// with -c copy) to publish.
func (es Encoded) WriteTS(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	video := &mpegts.Track{Codec: &tscodecs.H264{}}
	var conf mpeg4audio.AudioSpecificConfig
	if err := conf.Unmarshal(es.Tracks[1].AudioConfig); err != nil {
		t.Fatal(err)
	}
	audio := &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: conf}}
	w := &mpegts.Writer{W: f, Tracks: []*mpegts.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	ts := func(d time.Duration) int64 { return int64(d/time.Millisecond)*90 + 90000 }
	for _, fr := range es.Frames {
		if fr.Track == 0 {
			err = w.WriteH264(video, ts(fr.PTS), ts(fr.DTS), fr.NALUs)
		} else {
			err = w.WriteMPEG4Audio(audio, ts(fr.PTS), fr.NALUs)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// markup is the styling ffmpeg's 608 decoder wraps text in (<font …>,
// {\an7} positioning).
var markup = regexp.MustCompile(`<[^>]*>|\{[^}]*\}`)

// DecodeCaptions decodes the CC1 captions of a video (a file or an HLS
// playlist URL) with ffmpeg's lavfi movie source, which exports the A/53
// captions of the decoded frames, and returns the caption texts in order.
func DecodeCaptions(t testing.TB, input string) []string {
	t.Helper()
	ffmpeg := NeedFFmpeg(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "captions.srt")
	// Inside a filter graph ':' and '\' separate options, so escape them.
	esc := strings.NewReplacer(`\`, `\\\\`, `:`, `\\:`, `'`, `\\\'`).Replace(input)
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "movie=filename="+esc+"[out0+subcc]",
		"-map", "0:s", "-c:s", "srt", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg caption decode of %s: %v\n%s", input, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// SRT: index line, timing line, text lines, blank line.
	var texts []string
	for _, block := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) >= 3 {
			texts = append(texts, markup.ReplaceAllString(strings.Join(lines[2:], " "), ""))
		}
	}
	return texts
}
