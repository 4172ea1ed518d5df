package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/transcode"
)

// The transcoding tests push pre-encoded sources (ffmpeg -re -c copy, so
// the test's own encoder does not compete with the server's transcoder for
// the CPU), then read every rendition the way a player does and measure
// what it holds with ffprobe.

// sourceAudioKbps is the AAC bitrate of every pre-encoded source.
const sourceAudioKbps = 128

// Tolerances of the measurements: frame rate from packet timestamps,
// bitrates from packet sizes over a few seconds of segments.
const (
	fpsTolerance     = 0.10
	bitrateTolerance = 0.25
)

// inputClass is one kind of source: size, frame rate and video bitrate.
type inputClass struct {
	name          string
	width, height int
	fps           int
	videoKbps     int
}

var (
	input1080p60  = inputClass{"1080p60", 1920, 1080, 60, 5000}
	input1080p30  = inputClass{"1080p30", 1920, 1080, 30, 5000}
	input720p30   = inputClass{"720p30", 1280, 720, 30, 3000}
	input480p30   = inputClass{"480p30", 854, 480, 30, 1200}
	inputPortrait = inputClass{"portrait720x1280p30", 720, 1280, 30, 3000}
	input240p30   = inputClass{"240p30", 320, 240, 30, 400}
)

func (c inputClass) input() transcode.Input {
	return transcode.Input{Width: c.width, Height: c.height, FPS: float64(c.fps)}
}

// sourceFile is a pre-encoded source on disk and its measured video bitrate.
type sourceFile struct {
	path      string
	videoKbps float64
}

// encodeSource writes seconds of a moving test pattern with a tone as
// H.264 (CBR, one keyframe every gopSeconds, no scene cuts) and AAC-LC
// 128 kbps 48 kHz stereo into dir.
func encodeSource(t *testing.T, dir string, c inputClass, gopSeconds, seconds int) sourceFile {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("%s-gop%d.mp4", c.name, gopSeconds))
	gop := strconv.Itoa(c.fps * gopSeconds)
	kbps := strconv.Itoa(c.videoKbps) + "k"
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", c.width, c.height, c.fps),
		"-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000",
		"-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
		"-b:v", kbps, "-minrate", kbps, "-maxrate", kbps, "-bufsize", kbps, "-x264-params", "nal-hrd=cbr",
		"-c:a", "aac", "-b:a", strconv.Itoa(sourceAudioKbps) + "k", "-ar", "48000", "-ac", "2",
		path,
	}
	start := time.Now()
	if out, err := exec.Command(ffmpegPath(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("pre-encoding %s: %v\n%s", c.name, err, out)
	}
	p := probeFile(t, path)
	v := p.stream(t, "video")
	if v == nil {
		t.Fatalf("pre-encoded %s has no video", path)
	}
	m := p.measure(v.Index)
	t.Logf("pre-encoded %s (%ds, GOP %ds) in %v: %dx%d %.2f fps %.0f kbps",
		c.name, seconds, gopSeconds, time.Since(start).Round(10*time.Millisecond), v.Width, v.Height, m.fps, m.kbps)
	return sourceFile{path: path, videoKbps: m.kbps}
}

// startPusher publishes a file in real time (-re), copying its streams,
// looped until the test kills it.
func startPusher(t *testing.T, file, url string) *encoder {
	t.Helper()
	e := &encoder{out: &lockedBuffer{}, exited: make(chan error, 1)}
	e.cmd = exec.Command(ffmpegPath(t), "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-stream_loop", "-1", "-i", file, "-c", "copy", "-f", "flv", url)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.exited <- e.cmd.Wait() }()
	t.Cleanup(func() {
		_ = e.cmd.Process.Kill()
		<-e.exitedOnce()
	})
	return e
}

// stopPusher ends a pusher and waits until its channel is offline.
func stopPusher(t *testing.T, c *ivs.Client, arn *string, e *encoder) {
	t.Helper()
	_ = e.cmd.Process.Kill()
	<-e.exitedOnce()
	waitOffline(t, c, arn, 15*time.Second)
}

