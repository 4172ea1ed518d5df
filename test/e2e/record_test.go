package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

// recordingJSON is the events/ file of a recording (spec 04 §3.7).
type recordingJSON struct {
	Version                string `json:"version"`
	ChannelARN             string `json:"channel_arn"`
	RecordingStartedAt     string `json:"recording_started_at"`
	RecordingEndedAt       string `json:"recording_ended_at"`
	RecordingStatus        string `json:"recording_status"`
	RecordingStatusMessage string `json:"recording_status_message"`
	Media                  struct {
		HLS struct {
			DurationMS        *int64 `json:"duration_ms"`
			Path              string `json:"path"`
			Playlist          string `json:"playlist"`
			ByteRangePlaylist string `json:"byte_range_playlist"`
			Renditions        []struct {
				Path              string `json:"path"`
				Playlist          string `json:"playlist"`
				ByteRangePlaylist string `json:"byte_range_playlist"`
				ResolutionHeight  int    `json:"resolution_height"`
				ResolutionWidth   int    `json:"resolution_width"`
			} `json:"renditions"`
		} `json:"hls"`
		Thumbnails *struct {
			Path             string `json:"path"`
			ResolutionHeight int    `json:"resolution_height"`
			ResolutionWidth  int    `json:"resolution_width"`
		} `json:"thumbnails"`
		LatestThumbnail *struct {
			Path             string `json:"path"`
			ResolutionHeight int    `json:"resolution_height"`
			ResolutionWidth  int    `json:"resolution_width"`
		} `json:"latest_thumbnail"`
	} `json:"media"`
}

