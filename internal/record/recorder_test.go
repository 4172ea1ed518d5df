package record

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

type eventLog struct {
	mu  sync.Mutex
	evs []events.Event
}

func (l *eventLog) Publish(_ context.Context, e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
}

func (l *eventLog) statuses() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		out = append(out, e.Detail["recording_status"].(string))
	}
	return out
}

// recordEncoded packages an encode like a live rendition and records it.
func recordEncoded(t *testing.T, es mediatest.Encoded, container string, store blob.Store, spool string, thumbs ThumbnailSettings,
	pub events.Publisher) *Recorder {
	t.Helper()
	hub := media.NewHub(es.Tracks, media.HubOptions{})
	v := es.Tracks[0]
	rec := Start(Config{
		Store: store, SpoolDir: spool, Bucket: "recordings", Account: "123456789012", Region: "us-west-2",
		ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/AbCdEfGh1234", ChannelID: "AbCdEfGh1234",
		ChannelName: "rec", StreamID: "st-test", Container: container, Thumbnails: thumbs,
		MakeThumbnail: (&Thumbnailer{}).JPEG,
		ThumbnailSize: func(w, h int) (int, int) { return ThumbnailSize(thumbs.Resolution, w, h, nil) },
		Events:        pub, Logger: slog.New(slog.DiscardHandler),
	}, []Rendition{{Path: hls.RenditionName(v.Height, 30), Width: v.Width, Height: v.Height, FrameRate: 30}})
	p := hls.NewPackager(hub, hls.Options{Container: container, LowLatency: true, OnSegment: rec.Track(0).Segment,
		Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(context.Background())
		rec.Track(0).Done()
	}()
	for hub.Stats().Subscribers == 0 {
		time.Sleep(time.Millisecond)
	}
	for _, f := range es.Frames {
		hub.Write(f)
		if f.Track == 0 {
			time.Sleep(time.Millisecond) // let the packager keep up; the hub drops slow readers back to a keyframe
		}
	}
	hub.Close()
	<-done
	select {
	case <-rec.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the recording did not close")
	}
	return rec
}

func ffprobeDuration(t *testing.T, file string) float64 {
	t.Helper()
	out, err := exec.Command(mediatest.NeedFFmpeg(t, "ffprobe"), "-v", "error", "-show_entries", "format=duration",
		"-of", "default=nw=1:nk=1", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, out)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s said %q", file, out)
	}
	return d
}