// httpBody GETs url and returns the body of a 200 answer.
func httpBody(url string) ([]byte, error) {
	c := http.Client{Timeout: 15 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// resolveURL resolves a playlist's relative reference against the
// playlist's URL.
func resolveURL(base, ref string) string {
	if strings.Contains(ref, "://") {
		return ref
	}
	if i := strings.IndexByte(base, '?'); i >= 0 {
		base = base[:i]
	}
	return base[:strings.LastIndex(base, "/")+1] + ref
}

// variantEntry is one rendition of a multivariant playlist.
type variantEntry struct {
	Name string // the NAME of its EXT-X-MEDIA
	URL  string // its media playlist, absolute
}

var mediaNameRe = regexp.MustCompile(`NAME="([^"]*)"`)

// readMultivariant lists the renditions of the multivariant playlist at url.
func readMultivariant(t *testing.T, url string) []variantEntry {
	t.Helper()
	body, err := httpBody(url)
	if err != nil {
		t.Fatalf("multivariant playlist: %v", err)
	}
	var out []variantEntry
	name := ""
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			if m := mediaNameRe.FindStringSubmatch(line); m != nil {
				name = m[1]
			}
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			out = append(out, variantEntry{Name: name, URL: resolveURL(url, line)})
			name = ""
		}
	}
	if len(out) == 0 {
		t.Fatalf("no rendition in the multivariant playlist %s:\n%s", url, body)
	}
	return out
}

// hlsSegment is one complete segment of a media playlist.
type hlsSegment struct {
	MSN      uint64
	PDT      time.Time
	PDTText  string
	Duration float64 // EXTINF, seconds
	URI      string
}

// completeSegments parses the complete segments of a media playlist: the
// ones with an EXTINF and a URI (the open segment only has parts). Every
// listed segment, open or complete, has one EXT-X-PROGRAM-DATE-TIME, which
// numbers them from EXT-X-MEDIA-SEQUENCE.
func completeSegments(playlist string) ([]hlsSegment, error) {
	var out []hlsSegment
	var seq uint64
	index := -1 // of the segment the last PDT opened
	var pdt time.Time
	var pdtText string
	dur := -1.0
	for _, line := range strings.Split(playlist, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			n, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			seq = n
		case strings.HasPrefix(line, "#EXT-X-SKIP:"):
			return nil, fmt.Errorf("unexpected delta update: %q", line)
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			pdtText = strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:")
			var err error
			if pdt, err = time.Parse(time.RFC3339Nano, pdtText); err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			index++
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			d, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			dur = d
		case line == "" || strings.HasPrefix(line, "#"):
		default: // a segment URI: the segment is complete
			if dur < 0 {
				return nil, fmt.Errorf("segment %q without #EXTINF", line)
			}
			if pdtText == "" {
				return nil, fmt.Errorf("segment %q without #EXT-X-PROGRAM-DATE-TIME", line)
			}
			out = append(out, hlsSegment{MSN: seq + uint64(index), PDT: pdt, PDTText: pdtText, Duration: dur, URI: line})
			dur, pdtText = -1, ""
		}
	}
	return out, nil
}