// TestRecordToStorage records a 30 s ffmpeg stream on a BASIC and a
// STANDARD channel at once, to a real S3 server (Versity's gateway) and to
// the local-directory store, and checks what IVS users rely on: the
// Recording Start/End events, every object of the layout, the JSON files,
// ffprobe playing both the master and the byte-range playlists for the
// whole duration with every rendition, and thumbnails at the configured
// interval and size.
func TestRecordToStorage(t *testing.T) {
	t.Parallel()
	ffmpegPath(t)
	for _, dest := range []string{"s3", "local"} {
		t.Run(dest, func(t *testing.T) {
			hook := newEventReceiver(t)
			cfg := "event-sinks:\n" + hook.sinkYAML("hook", `{"detail-type": ["IVS Recording State Change"]}`)
			var args []string
			var store blob.Store
			bucket := "openivs-rec-" + dest
			srvDataDir := t.TempDir()
			if dest == "s3" {
				s3 := s3test.Start(t)
				args = []string{"--s3-endpoint", s3.Endpoint, "--s3-region", s3.Region, "--s3-access-key-id", s3.AccessKeyID}
				cfg += "s3-secret-access-key: " + s3.SecretAccessKey + "\n"
				client, err := blob.NewS3(blob.S3Config{Endpoint: s3.Endpoint, Region: s3.Region,
					AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey})
				must(t, err, "S3 client")
				must(t, client.CreateBucket(context.Background(), bucket), "create bucket")
				store = client
			} else {
				store = blob.NewLocal(filepath.Join(srvDataDir, "recordings"))
			}
			srv := startServer(t, serverOpts{Config: cfg, Args: args, DataDir: srvDataDir})
			c := ivsClient(t, srv)
			rc, err := c.CreateRecordingConfiguration(ctx(t), &ivs.CreateRecordingConfigurationInput{
				DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}},
				ThumbnailConfiguration: &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeInterval,
					TargetIntervalSeconds: aws.Int64(5), Resolution: types.ThumbnailConfigurationResolutionLowestResolution,
					Storage: []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageSequential, types.ThumbnailConfigurationStorageLatest}},
			})
			must(t, err, "CreateRecordingConfiguration")
			waitRecordingActive(t, c, rc.RecordingConfiguration.Arn)
			typs := []types.ChannelType{types.ChannelTypeBasicChannelType, types.ChannelTypeStandardChannelType}
			var channels []*ivs.CreateChannelOutput
			for _, typ := range typs {
				channels = append(channels, createChannel(t, c, &ivs.CreateChannelInput{Type: typ, RecordingConfigurationArn: rc.RecordingConfiguration.Arn}))
			}
			var encs []*encoder
			for _, ch := range channels {
				encs = append(encs, startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)),
					encodeOpts{size: "640x360", bitrate: "800k", seconds: 30}))
			}
			// Timed metadata sent while recording is in the recorded media.
			marker := "recorded-metadata-" + dest
			for i, ch := range channels {
				waitLive(t, c, ch.Channel.Arn, encs[i])
				waitEvent(t, c, ch.Channel.Arn, "Stream Start", 20*time.Second)
				_, err := c.PutMetadata(ctx(t), &ivs.PutMetadataInput{ChannelArn: ch.Channel.Arn, Metadata: aws.String(marker)})
				must(t, err, "PutMetadata")
			}
			if dest == "s3" {
				// A bucket that does not exist: the configuration fails its
				// check, and a stream on it goes live unrecorded with a
				// Recording Start Failure.
				missing, err := c.CreateRecordingConfiguration(ctx(t), &ivs.CreateRecordingConfigurationInput{
					DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String("openivs-no-such-bucket")}},
				})
				must(t, err, "CreateRecordingConfiguration (missing bucket)")
				waitRecordingState(t, c, missing.RecordingConfiguration.Arn, types.RecordingConfigurationStateCreateFailed)
				ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType,
					RecordingConfigurationArn: missing.RecordingConfiguration.Arn})
				e := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{seconds: 20})
				waitLive(t, c, ch.Channel.Arn, e)
				failure := hook.wait(t, aws.ToString(ch.Channel.Arn), 30*time.Second, "Recording Start Failure")
				checkRecordingEvent(t, failure, aws.ToString(ch.Channel.Arn), "openivs-no-such-bucket")
				eq(t, "start failure prefix", failure.Detail["recording_s3_key_prefix"], any(""))
				if r, _ := failure.Detail["recording_status_reason"].(string); r == "" {
					t.Error("Recording Start Failure without a recording_status_reason")
				}
				waitEvent(t, c, ch.Channel.Arn, "Stream Start", 20*time.Second) // the stream itself goes on
			}
			for _, e := range encs {
				select {
				case <-e.exitedOnce():
				case <-time.After(60 * time.Second):
					t.Fatal("the 30 s encode did not finish")
				}
			}
			ended := time.Now()
			for i, ch := range channels {
				typ := typs[i]
				arn := aws.ToString(ch.Channel.Arn)
				end := hook.wait(t, arn, 40*time.Second, "Recording Start", "Recording End")
				// Informational (docs/benchmarks.md): encoder gone → recording complete.
				t.Logf("%s %s: Recording End %v after the encoder finished", dest, typ, time.Since(ended).Round(10*time.Millisecond))
				start := hook.of(arn)[0]
				checkRecordingEvent(t, start, arn, bucket)
				checkRecordingEvent(t, end, arn, bucket)
				prefix := end.Detail["recording_s3_key_prefix"].(string)
				if start.Detail["recording_s3_key_prefix"] != prefix {
					t.Errorf("%s: start prefix %v, end prefix %v", typ, start.Detail["recording_s3_key_prefix"], prefix)
				}
				checkRecording(t, string(typ), store, bucket, prefix, arn, 30)
				checkRecordedMarker(t, string(typ), store, bucket, prefix, marker)
			}
		})
	}
}

// checkRecordedMarker finds a PutMetadata payload in the recorded media.
func checkRecordedMarker(t *testing.T, what string, store blob.Store, bucket, prefix, marker string) {
	t.Helper()
	keys, err := store.List(context.Background(), bucket, prefix+"/media/hls/")
	must(t, err, "list media")
	for _, k := range keys {
		if !strings.HasSuffix(k, ".ts") && !strings.HasSuffix(k, ".mp4") {
			continue
		}
		data, err := store.Get(context.Background(), bucket, k)
		must(t, err, "get "+k)
		if bytes.Contains(data, []byte(marker)) {
			return
		}
	}
	t.Errorf("%s: the timed metadata %q sent while recording is not in the recorded media", what, marker)
}

