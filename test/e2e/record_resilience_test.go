package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
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

// TestRecordSurvivesStoreOutage stops the S3 server for 30 s in the middle
// of a 45 s stream: the recorder keeps spooling and retries its uploads,
// and once the store is back the recording is complete — every segment,
// back to back, for the whole 45 s — and ends normally.
func TestRecordSurvivesStoreOutage(t *testing.T) {
	t.Parallel()
	ffmpegPath(t)
	const seconds = 45
	hook := newEventReceiver(t)
	cfg := "event-sinks:\n" + hook.sinkYAML("hook", `{"detail-type": ["IVS Recording State Change"]}`)
	s3 := s3test.Start(t)
	args := []string{"--s3-endpoint", s3.Endpoint, "--s3-region", s3.Region, "--s3-access-key-id", s3.AccessKeyID}
	cfg += "s3-secret-access-key: " + s3.SecretAccessKey + "\n"
	store, err := blob.NewS3(blob.S3Config{Endpoint: s3.Endpoint, Region: s3.Region,
		AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey})
	must(t, err, "S3 client")
	const bucket = "openivs-rec-outage"
	must(t, store.CreateBucket(context.Background(), bucket), "create bucket")

	srv := startServer(t, serverOpts{Config: cfg, Args: args})
	c := ivsClient(t, srv)
	rc, err := c.CreateRecordingConfiguration(ctx(t), &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}},
		// Every 8 s over 45 s: the 5–7 thumbnails checkRecording wants.
		ThumbnailConfiguration: &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeInterval,
			TargetIntervalSeconds: aws.Int64(8), Storage: []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageSequential, types.ThumbnailConfigurationStorageLatest}},
	})
	must(t, err, "CreateRecordingConfiguration")
	waitRecordingActive(t, c, rc.RecordingConfiguration.Arn)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, RecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	arn := aws.ToString(ch.Channel.Arn)

	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: seconds})
	began := time.Now()
	waitLive(t, c, ch.Channel.Arn, enc)
	start := hook.wait(t, arn, 15*time.Second, "Recording Start")
	checkRecordingEvent(t, start, arn, bucket)
	prefix, _ := start.Detail["recording_s3_key_prefix"].(string)

	// The store goes away 8 s in, before the first 10 s file closes, and
	// stays away for 30 s: three files close meanwhile.
	time.Sleep(time.Until(began.Add(8 * time.Second)))
	s3.Stop()
	t.Logf("S3 stopped %.1f s into the stream", time.Since(began).Seconds())
	time.Sleep(30 * time.Second)
	spooled := spoolFiles(t, filepath.Join(srv.DataDir, "spool", "recordings"))
	s3.Restart(t)
	t.Logf("S3 back %.1f s into the stream; the spool held %v", time.Since(began).Seconds(), spooled)
	if !slices.ContainsFunc(spooled, func(f string) bool { return strings.HasSuffix(f, "/1.ts") }) {
		t.Errorf("the spool did not hold the files that closed during the outage: %v", spooled)
	}

	if !enc.waitExit(30 * time.Second) {
		t.Fatal("the 45 s encode did not finish")
	}
	end := hook.wait(t, arn, 45*time.Second, "Recording Start", "Recording End")
	checkRecordingEnd(t, end, arn, bucket, prefix, "Recording End", seconds-1, seconds+1)
	if !strings.Contains(srv.Stderr(), "recording upload failed; retrying") {
		t.Error(`no "recording upload failed; retrying" in the server log: the outage did not hit the uploads`)
	}
	checkRecording(t, "outage", store, bucket, prefix, arn, seconds)
	rec := downloadRecording(t, store, bucket, prefix)
	checkContinuous(t, rec, "RECORDING_ENDED")
	spoolEmpty(t, filepath.Join(srv.DataDir, "spool", "recordings"))
}

