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

// renditionPath is where playback serves a rung: "source" for the
// passthrough, else the rung's name.
func renditionPath(r transcode.Rung) string {
	if r.Source {
		return "source"
	}
	return r.Name
}

// playlistPath is the rendition path of a media playlist URL
// (…/<stream>/<path>/playlist.m3u8).
func playlistPath(url string) string {
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url = url[:i]
	}
	parts := strings.Split(url, "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[len(parts)-2]
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

	// Each input class is encoded once, with a 1 s GOP, when a case first
	// needs it.
	dir := t.TempDir()
	sources := map[string]sourceFile{}

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
			src, ok := sources[tc.input.name]
			if !ok {
				src = encodeSource(t, dir, tc.input, 1, sourceSeconds)
				sources[tc.input.name] = src
			}
			want := expectedRenditions(string(tc.channelType), string(tc.preset), tc.input.input())
			ch := newTSChannel(t, c, tc.channelType, tc.preset)
			enc := startPusher(t, src.path, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)))
			defer stopPusher(t, c, ch.Channel.Arn, enc)
			waitLive(t, c, ch.Channel.Arn, enc)
			waitEvent(t, c, ch.Channel.Arn, "Stream Start", 30*time.Second)

			mvURL := playbackURL(srv, ch) + "?allow_audio_only=true"
			// The names players show must be right from the start, and
			// stay right once the renditions have been measured.
			entries := readMultivariant(t, mvURL)
			if got := entryNames(entries); !slices.Equal(got, rungNames(want)) {
				t.Errorf("at Stream Start, renditions %v, want %v (highest first)", got, rungNames(want))
			}
			// Wait for every rendition first, then read them all: they
			// run side by side, so this takes the time of the slowest.
			for _, e := range entries {
				waitCompleteSegments(t, e.URL, minSegments, 30*time.Second)
			}
			entries = readMultivariant(t, mvURL)
			if got := entryNames(entries); !slices.Equal(got, rungNames(want)) {
				t.Errorf("with %d segments, renditions %v, want %v (highest first)", minSegments, got, rungNames(want))
			}
			// Renditions are matched to rungs by their path, so a misnamed
			// one is still measured.
			byPath := map[string]transcode.Rung{}
			for _, r := range want {
				byPath[renditionPath(r)] = r
			}
			for _, e := range entries {
				path := playlistPath(e.URL)
				r, ok := byPath[path]
				if !ok {
					t.Errorf("rendition %q at %s is not in the ladder", e.Name, e.URL)
					continue
				}
				delete(byPath, path)
				segs := waitCompleteSegments(t, e.URL, minSegments, 5*time.Second)
				file := filepath.Join(t.TempDir(), path+".ts")
				downloadSegments(t, e.URL, segs, file)
				summary := checkRendition(t, probeFile(t, file), r, src)
				t.Logf("%-10s %d segments (msn %d–%d): %s", r.Name, len(segs), segs[0].MSN, segs[len(segs)-1].MSN, summary)
			}
			for _, r := range byPath {
				t.Errorf("rendition %s (path %s) is not listed", r.Name, renditionPath(r))
			}
			t.Logf("case took %v", time.Since(start).Round(100*time.Millisecond))
		})
	}
}

// segmentRecord is what a media playlist said about one complete segment.
type segmentRecord struct {
	PDT      time.Time
	PDTText  string
	Duration float64
}