func waitRecordingState(t *testing.T, c *ivs.Client, arn *string, want types.RecordingConfigurationState) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		out, err := c.GetRecordingConfiguration(ctx(t), &ivs.GetRecordingConfigurationInput{Arn: arn})
		must(t, err, "GetRecordingConfiguration")
		if out.RecordingConfiguration.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording configuration %s, want %s", out.RecordingConfiguration.State, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitRecordingActive(t *testing.T, c *ivs.Client, arn *string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.GetRecordingConfiguration(ctx(t), &ivs.GetRecordingConfigurationInput{Arn: arn})
		must(t, err, "GetRecordingConfiguration")
		switch out.RecordingConfiguration.State {
		case types.RecordingConfigurationStateActive:
			return
		case types.RecordingConfigurationStateCreateFailed:
			t.Fatal("recording configuration CREATE_FAILED")
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording configuration still %s", out.RecordingConfiguration.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkRecordingEvent checks a Recording State Change's exact detail.
func checkRecordingEvent(t *testing.T, e ivsEvent, arn, bucket string) {
	t.Helper()
	eq(t, "detail-type", e.DetailType, "IVS Recording State Change")
	deepEq(t, "resources", e.Resources, []string{arn})
	want := []string{"channel_name", "recording_duration_ms", "recording_s3_bucket_name", "recording_s3_key_prefix",
		"recording_session_id", "recording_status", "recording_status_reason", "stream_id"}
	if e.name() == "Recording End" {
		want = append(want, "recording_session_stream_ids")
	}
	var got []string
	for k := range e.Detail {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	deepEq(t, e.name()+" detail fields", got, want)
	eq(t, e.name()+" bucket", e.Detail["recording_s3_bucket_name"], any(bucket))
	if id, _ := e.Detail["recording_session_id"].(string); len(id) != 16 {
		t.Errorf("%s: recording_session_id %q", e.name(), id)
	}
	if e.name() == "Recording End" {
		if ms, _ := e.Detail["recording_duration_ms"].(float64); ms < 28000 || ms > 32000 {
			t.Errorf("Recording End duration %v ms, want about 30000", e.Detail["recording_duration_ms"])
		}
		ids, _ := e.Detail["recording_session_stream_ids"].([]any)
		if len(ids) != 1 || ids[0] != e.Detail["stream_id"] {
			t.Errorf("recording_session_stream_ids %v, stream_id %v", ids, e.Detail["stream_id"])
		}
	}
}

// checkRecording downloads a recording and checks its layout and media.
func checkRecording(t *testing.T, what string, store blob.Store, bucket, prefix, arn string, seconds float64) {
	t.Helper()
	keys, err := store.List(context.Background(), bucket, prefix+"/")
	must(t, err, "list recording")
	dir := t.TempDir()
	rel := map[string]bool{}
	for _, k := range keys {
		r := strings.TrimPrefix(k, prefix+"/")
		rel[r] = true
		data, err := store.Get(context.Background(), bucket, k)
		must(t, err, "get "+k)
		p := filepath.Join(dir, filepath.FromSlash(r))
		must(t, os.MkdirAll(filepath.Dir(p), 0o700), "mkdir")
		must(t, os.WriteFile(p, data, 0o600), "write")
	}
	var started, ended recordingJSON
	for name, v := range map[string]*recordingJSON{"events/recording_started.json": &started, "events/recording_ended.json": &ended} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %s missing (have %v)", what, name, keys)
		}
		must(t, json.Unmarshal(raw, v), name)
	}
	eq(t, what+" started status", started.RecordingStatus, "RECORDING_STARTED")
	eq(t, what+" ended status", ended.RecordingStatus, "RECORDING_ENDED")
	for _, j := range []recordingJSON{started, ended} {
		eq(t, what+" version", j.Version, "v1")
		eq(t, what+" channel_arn", j.ChannelARN, arn)
		if _, err := time.Parse(time.RFC3339, j.RecordingStartedAt); err != nil {
			t.Errorf("%s recording_started_at %q", what, j.RecordingStartedAt)
		}
		eq(t, what+" hls path", j.Media.HLS.Path, "media/hls")
		eq(t, what+" playlist", j.Media.HLS.Playlist, "master.m3u8")
		eq(t, what+" byte-range playlist", j.Media.HLS.ByteRangePlaylist, "byte-range-multivariant.m3u8")
		if len(j.Media.HLS.Renditions) == 0 || j.Media.Thumbnails == nil || j.Media.LatestThumbnail == nil {
			t.Fatalf("%s: renditions or thumbnails missing in %+v", what, j.Media)
		}
	}
	if ended.Media.HLS.DurationMS == nil || float64(*ended.Media.HLS.DurationMS) < (seconds-1)*1000 || float64(*ended.Media.HLS.DurationMS) > (seconds+1)*1000 {
		t.Errorf("%s: duration_ms %v, want %v s ± 1", what, ended.Media.HLS.DurationMS, seconds)
	}
	if _, err := time.Parse(time.RFC3339, ended.RecordingEndedAt); err != nil {
		t.Errorf("%s recording_ended_at %q", what, ended.RecordingEndedAt)
	}
	for _, f := range []string{"media/hls/master.m3u8", "media/hls/byte-range-multivariant.m3u8"} {
		if !rel[f] {
			t.Errorf("%s: %s missing", what, f)
		}
	}
	var wantSizes []string
	for _, r := range ended.Media.HLS.Renditions {
		for _, f := range []string{r.Playlist, r.ByteRangePlaylist} {
			if !rel["media/hls/"+r.Path+"/"+f] {
				t.Errorf("%s: rendition %s lacks %s", what, r.Path, f)
			}
		}
		wantSizes = append(wantSizes, strconv.Itoa(r.ResolutionWidth)+"x"+strconv.Itoa(r.ResolutionHeight))
		// Each playlist plays on its own for the whole duration.
		for _, f := range []string{r.Playlist, r.ByteRangePlaylist} {
			d := probeDuration(t, filepath.Join(dir, "media", "hls", r.Path, f))
			if d < seconds-1 || d > seconds+1 {
				t.Errorf("%s: %s/%s plays %.2f s, want %v ± 1", what, r.Path, f, d, seconds)
			}
		}
	}
	for _, f := range []string{"master.m3u8", "byte-range-multivariant.m3u8"} {
		d := probeDuration(t, filepath.Join(dir, "media", "hls", f))
		if d < seconds-1 || d > seconds+1 {
			t.Errorf("%s: %s plays %.2f s, want %v ± 1", what, f, d, seconds)
		}
		sizes := probeSizes(t, filepath.Join(dir, "media", "hls", f))
		for _, w := range wantSizes {
			if !slices.Contains(sizes, w) {
				t.Errorf("%s: %s has video %v, lacks rendition %s", what, f, sizes, w)
			}
		}
	}
	// Thumbnails (LOWEST_RESOLUTION) are the size of the smallest rendition.
	smallest := ended.Media.HLS.Renditions[0]
	for _, r := range ended.Media.HLS.Renditions {
		if r.ResolutionHeight > 0 && r.ResolutionHeight < smallest.ResolutionHeight {
			smallest = r
		}
	}
	if th := ended.Media.Thumbnails; th.ResolutionWidth != smallest.ResolutionWidth || th.ResolutionHeight != smallest.ResolutionHeight {
		t.Errorf("%s: LOWEST_RESOLUTION thumbnails are %dx%d, the smallest rendition %dx%d", what,
			th.ResolutionWidth, th.ResolutionHeight, smallest.ResolutionWidth, smallest.ResolutionHeight)
	}
	// Thumbnails every 5 s of a 30 s stream, JPEGs of the announced size.
	var thumbs []string
	for r := range rel {
		if strings.HasPrefix(r, "media/thumbnails/") && strings.HasSuffix(r, ".jpg") {
			thumbs = append(thumbs, r)
		}
	}
	if n := len(thumbs); n < 5 || n > 7 {
		t.Errorf("%s: %d thumbnails over %v s at a 5 s interval: %v", what, n, seconds, thumbs)
	}
	for _, f := range append(thumbs, "media/latest_thumbnail/thumb.jpg") {
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			t.Errorf("%s: %s: %v", what, f, err)
			continue
		}
		img, err := jpeg.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("%s: %s is not a JPEG: %v", what, f, err)
			continue
		}
		if b := img.Bounds(); b.Dx() != ended.Media.Thumbnails.ResolutionWidth || b.Dy() != ended.Media.Thumbnails.ResolutionHeight {
			t.Errorf("%s: %s is %dx%d, the JSON says %dx%d", what, f, b.Dx(), b.Dy(),
				ended.Media.Thumbnails.ResolutionWidth, ended.Media.Thumbnails.ResolutionHeight)
		}
	}
}