// TestRecordSurvivesKill kills the server (SIGKILL) 25 s into a stream
// recorded to local disk: the restarted server uploads what was spooled,
// closes the recording with RECORDING_ENDED_WITH_FAILURE and sends
// Recording End Failure for the same prefix; the recording plays for as
// long as the stream ran, and the spool is empty afterwards. 25 s is in
// the middle of the third 10 s file: the kill leaves an open media file
// in the spool, not only closed ones.
func TestRecordSurvivesKill(t *testing.T) {
	t.Parallel()
	ffmpegPath(t)
	hook := newEventReceiver(t)
	// The same file for both runs: the same webhook.
	cfg := "event-sinks:\n" + hook.sinkYAML("hook", `{"detail-type": ["IVS Recording State Change"]}`)
	dataDir := t.TempDir()
	store := blob.NewLocal(filepath.Join(dataDir, "recordings"))
	const bucket = "openivs-rec-kill"
	srv := startServer(t, serverOpts{Config: cfg, DataDir: dataDir})
	c := ivsClient(t, srv)
	rc, err := c.CreateRecordingConfiguration(ctx(t), &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}},
		ThumbnailConfiguration: &types.ThumbnailConfiguration{RecordingMode: types.RecordingModeInterval,
			TargetIntervalSeconds: aws.Int64(5), Storage: []types.ThumbnailConfigurationStorage{types.ThumbnailConfigurationStorageSequential}},
	})
	must(t, err, "CreateRecordingConfiguration")
	waitRecordingActive(t, c, rc.RecordingConfiguration.Arn)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, RecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	arn := aws.ToString(ch.Channel.Arn)

	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "640x360", bitrate: "800k", seconds: 40})
	live := waitLive(t, c, ch.Channel.Arn, enc)
	liveAt := time.Now()
	start := hook.wait(t, arn, 15*time.Second, "Recording Start")
	checkRecordingEvent(t, start, arn, bucket)
	prefix, _ := start.Detail["recording_s3_key_prefix"].(string)

	time.Sleep(time.Until(liveAt.Add(25 * time.Second)))
	srv.Kill()
	streamed := time.Since(liveAt).Seconds()
	_ = enc.cmd.Process.Kill()
	spoolDir := filepath.Join(dataDir, "spool", "recordings")
	spooled := spoolFiles(t, spoolDir)
	t.Logf("killed %.1f s into the stream; the spool holds %v", streamed, spooled)
	if !slices.ContainsFunc(spooled, func(f string) bool { return strings.HasSuffix(f, ".ts") }) {
		t.Errorf("no media file left in the spool by the kill (%v): the restart has nothing to recover", spooled)
	}

	restarted := startServer(t, serverOpts{Config: cfg, DataDir: dataDir})
	c2 := ivsClient(t, restarted)
	end := hook.wait(t, arn, 30*time.Second, "Recording Start", "Recording End Failure")
	checkRecordingEnd(t, end, arn, bucket, prefix, "Recording End Failure", 15, streamed+1)
	eq(t, "Recording End Failure reason", end.Detail["recording_status_reason"], any("InternalServerErrorException"))
	eq(t, "Recording End Failure session", end.Detail["recording_session_id"], start.Detail["recording_session_id"])
	eq(t, "Recording End Failure stream", end.Detail["stream_id"], any(aws.ToString(live.StreamId)))
	if evs := names(hook.of(arn)); slices.Contains(evs, "Recording End") {
		t.Errorf("a killed recording ended normally: %v", evs)
	}

	rec := downloadRecording(t, store, bucket, prefix)
	eq(t, "started status", rec.started.RecordingStatus, "RECORDING_STARTED")
	eq(t, "ended status", rec.ended.RecordingStatus, "RECORDING_ENDED_WITH_FAILURE")
	if rec.ended.RecordingStatusMessage == "" {
		t.Error("recording_ended.json has no recording_status_message")
	}
	eq(t, "ended channel_arn", rec.ended.ChannelARN, arn)
	eq(t, "ended recording_started_at", rec.ended.RecordingStartedAt, rec.started.RecordingStartedAt)
	if _, err := time.Parse(time.RFC3339, rec.ended.RecordingEndedAt); err != nil {
		t.Errorf("recording_ended_at %q", rec.ended.RecordingEndedAt)
	}
	durMS := rec.ended.Media.HLS.DurationMS
	if durMS == nil || float64(*durMS) < 15000 || float64(*durMS) > (streamed+1)*1000 {
		t.Errorf("duration_ms %v, want 15 s to the %.1f s streamed", durMS, streamed)
	} else if ms, _ := end.Detail["recording_duration_ms"].(float64); int64(ms) != *durMS {
		t.Errorf("Recording End Failure recording_duration_ms %v, recording_ended.json duration_ms %d", ms, *durMS)
	}
	checkContinuous(t, rec, "RECORDING_ENDED_WITH_FAILURE")
	// Every playlist plays for what was recorded before the kill.
	want := 0.0
	if durMS != nil {
		want = float64(*durMS) / 1000
	}
	plays := []string{"media/hls/master.m3u8", "media/hls/byte-range-multivariant.m3u8"}
	for _, r := range rec.ended.Media.HLS.Renditions {
		plays = append(plays, "media/hls/"+r.Path+"/"+r.Playlist, "media/hls/"+r.Path+"/"+r.ByteRangePlaylist)
	}
	for _, f := range plays {
		if !rec.has[f] {
			t.Errorf("%s missing (have %v)", f, rec.keys)
			continue
		}
		if d := probeDuration(t, filepath.Join(rec.dir, filepath.FromSlash(f))); d < 15 || d < want-1 || d > want+1 {
			t.Errorf("%s plays %.2f s; %.2f s were recorded, %.1f s streamed", f, d, want, streamed)
		}
	}
	// Thumbnails every 5 s: those of the 25 s before the kill (the last
	// one's upload may have been cut short).
	var thumbs int
	for f := range rec.has {
		if strings.HasPrefix(f, "media/thumbnails/") && strings.HasSuffix(f, ".jpg") {
			thumbs++
		}
	}
	if thumbs < 4 {
		t.Errorf("%d thumbnails of %.1f s at a 5 s interval", thumbs, streamed)
	}

	spoolEmpty(t, spoolDir)
	// The stream session the kill cut short has ended too.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := c2.GetStreamSession(ctx(t), &ivs.GetStreamSessionInput{ChannelArn: ch.Channel.Arn, StreamId: live.StreamId})
		must(t, err, "GetStreamSession")
		if out.StreamSession.EndTime != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed stream's session has no endTime after the restart")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := c2.GetStream(ctx(t), &ivs.GetStreamInput{ChannelArn: ch.Channel.Arn}); err == nil {
		t.Error("the stream the kill left is still live after the restart")
	}
}