// TestTranscodeKeyframeAlignment streams a STANDARD 1080p30 channel for a
// minute and checks that every video rendition cuts its segments at the
// same instants: a player switching renditions at a segment boundary must
// find the same media sequence number starting at the same time, with the
// same duration, in every rendition.
func TestTranscodeKeyframeAlignment(t *testing.T) {
	ffmpegPath(t)
	const (
		streamFor = 60 * time.Second
		gop       = 2 // seconds
		// A float formatting's worth: EXTINF has 5 decimals, PDT milliseconds.
		slack = time.Millisecond
	)
	src := encodeSource(t, t.TempDir(), input1080p30, gop, 10) // looped for the whole run
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := newTSChannel(t, c, types.ChannelTypeStandardChannelType, "")
	enc := startPusher(t, src.path, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)))
	defer stopPusher(t, c, ch.Channel.Arn, enc)
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 30*time.Second)
	started := time.Now()

	want := transcode.Ladder(transcode.TypeStandard, "", input1080p30.input())
	var wantPaths []string
	for _, r := range want {
		wantPaths = append(wantPaths, renditionPath(r))
	}
	var renditions []variantEntry // the video renditions, highest first
	var paths []string
	for _, e := range readMultivariant(t, playbackURL(srv, ch)) {
		if e.Name == transcode.AudioOnlyName {
			continue
		}
		renditions = append(renditions, e)
		paths = append(paths, playlistPath(e.URL))
	}
	if !slices.Equal(paths, wantPaths) {
		t.Fatalf("video renditions at %v, want %v", paths, wantPaths)
	}

	// Poll every playlist well within its window (6 segments of 2 s) and
	// keep what each says about every complete segment.
	seen := make([]map[uint64]segmentRecord, len(renditions))
	for i := range seen {
		seen[i] = map[uint64]segmentRecord{}
	}
	polls := 0
	for time.Since(started) < streamFor {
		for i, e := range renditions {
			body, err := httpBody(e.URL)
			if err != nil {
				t.Fatalf("%s after %v: %v", paths[i], time.Since(started).Round(time.Second), err)
			}
			segs, err := completeSegments(string(body))
			if err != nil {
				t.Fatalf("%s: %v\n%s", paths[i], err, body)
			}
			for _, s := range segs {
				rec := segmentRecord{PDT: s.PDT, PDTText: s.PDTText, Duration: s.Duration}
				if old, ok := seen[i][s.MSN]; !ok {
					seen[i][s.MSN] = rec
				} else if old != rec {
					t.Errorf("%s: segment %d changed from PDT %s, %.5f s to PDT %s, %.5f s",
						paths[i], s.MSN, old.PDTText, old.Duration, rec.PDTText, rec.Duration)
				}
			}
		}
		polls++
		time.Sleep(time.Second)
	}

	// The media sequence numbers every rendition has, and the holes: a
	// number some rendition lacks although it has later ones.
	var common []uint64
	lastOfAll := uint64(math.MaxUint64) // the newest number every rendition has reached
	for i := range seen {
		newest := uint64(0)
		for msn := range seen[i] {
			newest = max(newest, msn)
		}
		lastOfAll = min(lastOfAll, newest)
	}
	union := map[uint64]bool{}
	for i := range seen {
		for msn := range seen[i] {
			union[msn] = true
		}
	}
	var all []uint64
	for msn := range union {
		all = append(all, msn)
	}
	slices.Sort(all)
	for _, msn := range all {
		var missing []string
		for i := range seen {
			if _, ok := seen[i][msn]; !ok {
				missing = append(missing, paths[i])
			}
		}
		switch {
		case len(missing) == 0:
			common = append(common, msn)
		case msn <= lastOfAll:
			t.Errorf("segment %d is missing from %v though they have later segments", msn, missing)
		}
	}
	// A minute of 2 s GOPs: about 30 segments each.
	minCommon := int(streamFor/(gop*time.Second)) * 3 / 4
	if len(common) < minCommon {
		t.Errorf("only %d segments are complete in all renditions after %v (%d polls), want at least %d; per rendition: %v",
			len(common), streamFor, polls, minCommon, segmentCounts(paths, seen))
	}

	// Every common segment starts at the same PDT and lasts as long in
	// every rendition as in the first (the passthrough).
	diffs := boundaryDiffs(paths, seen, common, slack)
	if len(diffs) > 0 {
		shown := diffs[:min(len(diffs), 8)]
		t.Errorf("%d of %d common segments start or end at different instants across renditions (tolerance %v):\n%s",
			len(diffs), len(common), slack, strings.Join(shown, "\n"))
	}
	if len(common) > 0 {
		var total float64
		for _, msn := range common {
			total += seen[0][msn].Duration
		}
		t.Logf("%d renditions, %d common segments (msn %d–%d, mean %.3f s), %d polls over %v",
			len(seen), len(common), common[0], common[len(common)-1], total/float64(len(common)), polls, streamFor)
	}
}