// waitCompleteSegments polls a media playlist until it lists n complete
// segments and returns them.
func waitCompleteSegments(t *testing.T, url string, n int, within time.Duration) []hlsSegment {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		body, err := httpBody(url)
		if err == nil {
			segs, perr := completeSegments(string(body))
			if perr != nil {
				t.Fatalf("media playlist %s: %v\n%s", url, perr, body)
			}
			if len(segs) >= n {
				return segs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d complete segments in %s after %v (last answer: %v)\n%s", n, url, within, err, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// probe is ffprobe's view of a file: its streams and every packet.
type probe struct {
	Streams []probeStream `json:"streams"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		Size        string `json:"size"`
		PTSTime     string `json:"pts_time"`
	} `json:"packets"`
}

type probeStream struct {
	Index      int    `json:"index"`
	CodecType  string `json:"codec_type"`
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

func probeFile(t *testing.T, path string) *probe {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, "ffprobe", "-v", "error", "-show_streams",
		"-show_entries", "packet=stream_index,size,pts_time", "-of", "json", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, stderr.String())
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return &p
}

// stream returns the only stream of a type, nil if there is none.
func (p *probe) stream(t *testing.T, codecType string) *probeStream {
	t.Helper()
	var found *probeStream
	for i := range p.Streams {
		if p.Streams[i].CodecType == codecType {
			if found != nil {
				t.Errorf("more than one %s stream: %+v", codecType, p.Streams)
			}
			found = &p.Streams[i]
		}
	}
	return found
}

// streamFigures is what the packets of one stream measure.
type streamFigures struct {
	packets int
	seconds float64 // packets × the mean packet spacing
	fps     float64 // packets per second (frames for video)
	kbps    float64 // payload bitrate
}

func (p *probe) measure(index int) streamFigures {
	var pts []float64
	bytes := 0
	for _, pk := range p.Packets {
		if pk.StreamIndex != index {
			continue
		}
		size, err1 := strconv.Atoi(pk.Size)
		ts, err2 := strconv.ParseFloat(pk.PTSTime, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		bytes += size
		pts = append(pts, ts)
	}
	f := streamFigures{packets: len(pts)}
	if len(pts) < 2 {
		return f
	}
	sort.Float64s(pts)
	span := pts[len(pts)-1] - pts[0]
	if span <= 0 {
		return f
	}
	f.fps = float64(len(pts)-1) / span
	f.seconds = float64(len(pts)) / f.fps
	f.kbps = float64(bytes) * 8 / f.seconds / 1000
	return f
}

// within reports whether got is within tol (a fraction) of want.
func within(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*want
}

// downloadSegments concatenates segments of a media playlist into one file.
func downloadSegments(t *testing.T, playlistURL string, segs []hlsSegment, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range segs {
		b, err := httpBody(resolveURL(playlistURL, s.URI))
		if err != nil {
			t.Fatalf("segment %d: %v", s.MSN, err)
		}
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
}

// expectedRenditions is the ladder as playback lists it with
// ?allow_audio_only=true: the transcode ladder, plus the source audio
// alone for the ladders without an audio-only rung (BASIC, STANDARD).
func expectedRenditions(channelType, preset string, in transcode.Input) []transcode.Rung {
	rungs := transcode.Ladder(channelType, preset, in)
	for _, r := range rungs {
		if r.AudioOnly {
			return rungs
		}
	}
	return append(rungs, transcode.Rung{Name: transcode.AudioOnlyName, AudioOnly: true})
}

func rungNames(rungs []transcode.Rung) []string {
	var out []string
	for _, r := range rungs {
		out = append(out, r.Name)
	}
	return out
}

func entryNames(entries []variantEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

// checkRendition measures one rendition's segments against its rung and
// reports every difference.
func checkRendition(t *testing.T, p *probe, r transcode.Rung, src sourceFile) string {
	t.Helper()
	var summary []string
	v, a := p.stream(t, "video"), p.stream(t, "audio")
	if r.AudioOnly {
		if v != nil {
			t.Errorf("%s: has a %s video stream, want audio only", r.Name, v.CodecName)
		}
	} else if v == nil {
		t.Errorf("%s: no video stream (streams %+v)", r.Name, p.Streams)
	} else {
		if v.CodecName != "h264" {
			t.Errorf("%s: video codec %s, want h264", r.Name, v.CodecName)
		}
		if v.Width != r.Width || v.Height != r.Height {
			t.Errorf("%s: video %dx%d, want %dx%d", r.Name, v.Width, v.Height, r.Width, r.Height)
		}
		m := p.measure(v.Index)
		if !within(m.fps, r.FPS, fpsTolerance) {
			t.Errorf("%s: %.2f fps (%d frames over %.2f s), want %.2f ±%.0f%%", r.Name, m.fps, m.packets, m.seconds, r.FPS, fpsTolerance*100)
		}
		wantKbps, what := float64(r.VideoKbps), "the rung's"
		if r.Source {
			wantKbps, what = src.videoKbps, "the source's"
		}
		if !within(m.kbps, wantKbps, bitrateTolerance) {
			t.Errorf("%s: video %.0f kbps over %.2f s, want %s %.0f kbps ±%.0f%%", r.Name, m.kbps, m.seconds, what, wantKbps, bitrateTolerance*100)
		}
		summary = append(summary, fmt.Sprintf("%dx%d %.2f fps %.0f kbps (want %.0f)", v.Width, v.Height, m.fps, m.kbps, wantKbps))
	}
	if a == nil {
		t.Errorf("%s: no audio stream (streams %+v)", r.Name, p.Streams)
		return strings.Join(summary, ", ")
	}
	if a.CodecName != "aac" {
		t.Errorf("%s: audio codec %s, want aac", r.Name, a.CodecName)
	}
	if a.Channels != 2 {
		t.Errorf("%s: %d audio channels, want 2", r.Name, a.Channels)
	}
	if a.SampleRate != "48000" {
		t.Errorf("%s: audio sample rate %s, want 48000", r.Name, a.SampleRate)
	}
	m := p.measure(a.Index)
	wantKbps, what := float64(r.AudioKbps), "the rung's"
	if r.AudioKbps == 0 {
		wantKbps, what = sourceAudioKbps, "the source's"
	}
	if !within(m.kbps, wantKbps, bitrateTolerance) {
		t.Errorf("%s: audio %.0f kbps over %.2f s, want %s %.0f kbps ±%.0f%%", r.Name, m.kbps, m.seconds, what, wantKbps, bitrateTolerance*100)
	}
	summary = append(summary, fmt.Sprintf("audio %s %s Hz %d ch %.0f kbps (want %.0f)", a.CodecName, a.SampleRate, a.Channels, m.kbps, wantKbps))
	return strings.Join(summary, ", ")
}

// newTSChannel creates a low-latency, MPEG-TS channel of a type and preset.
func newTSChannel(t *testing.T, c *ivs.Client, channelType types.ChannelType, preset types.TranscodePreset) *ivs.CreateChannelOutput {
	t.Helper()
	return createChannel(t, c, &ivs.CreateChannelInput{
		Type: channelType, Preset: preset,
		LatencyMode: types.ChannelLatencyModeLowLatency, ContainerFormat: types.ContainerFormatTs,
	})
}

// TestTranscodeLadders pushes each input class to channels of each type
// and preset and checks every rendition playback serves against the IVS
// ladder: names and order, size, frame rate, codecs and bitrates.
func TestTranscodeLadders(t *testing.T) {
	ffmpegPath(t)
	const (
		sourceSeconds = 8 // looped by the pusher
		minSegments   = 3
	)
	higher := types.TranscodePresetHigherBandwidthTranscodePreset
	constrained := types.TranscodePresetConstrainedBandwidthTranscodePreset
	cases := []struct {
		channelType types.ChannelType
		preset      types.TranscodePreset
		input       inputClass
	}{
		{types.ChannelTypeStandardChannelType, "", input1080p60},
		{types.ChannelTypeStandardChannelType, "", input1080p30},
		{types.ChannelTypeStandardChannelType, "", input720p30},
		{types.ChannelTypeStandardChannelType, "", input480p30},
		{types.ChannelTypeStandardChannelType, "", inputPortrait},
		{types.ChannelTypeStandardChannelType, "", input240p30},
		{types.ChannelTypeAdvancedHDChannelType, higher, input1080p60},
		{types.ChannelTypeAdvancedHDChannelType, higher, input480p30},
		{types.ChannelTypeAdvancedHDChannelType, constrained, input1080p30},
		{types.ChannelTypeAdvancedHDChannelType, constrained, inputPortrait},
		{types.ChannelTypeAdvancedSDChannelType, higher, input1080p30},
		{types.ChannelTypeAdvancedSDChannelType, constrained, input240p30},
		{types.ChannelTypeBasicChannelType, "", input720p30},
	}

	// Each input class is encoded once, with a 1 s GOP.
	dir := t.TempDir()
	sources := map[string]sourceFile{}
	for _, tc := range cases {
		if _, ok := sources[tc.input.name]; !ok {
			sources[tc.input.name] = encodeSource(t, dir, tc.input, 1, sourceSeconds)
		}
	}

	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	for _, tc := range cases {
		name := string(tc.channelType)
		if tc.preset != "" {
			name += "_" + strings.TrimSuffix(string(tc.preset), "_DELIVERY")
		}
		name += "/" + tc.input.name
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			src := sources[tc.input.name]
			want := expectedRenditions(string(tc.channelType), string(tc.preset), tc.input.input())
			ch := newTSChannel(t, c, tc.channelType, tc.preset)
			enc := startPusher(t, src.path, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)))
			defer stopPusher(t, c, ch.Channel.Arn, enc)
			waitLive(t, c, ch.Channel.Arn, enc)
			waitEvent(t, c, ch.Channel.Arn, "Stream Start", 30*time.Second)

			entries := readMultivariant(t, playbackURL(srv, ch)+"?allow_audio_only=true")
			if got := entryNames(entries); !slices.Equal(got, rungNames(want)) {
				t.Errorf("renditions %v, want %v (highest first)", got, rungNames(want))
			}
			rungs := map[string]transcode.Rung{}
			for _, r := range want {
				rungs[r.Name] = r
			}
			// Wait for every rendition first, then read them all: they
			// run side by side, so this takes the time of the slowest.
			for _, e := range entries {
				waitCompleteSegments(t, e.URL, minSegments, 30*time.Second)
			}
			for _, e := range entries {
				r, ok := rungs[e.Name]
				if !ok {
					continue // reported above
				}
				segs := waitCompleteSegments(t, e.URL, minSegments, 5*time.Second)
				file := filepath.Join(t.TempDir(), e.Name+".ts")
				downloadSegments(t, e.URL, segs, file)
				summary := checkRendition(t, probeFile(t, file), r, src)
				t.Logf("%-10s %d segments (msn %d–%d): %s", e.Name, len(segs), segs[0].MSN, segs[len(segs)-1].MSN, summary)
			}
			t.Logf("case took %v", time.Since(start).Round(100*time.Millisecond))
		})
	}
}