// TestRecordSurvivesOutageAndKill: the store goes down as soon as the
// recording starts, so nothing at all is uploaded, and the server is then
// killed. The restarted server finds the store still down and keeps the
// spool; once the store is back the recording is complete: both JSON
// files (recording_started.json too, which the killed run only had
// queued in memory), every segment, the playlists.
func TestRecordSurvivesOutageAndKill(t *testing.T) {
	t.Parallel()
	ffmpegPath(t)
	hook := newEventReceiver(t)
	cfg := "event-sinks:\n" + hook.sinkYAML("hook", `{"detail-type": ["IVS Recording State Change"]}`)
	s3 := s3test.Start(t)
	args := []string{"--s3-endpoint", s3.Endpoint, "--s3-region", s3.Region, "--s3-access-key-id", s3.AccessKeyID}
	cfg += "s3-secret-access-key: " + s3.SecretAccessKey + "\n"
	store, err := blob.NewS3(blob.S3Config{Endpoint: s3.Endpoint, Region: s3.Region,
		AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey})
	must(t, err, "S3 client")
	const bucket = "openivs-rec-outage-kill"
	must(t, store.CreateBucket(context.Background(), bucket), "create bucket")

	srv := startServer(t, serverOpts{Config: cfg, Args: args})
	c := ivsClient(t, srv)
	rc, err := c.CreateRecordingConfiguration(ctx(t), &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}},
	})
	must(t, err, "CreateRecordingConfiguration")
	waitRecordingActive(t, c, rc.RecordingConfiguration.Arn)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, RecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	arn := aws.ToString(ch.Channel.Arn)
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{})
	start := hook.wait(t, arn, 15*time.Second, "Recording Start")
	s3.Stop() // before the first segment: recording_started.json is not written yet
	began := time.Now()
	prefix, _ := start.Detail["recording_s3_key_prefix"].(string)

	time.Sleep(13 * time.Second)
	srv.Kill()
	streamed := time.Since(began).Seconds()
	_ = enc.cmd.Process.Kill()
	spoolDir := filepath.Join(srv.DataDir, "spool", "recordings")
	t.Logf("killed %.1f s after the store went down; the spool holds %v", streamed, spoolFiles(t, spoolDir))

	// Restarted while the store is still down: the recording waits in the
	// spool, and nothing claims it ended.
	restarted := startServer(t, serverOpts{Config: cfg, Args: args, DataDir: srv.DataDir})
	time.Sleep(3 * time.Second)
	if evs := names(hook.of(arn)); len(evs) != 1 {
		t.Errorf("events while the store is down: %v, want only Recording Start", evs)
	}
	if !slices.ContainsFunc(spoolFiles(t, spoolDir), func(f string) bool { return strings.HasSuffix(f, "/0.ts") }) {
		t.Errorf("the spool lost its media while the store was down: %v", spoolFiles(t, spoolDir))
	}
	s3.Restart(t)
	end := hook.wait(t, arn, 30*time.Second, "Recording Start", "Recording End Failure")
	checkRecordingEnd(t, end, arn, bucket, prefix, "Recording End Failure", 10, streamed+2)
	if !strings.Contains(restarted.Stderr(), "recording upload failed; retrying") {
		t.Error(`no "recording upload failed; retrying" in the restarted server's log: the recovery never met the outage`)
	}

	rec := downloadRecording(t, store, bucket, prefix)
	eq(t, "started status", rec.started.RecordingStatus, "RECORDING_STARTED")
	eq(t, "started channel_arn", rec.started.ChannelARN, arn)
	if len(rec.started.Media.HLS.Renditions) == 0 || rec.started.Media.HLS.Renditions[0].ResolutionWidth == 0 {
		t.Errorf("recording_started.json lacks its renditions: %+v", rec.started.Media.HLS)
	}
	checkContinuous(t, rec, "RECORDING_ENDED_WITH_FAILURE")
	for _, f := range []string{"media/hls/master.m3u8", "media/hls/byte-range-multivariant.m3u8"} {
		if !rec.has[f] {
			t.Errorf("%s missing (have %v)", f, rec.keys)
		} else if d := probeDuration(t, filepath.Join(rec.dir, filepath.FromSlash(f))); d < 10 {
			t.Errorf("%s plays %.2f s of the %.1f s streamed", f, d, streamed)
		}
	}
	spoolEmpty(t, spoolDir)
}