func probeDuration(t *testing.T, file string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, out)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s said %q", file, out)
	}
	return d
}

// probeSizes lists the WxH of every video stream ffprobe finds.
func probeSizes(t *testing.T, file string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
		"-of", "csv=p=0:s=x", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, out)
	}
	return strings.Fields(string(out))
}

// TestRecordMergesReconnects: with recordingReconnectWindowSeconds, a
// stream that reconnects within the window continues the recording (one
// prefix, both stream ids, Recording End only once the window passed);
// a stream after the window starts a new recording.
func TestRecordMergesReconnects(t *testing.T) {
	t.Parallel()
	ffmpegPath(t)
	hook := newEventReceiver(t)
	srv := startServer(t, serverOpts{Config: "event-sinks:\n" + hook.sinkYAML("hook", "")})
	c := ivsClient(t, srv)
	rc, err := c.CreateRecordingConfiguration(ctx(t), &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration:        &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String("merge-test")}},
		RecordingReconnectWindowSeconds: 8,
		ThumbnailConfiguration:          &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeDisabled},
	})
	must(t, err, "CreateRecordingConfiguration")
	waitRecordingActive(t, c, rc.RecordingConfiguration.Arn)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, RecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	arn := aws.ToString(ch.Channel.Arn)
	stream := func() string {
		t.Helper()
		e := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{seconds: 6})
		st := waitLive(t, c, ch.Channel.Arn, e)
		<-e.exitedOnce()
		waitOffline(t, c, ch.Channel.Arn, 15*time.Second)
		return aws.ToString(st.StreamId)
	}
	first := stream()
	second := stream() // reconnects at once: within the window
	end := hook.wait(t, arn, 30*time.Second, "Recording Start", "Recording End")
	recs := hook.of(arn)
	var recNames []string
	for _, e := range recs {
		if e.DetailType == "IVS Recording State Change" {
			recNames = append(recNames, e.name())
		}
	}
	deepEq(t, "recording events of two merged streams", recNames, []string{"Recording Start", "Recording End"})
	ids, _ := end.Detail["recording_session_stream_ids"].([]any)
	deepEq(t, "recording_session_stream_ids", ids, []any{first, second})
	prefix := end.Detail["recording_s3_key_prefix"].(string)
	store := blob.NewLocal(filepath.Join(srv.DataDir, "recordings"))
	raw, err := store.Get(context.Background(), "merge-test", prefix+"/media/hls/"+"byte-range-multivariant.m3u8")
	must(t, err, "byte-range master")
	variant := ""
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasSuffix(l, ".m3u8") {
			variant = l
		}
	}
	br, err := store.Get(context.Background(), "merge-test", prefix+"/media/hls/"+variant)
	must(t, err, "byte-range playlist")
	if n := strings.Count(string(br), "#EXT-X-DISCONTINUITY"); n != 1 {
		t.Errorf("merged recording has %d discontinuities, want 1:\n%s", n, br)
	}
	if ms, _ := end.Detail["recording_duration_ms"].(float64); ms < 10000 || ms > 13000 {
		t.Errorf("merged duration %v ms, want the two 6 s streams", ms)
	}

	// After the window: a new recording, a new prefix.
	stream()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var prefixes []string
		for _, e := range hook.of(arn) {
			if e.name() == "Recording End" {
				prefixes = append(prefixes, e.Detail["recording_s3_key_prefix"].(string))
			}
		}
		if len(prefixes) == 2 {
			if prefixes[0] == prefixes[1] {
				t.Fatalf("a stream after the window went to the same prefix %s", prefixes[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording events %v", names(hook.of(arn)))
		}
		time.Sleep(200 * time.Millisecond)
	}
	hook.verified(t)
}