// TestRecordingLayout records 24 s of real H.264/AAC in each container to
// the local-directory store and checks every object of IVS's layout, the
// JSON files, the events, and that ffprobe plays both playlist kinds end to
// end for the whole duration.
func TestRecordingLayout(t *testing.T) {
	mediatest.NeedFFmpeg(t, "ffmpeg")
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 320, Height: 180, Seconds: 24, GOP: 60})
	for _, container := range []string{"TS", containerFMP4} {
		t.Run(container, func(t *testing.T) {
			root := t.TempDir()
			store := blob.NewLocal(root)
			pub := &eventLog{}
			thumbs := ThumbnailSettings{Interval: 5 * time.Second, Sequential: true, Latest: true}
			rec := recordEncoded(t, es, container, store, filepath.Join(t.TempDir(), "spool"), thumbs, pub)
			prefix := rec.Prefix()
			if !regexp.MustCompile(`^ivs/v1/123456789012/AbCdEfGh1234/\d{4}/\d{1,2}/\d{1,2}/\d{1,2}/\d{1,2}/[A-Za-z0-9]{12}$`).MatchString(prefix) {
				t.Fatalf("prefix %q", prefix)
			}
			keys, err := store.List(context.Background(), "recordings", prefix+"/")
			if err != nil {
				t.Fatal(err)
			}
			rel := map[string]bool{}
			for _, k := range keys {
				rel[strings.TrimPrefix(k, prefix+"/")] = true
			}
			ext := ".ts"
			if container == containerFMP4 {
				ext = ".mp4"
			}
			want := []string{"events/recording_started.json", "events/recording_ended.json", "media/hls/master.m3u8",
				"media/hls/byte-range-multivariant.m3u8", "media/hls/180p30/playlist.m3u8", "media/hls/180p30/byte-range-variant.m3u8",
				"media/hls/180p30/0" + ext, "media/hls/180p30/1" + ext, "media/hls/180p30/2" + ext,
				"media/thumbnails/thumb0.jpg", "media/thumbnails/thumb4.jpg", "media/latest_thumbnail/thumb.jpg"}
			if container == containerFMP4 {
				want = append(want, "media/hls/180p30/init-0.mp4")
			}
			for _, w := range want {
				if !rel[w] {
					t.Errorf("missing %s; have %v", w, keys)
				}
			}
			local := filepath.Join(root, "recordings", filepath.FromSlash(prefix))
			for _, pl := range []string{"master.m3u8", "byte-range-multivariant.m3u8"} {
				d := ffprobeDuration(t, filepath.Join(local, "media", "hls", pl))
				if d < 23 || d > 25 {
					t.Errorf("%s plays %.2f s, want 24 ± 1", pl, d)
				}
			}
			br, _ := os.ReadFile(filepath.Join(local, "media", "hls", "180p30", "byte-range-variant.m3u8"))
			if n := strings.Count(string(br), "#EXT-X-BYTERANGE:"); n != 12 || !strings.Contains(string(br), "#EXT-X-ENDLIST") ||
				!strings.Contains(string(br), "#EXT-X-PROGRAM-DATE-TIME:") {
				t.Errorf("byte-range playlist has %d ranges (want 12 two-second GOPs):\n%s", n, br)
			}

			var ended metadataFile
			raw, _ := os.ReadFile(filepath.Join(local, "events", "recording_ended.json"))
			if err := json.Unmarshal(raw, &ended); err != nil {
				t.Fatal(err)
			}
			if ended.Version != "v1" || ended.RecordingStatus != statusEnded || ended.RecordingEndedAt == "" ||
				ended.Media.HLS.DurationMS == nil || *ended.Media.HLS.DurationMS < 23000 || *ended.Media.HLS.DurationMS > 25000 ||
				len(ended.Media.HLS.Renditions) != 1 || ended.Media.HLS.Renditions[0].ResolutionWidth != 320 ||
				ended.Media.Thumbnails == nil || ended.Media.LatestThumbnail == nil || ended.Media.Thumbnails.ResolutionWidth != 320 {
				t.Errorf("recording_ended.json:\n%s", raw)
			}
			if got := pub.statuses(); !slices.Equal(got, []string{statusStart, statusEnd}) {
				t.Errorf("events %v", got)
			}
			end := pub.evs[1].Detail
			if end["recording_s3_key_prefix"] != prefix || end["recording_s3_bucket_name"] != "recordings" ||
				len(end["recording_session_id"].(string)) != 16 || end["recording_duration_ms"].(int64) < 23000 ||
				!slices.Equal(end["recording_session_stream_ids"].([]string), []string{"st-test"}) {
				t.Errorf("Recording End detail %v", end)
			}
		})
	}
}

// A bucket the store cannot write to: Recording Start Failure, nothing
// spooled, and the stream (the packager) unaffected.
func TestRecordingStartFailure(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 320, Height: 180, Seconds: 2})
	pub := &eventLog{}
	spool := filepath.Join(t.TempDir(), "spool")
	recordEncoded(t, es, "TS", failingStore{}, spool, ThumbnailSettings{}, pub)
	if got := pub.statuses(); !slices.Equal(got, []string{statusStartFailure}) {
		t.Fatalf("events %v", got)
	}
	if d := pub.evs[0].Detail; d["recording_s3_key_prefix"] != "" || d["recording_status_reason"] == "" {
		t.Errorf("start failure detail %v", d)
	}
	if entries, _ := os.ReadDir(spool); len(entries) != 0 {
		t.Errorf("a failed recording spooled %d entries", len(entries))
	}
}

type failingStore struct{ blob.Store }