// checkRecordingEnd checks a Recording End or Recording End Failure: the
// detail fields IVS sends, the start's prefix, a duration in [minS, maxS]
// and the one stream.
func checkRecordingEnd(t *testing.T, e ivsEvent, arn, bucket, prefix, status string, minS, maxS float64) {
	t.Helper()
	eq(t, "detail-type", e.DetailType, "IVS Recording State Change")
	eq(t, "recording_status", e.name(), status)
	deepEq(t, "resources", e.Resources, []string{arn})
	var got []string
	for k := range e.Detail {
		got = append(got, k)
	}
	slices.Sort(got)
	deepEq(t, status+" detail fields", got, []string{"channel_name", "recording_duration_ms", "recording_s3_bucket_name",
		"recording_s3_key_prefix", "recording_session_id", "recording_session_stream_ids", "recording_status",
		"recording_status_reason", "stream_id"})
	eq(t, status+" bucket", e.Detail["recording_s3_bucket_name"], any(bucket))
	eq(t, status+" prefix (as at Recording Start)", e.Detail["recording_s3_key_prefix"], any(prefix))
	if ms, _ := e.Detail["recording_duration_ms"].(float64); ms < minS*1000 || ms > maxS*1000 {
		t.Errorf("%s recording_duration_ms %v, want %.1f–%.1f s", status, e.Detail["recording_duration_ms"], minS, maxS)
	}
	ids, _ := e.Detail["recording_session_stream_ids"].([]any)
	if len(ids) != 1 || ids[0] != e.Detail["stream_id"] {
		t.Errorf("recording_session_stream_ids %v, stream_id %v", ids, e.Detail["stream_id"])
	}
}