// boundaryDiffs describes each of the common segments whose PDT or
// duration differs by more than slack in some rendition from the first.
func boundaryDiffs(paths []string, seen []map[uint64]segmentRecord, common []uint64, slack time.Duration) []string {
	var diffs []string
	for _, msn := range common {
		ref := seen[0][msn]
		differs := false
		for i := 1; i < len(seen); i++ {
			s := seen[i][msn]
			dDur := time.Duration(math.Abs(s.Duration-ref.Duration) * float64(time.Second))
			if s.PDT.Sub(ref.PDT).Abs() > slack || dDur > slack {
				differs = true
			}
		}
		if !differs {
			continue
		}
		var row strings.Builder
		fmt.Fprintf(&row, "  msn %d:", msn)
		for i := range seen {
			s := seen[i][msn]
			fmt.Fprintf(&row, "\n    %-8s PDT %s  EXTINF %.5f", paths[i], s.PDTText, s.Duration)
			if i > 0 {
				fmt.Fprintf(&row, "  (PDT %+.1f ms, EXTINF %+.5f s)",
					float64(s.PDT.Sub(ref.PDT))/float64(time.Millisecond), s.Duration-ref.Duration)
			}
		}
		diffs = append(diffs, row.String())
	}
	return diffs
}

func segmentCounts(paths []string, seen []map[uint64]segmentRecord) map[string]int {
	out := map[string]int{}
	for i, p := range paths {
		out[p] = len(seen[i])
	}
	return out
}

// logEvent is an event line of the server's JSON log (LogPublisher).
type logEvent struct {
	Msg        string         `json:"msg"`
	DetailType string         `json:"detail-type"`
	Resources  []string       `json:"resources"`
	Detail     map[string]any `json:"detail"`
}

// loggedEvents lists the events of a channel in a JSON server log.
func loggedEvents(log, channelARN string) []logEvent {
	var out []logEvent
	for _, line := range strings.Split(log, "\n") {
		var e logEvent
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil || e.Msg != "event" {
			continue
		}
		if slices.Contains(e.Resources, channelARN) {
			out = append(out, e)
		}
	}
	return out
}

// liveOrRefused waits until an encoder's channel is live (true) or the
// encoder is gone (false). The stream record exists from the moment the
// key is accepted, before the media is checked, so live means it is still
// there, with the encoder connected, a moment later.
func liveOrRefused(t *testing.T, c *ivs.Client, arn *string, e *encoder, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: arn}); err == nil {
			if e.waitExit(2 * time.Second) {
				return false
			}
			if _, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: arn}); err == nil {
				return true
			}
			continue
		}
		if e.waitExit(200 * time.Millisecond) {
			return false
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel neither live nor refused within %v; ffmpeg said:\n%s", within, e.out.String())
		}
	}
}