func (failingStore) CheckBucket(context.Context, string) error { return blob.ErrNoSuchBucket }

// Killed mid-recording: a new run finds the spool, uploads it and closes
// the recording as ended with a failure.
func TestRecoverInterruptedRecording(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 320, Height: 180, Seconds: 12, GOP: 60})
	root, spool := t.TempDir(), filepath.Join(t.TempDir(), "spool")
	store := blob.NewLocal(root)
	// An object store that is down: everything stays spooled.
	down := &downStore{Store: store}
	pub := &eventLog{}
	rec := Start(Config{Store: down, SpoolDir: spool, Bucket: "recordings", Account: "123456789012", Region: "us-west-2",
		ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/AbCdEfGh1234", ChannelID: "AbCdEfGh1234", StreamID: "st-x",
		Container: "TS", Events: pub, Logger: slog.New(slog.DiscardHandler),
		Thumbnails:    ThumbnailSettings{Interval: 4 * time.Second, Sequential: true, Latest: true},
		MakeThumbnail: (&Thumbnailer{}).JPEG},
		[]Rendition{{Path: "180p30", Width: 320, Height: 180}})
	hub := media.NewHub(es.Tracks, media.HubOptions{})
	p := hls.NewPackager(hub, hls.Options{LowLatency: true, OnSegment: rec.Track(0).Segment, Logger: slog.New(slog.DiscardHandler)})
	go func() { _ = p.Run(context.Background()) }()
	for hub.Stats().Subscribers == 0 {
		time.Sleep(time.Millisecond)
	}
	for _, f := range es.Frames {
		hub.Write(f)
		if f.Track == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// The "crash": the recorder never hears the end; wait until its
	// segments are spooled.
	deadline := time.Now().Add(10 * time.Second)
	for {
		idx, _ := readIndex(filepath.Join(spool, rec.m.RecordingID, "180p30", indexFile))
		if len(idx) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And its thumbnails (0, 4 and 8 s) are made and spooled.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		thumbs, _ := os.ReadDir(filepath.Join(spool, rec.m.RecordingID, thumbSpoolDir))
		if len(thumbs) >= 4 {
			break
		}
	}
	if keys, _ := store.List(context.Background(), "recordings", ""); len(keys) != 0 {
		t.Fatalf("uploads went through a down store: %v", keys)
	}

	recovered := &eventLog{}
	n, err := Recover(context.Background(), store, spool, recovered, slog.New(slog.DiscardHandler))
	if err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v", n, err)
	}
	local := filepath.Join(root, "recordings", filepath.FromSlash(rec.Prefix()))
	raw, err := os.ReadFile(filepath.Join(local, "events", "recording_ended.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ended metadataFile
	_ = json.Unmarshal(raw, &ended)
	if ended.RecordingStatus != statusEndedWithError || ended.RecordingStatusMessage == "" || *ended.Media.HLS.DurationMS < 9000 {
		t.Errorf("recovered recording_ended.json:\n%s", raw)
	}
	if d := ffprobeDuration(t, filepath.Join(local, "media", "hls", "master.m3u8")); d < 9 {
		t.Errorf("recovered recording plays %.2f s", d)
	}
	// Thumbnails made while the store was down were spooled and uploaded.
	for _, f := range []string{"media/thumbnails/thumb0.jpg", "media/thumbnails/thumb1.jpg", "media/latest_thumbnail/thumb.jpg"} {
		if _, err := os.Stat(filepath.Join(local, filepath.FromSlash(f))); err != nil {
			t.Errorf("recovered recording lacks %s: %v", f, err)
		}
	}
	if got := recovered.statuses(); !slices.Equal(got, []string{statusEndFailure}) {
		t.Errorf("recovery events %v", got)
	}
	if _, err := os.Stat(filepath.Join(spool, rec.m.RecordingID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the spool was not cleaned: %v", err)
	}
	hub.Close()
}

type downStore struct{ blob.Store }

func (downStore) Put(context.Context, string, string, io.ReadSeeker, blob.Object) error {
	return errors.New("connection refused")
}