// downloadedRecording is a recording copied out of its bucket.
type downloadedRecording struct {
	dir            string          // local copy, laid out as under the prefix
	keys           []string        // relative to the prefix
	has            map[string]bool // keys as a set
	started, ended recordingJSON
}

func downloadRecording(t *testing.T, store blob.Store, bucket, prefix string) *downloadedRecording {
	t.Helper()
	keys, err := store.List(context.Background(), bucket, prefix+"/")
	must(t, err, "list recording")
	rec := &downloadedRecording{dir: t.TempDir(), has: map[string]bool{}}
	for _, k := range keys {
		r := strings.TrimPrefix(k, prefix+"/")
		rec.keys = append(rec.keys, r)
		rec.has[r] = true
		data, err := store.Get(context.Background(), bucket, k)
		must(t, err, "get "+k)
		p := filepath.Join(rec.dir, filepath.FromSlash(r))
		must(t, os.MkdirAll(filepath.Dir(p), 0o700), "mkdir")
		must(t, os.WriteFile(p, data, 0o600), "write")
	}
	for name, v := range map[string]*recordingJSON{"events/recording_started.json": &rec.started, "events/recording_ended.json": &rec.ended} {
		raw, err := os.ReadFile(filepath.Join(rec.dir, name))
		if err != nil {
			t.Fatalf("%s missing (have %v)", name, rec.keys)
		}
		must(t, json.Unmarshal(raw, v), name)
	}
	return rec
}