// TestTranscodeCapacity runs a node allowing one transcode: a second
// transcoded stream is refused with IVS's Stream Failure, a BASIC stream
// (not transcoded) is not, the slot comes back when the first stream ends,
// and no ffmpeg outlives its stream.
func TestTranscodeCapacity(t *testing.T) {
	ffmpegPath(t)
	hook := newEventReceiver(t)
	srv := startServer(t, serverOpts{Args: []string{"--max-transcodes", "1", "--log-format", "json"},
		Config: "event-sinks:\n" + hook.sinkYAML("hook", "")})
	c := ivsClient(t, srv)
	first := newTSChannel(t, c, types.ChannelTypeStandardChannelType, "")
	second := newTSChannel(t, c, types.ChannelTypeStandardChannelType, "")
	basic := newTSChannel(t, c, types.ChannelTypeBasicChannelType, "")
	key := func(ch *ivs.CreateChannelOutput) string { return aws.ToString(ch.StreamKey.Value) }

	// The first STANDARD stream takes the only slot.
	enc1 := startEncoder(t, rtmpsURL(srv, key(first)), encodeOpts{size: "640x360", bitrate: "800k"})
	waitLive(t, c, first.Channel.Arn, enc1)
	waitEvent(t, c, first.Channel.Arn, "Stream Start", 30*time.Second)
	if procs := srv.ChildProcesses(t, "ffmpeg"); len(procs) != 1 {
		t.Errorf("ffmpeg children with one transcoded stream: %+v, want one", procs)
	}

	// The second is refused: a Stream Failure with IVS's reason.
	enc2 := startEncoder(t, rtmpsURL(srv, key(second)), encodeOpts{size: "640x360", bitrate: "800k"})
	if liveOrRefused(t, c, second.Channel.Arn, enc2, 15*time.Second) {
		t.Fatal("a second transcoded stream went live on a node allowing one transcode")
	}
	if got := eventNames(latestSession(t, c, second.Channel.Arn)); !slices.Contains(got, "Stream Failure") {
		t.Errorf("the refused stream's session events are %v, want a Stream Failure", got)
	}
	wantReason := `"reason":"` + transcode.CapacityExceededReason + `"`
	waitLog(t, srv, wantReason, 5*time.Second)
	for _, line := range strings.Split(srv.Stderr(), "\n") {
		if strings.Contains(line, wantReason) {
			t.Logf("logged: %s", line)
		}
	}
	var failure *logEvent
	for _, e := range loggedEvents(srv.Stderr(), aws.ToString(second.Channel.Arn)) {
		if e.Detail["event_name"] == "Stream Failure" {
			failure = &e
		}
	}
	switch {
	case failure == nil:
		t.Errorf("no Stream Failure event of %s in the log", aws.ToString(second.Channel.Arn))
	case failure.DetailType != "IVS Stream State Change" || failure.Detail["reason"] != transcode.CapacityExceededReason:
		t.Errorf("Stream Failure event: detail-type %q, detail %v; want IVS Stream State Change with reason %q",
			failure.DetailType, failure.Detail, transcode.CapacityExceededReason)
	}
	secondARN := aws.ToString(second.Channel.Arn)
	hooked := hook.wait(t, secondARN, 5*time.Second, "Session Created", "Stream Failure")
	checkEvent(t, hooked, secondARN)
	eq(t, "webhook Stream Failure reason", hooked.Detail["reason"], any(transcode.CapacityExceededReason))
	hook.verified(t)
	if _, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: first.Channel.Arn}); err != nil {
		t.Errorf("the first stream after the refusal: %v", err)
	}

	// BASIC does not transcode: it goes live meanwhile.
	encB := startEncoder(t, rtmpsURL(srv, key(basic)), encodeOpts{size: "640x360", bitrate: "800k"})
	waitLive(t, c, basic.Channel.Arn, encB)
	waitEvent(t, c, basic.Channel.Arn, "Stream Start", 15*time.Second)

	// The first stream ends: its slot comes back, so the second channel
	// goes live. Freeing the slot waits for ffmpeg to exit, which may
	// trail the stream's end a little; a refused broadcaster retries.
	_ = enc1.cmd.Process.Kill()
	waitOffline(t, c, first.Channel.Arn, 10*time.Second)
	var enc3 *encoder
	for attempt := 1; ; attempt++ {
		enc3 = startEncoder(t, rtmpsURL(srv, key(second)), encodeOpts{size: "640x360", bitrate: "800k"})
		if liveOrRefused(t, c, second.Channel.Arn, enc3, 15*time.Second) {
			if attempt > 1 {
				t.Logf("the second channel went live on attempt %d", attempt)
			}
			break
		}
		if attempt == 5 {
			t.Fatalf("the second channel is still refused after the first stream ended (%d attempts); its events: %v",
				attempt, eventNames(latestSession(t, c, second.Channel.Arn)))
		}
		time.Sleep(time.Second)
	}
	waitEvent(t, c, second.Channel.Arn, "Stream Start", 30*time.Second)
	if _, err := c.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: basic.Channel.Arn}); err != nil {
		t.Errorf("the BASIC stream: %v", err)
	}

	// Every stream ends: no ffmpeg is left, running or zombie.
	_ = enc3.cmd.Process.Kill()
	_ = encB.cmd.Process.Kill()
	waitOffline(t, c, second.Channel.Arn, 10*time.Second)
	waitOffline(t, c, basic.Channel.Arn, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := srv.ChildProcesses(t, "ffmpeg")
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ffmpeg children left 5 s after every stream ended (state Z is a zombie): %+v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
