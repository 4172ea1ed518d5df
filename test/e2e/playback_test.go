package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// playbackURL is the channel's playbackUrl reached on the test server.
func playbackURL(srv *server, ch *ivs.CreateChannelOutput) string {
	u := aws.ToString(ch.Channel.PlaybackUrl)
	return strings.Replace(u, "http://localhost:", "http://127.0.0.1:", 1)
}

func ffprobeStreams(t *testing.T, url string) []string {
	t.Helper()
	ffmpegPath(t) // the same install and skip rule
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_streams", "-of", "json", url).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v\n%s", url, err, stderr)
	}
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	var codecs []string
	for _, s := range probe.Streams {
		codecs = append(codecs, s.CodecName)
	}
	return codecs
}

func TestPlaybackHLS(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	for _, format := range []types.ContainerFormat{types.ContainerFormatTs, types.ContainerFormatFragmentedMP4} {
		ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, ContainerFormat: format})
		url := playbackURL(srv, ch)

		// Offline: 404 with a JSON body.
		resp, err := http.Get(url)
		must(t, err, "GET offline playback")
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s offline: %d %s", format, resp.StatusCode, resp.Header.Get("Content-Type"))
		}

		enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{})
		waitLive(t, c, ch.Channel.Arn, enc)
		waitEvent(t, c, ch.Channel.Arn, "Stream Start", 15*time.Second)

		resp, err = http.Get(url)
		must(t, err, "GET multivariant")
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(resp.Header.Get("Content-Type"), "mpegurl") {
			t.Fatalf("%s multivariant: %d %v", format, resp.StatusCode, resp.Header)
		}
		// ffmpeg's HLS reader knows no LL-HLS parts: wait for whole segments.
		waitSegments(t, url, 2, 15*time.Second)
		// TS also carries the timed-metadata (ID3) stream; fMP4 has it
		// in emsg boxes, which are no stream.
		codecs := ffprobeStreams(t, url)
		slices.Sort(codecs)
		want := "aac,h264"
		if format == types.ContainerFormatTs {
			want = "aac,h264,timed_id3"
		}
		if strings.Join(codecs, ",") != want {
			t.Errorf("%s: ffprobe found %v, want %s", format, codecs, want)
		}
		// ffmpeg decodes two seconds of the live stream, video and audio,
		// without a decoding error.
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		out, err := exec.CommandContext(ctx, ffmpegPath(t), "-hide_banner", "-nostdin", "-v", "error", "-xerror",
			"-i", url, "-t", "2", "-map", "0:v", "-map", "0:a", "-f", "null", "-").CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s: ffmpeg -i %s: %v\n%s", format, url, err, out)
		}
		_ = enc.cmd.Process.Kill()
		waitOffline(t, c, ch.Channel.Arn, 10*time.Second)
	}
}

func TestPlayerAndDemoPage(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{})
	id := aws.ToString(ch.Channel.Arn)[strings.LastIndex(aws.ToString(ch.Channel.Arn), "/")+1:]
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.Endpoint + path)
		must(t, err, "GET "+path)
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp, b.String()
	}
	resp, body := get("/player/openivs-player.min.js")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || !strings.Contains(body, "IVSPlayer") {
		t.Fatalf("player bundle: %d %s (%d bytes)", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, body = get("/play/" + id)
	if resp.StatusCode != 200 || !strings.Contains(body, aws.ToString(ch.Channel.PlaybackUrl)) {
		t.Fatalf("demo page: %d, playback URL present: %v", resp.StatusCode, strings.Contains(body, aws.ToString(ch.Channel.PlaybackUrl)))
	}
	if resp, _ := get("/play/nosuchchannel"); resp.StatusCode != 404 {
		t.Fatalf("demo page of an unknown channel: %d", resp.StatusCode)
	}
}

// waitSegments waits until the first rendition of the multivariant playlist
// at url lists n complete segments.
func waitSegments(t *testing.T, url string, n int, within time.Duration) {
	t.Helper()
	fetch := func(u string) string {
		resp, err := http.Get(u)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var child string
	for _, line := range strings.Split(fetch(url), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			child = url[:strings.LastIndex(url, "/")+1] + line
			break
		}
	}
	if child == "" {
		t.Fatalf("no rendition in %s", url)
	}
	deadline := time.Now().Add(within)
	for strings.Count(fetch(child), "#EXTINF") < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d segments in %s after %v", n, child, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