// checkContinuous checks that nothing is missing in any rendition's
// byte-range playlist: each segment starts where the ones before ended
// (EXT-X-PROGRAM-DATE-TIME against the EXTINFs), byte ranges follow one
// another from 0 in each file and lie inside it, there is no
// discontinuity, and the EXTINFs add up to duration_ms (within 1 s).
func checkContinuous(t *testing.T, rec *downloadedRecording, status string) {
	t.Helper()
	eq(t, "recording_ended.json status", rec.ended.RecordingStatus, status)
	if len(rec.ended.Media.HLS.Renditions) == 0 {
		t.Fatalf("recording_ended.json lists no renditions: %+v", rec.ended.Media.HLS)
	}
	for _, r := range rec.ended.Media.HLS.Renditions {
		rel := "media/hls/" + r.Path + "/" + r.ByteRangePlaylist
		raw, err := os.ReadFile(filepath.Join(rec.dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("%s: %v (have %v)", rel, err, rec.keys)
			continue
		}
		if !bytes.Contains(raw, []byte("#EXT-X-ENDLIST")) {
			t.Errorf("%s has no EXT-X-ENDLIST", rel)
		}
		if bytes.Contains(raw, []byte("#EXT-X-DISCONTINUITY")) {
			t.Errorf("%s has a discontinuity", rel)
		}
		type segment struct {
			pdt          time.Time
			dur          float64
			size, offset int64
			file         string
		}
		var segs []segment
		var cur segment
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
				cur.pdt, err = time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"))
				must(t, err, rel+" "+line)
			case strings.HasPrefix(line, "#EXTINF:"):
				cur.dur, err = strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
				must(t, err, rel+" "+line)
			case strings.HasPrefix(line, "#EXT-X-BYTERANGE:"):
				n, o, ok := strings.Cut(strings.TrimPrefix(line, "#EXT-X-BYTERANGE:"), "@")
				if !ok {
					t.Fatalf("%s: %q has no offset", rel, line)
				}
				cur.size, err = strconv.ParseInt(n, 10, 64)
				must(t, err, rel+" "+line)
				cur.offset, err = strconv.ParseInt(o, 10, 64)
				must(t, err, rel+" "+line)
			case line != "" && !strings.HasPrefix(line, "#"):
				cur.file = line
				if cur.pdt.IsZero() || cur.dur <= 0 || cur.size <= 0 {
					t.Fatalf("%s: segment %d (%s) lacks its date, duration or byte range", rel, len(segs), line)
				}
				segs = append(segs, cur)
				cur = segment{}
			}
		}
		if len(segs) == 0 {
			t.Errorf("%s lists no segments", rel)
			continue
		}
		// The dates are when each keyframe reached the server, so they
		// jitter: a stalled keyframe is stamped late and the next one is
		// on time again, and the first segment's frames arrive late, all
		// at once, while ffmpeg connects. Lost (or doubled) media instead
		// moves every later segment off the timeline the durations make.
		// So: where each segment says the stream began (its date minus the
		// durations before it) is, for all but isolated segments, the
		// same instant within 250 ms.
		const jitter = 250 * time.Millisecond
		var total float64
		began := make([]time.Time, len(segs))
		for i, s := range segs {
			began[i] = s.pdt.Add(-time.Duration(total * float64(time.Second)))
			total += s.dur
		}
		sorted := slices.Clone(began)
		slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
		median := sorted[len(sorted)/2]
		off := func(i int) time.Duration { return began[i].Sub(median) }
		worst := time.Duration(0)
		for i := range segs {
			if d := off(i); d.Abs() > worst.Abs() {
				worst = d
			}
		}
		for i := 0; i+1 < len(segs); i++ {
			if off(i).Abs() <= jitter || off(i+1).Abs() <= jitter {
				continue
			}
			// A run of segments off the timeline: the gap is where it
			// begins, or where it ends when it is the recording's start.
			at := i
			if i == 0 {
				for at < len(segs) && off(at).Abs() > jitter {
					at++
				}
			}
			var around []string
			for j := max(0, at-3); j < min(len(segs), at+3); j++ {
				around = append(around, fmt.Sprintf("#%d %s@%d %s %+v", j, segs[j].file, segs[j].offset,
					segs[j].pdt.Format(time.TimeOnly+".000"), off(j).Round(time.Millisecond)))
			}
			t.Errorf("%s: media missing or doubled before segment %d: the dates move off the durations' timeline there (segment, date, offset: %s)",
				rel, at, strings.Join(around, "; "))
			break
		}
		for i, s := range segs {
			want := int64(0)
			if i > 0 && segs[i-1].file == s.file {
				want = segs[i-1].offset + segs[i-1].size
			} else if i > 0 && slices.ContainsFunc(segs[:i], func(p segment) bool { return p.file == s.file }) {
				t.Errorf("%s: %s comes back after another file", rel, s.file)
			}
			if s.offset != want {
				t.Errorf("%s: segment %d in %s at byte %d, want %d", rel, i, s.file, s.offset, want)
			}
			if i == len(segs)-1 || segs[i+1].file != s.file {
				st, err := os.Stat(filepath.Join(rec.dir, "media", "hls", r.Path, s.file))
				if err != nil {
					t.Errorf("%s: %s is not in the bucket", rel, s.file)
				} else if st.Size() < s.offset+s.size {
					t.Errorf("%s: %s is %d bytes, the playlist reads to byte %d", rel, s.file, st.Size(), s.offset+s.size)
				}
			}
		}
		if dm := rec.ended.Media.HLS.DurationMS; dm == nil {
			t.Errorf("recording_ended.json has no duration_ms")
		} else if d := total - float64(*dm)/1000; d > 1 || d < -1 {
			t.Errorf("%s: EXTINFs add up to %.3f s, duration_ms is %d", rel, total, *dm)
		}
		last := segs[len(segs)-1]
		t.Logf("%s: %d segments, %.3f s, %s to %s; dates at most %v off the timeline",
			rel, len(segs), total, segs[0].pdt.Format(time.TimeOnly+".000"),
			last.pdt.Add(time.Duration(last.dur*float64(time.Second))).Format(time.TimeOnly+".000"), worst.Round(time.Millisecond))
	}
}

// spoolFiles lists the files under the recordings spool, relative to it.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the spool %s: %v", dir, err)
	}
	return out
}

// spoolEmpty checks that no recording is left in the spool.
func spoolEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("reading the spool: %v", err)
	}
	if len(entries) > 0 {
		t.Errorf("the spool %s still holds %v (files %v) after the recording was closed", dir, entries, spoolFiles(t, dir))
	}
}
