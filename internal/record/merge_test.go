package record

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// feed packages an encode into one track of a recording and ends the track.
func feed(t *testing.T, es mediatest.Encoded, track *Track) {
	t.Helper()
	hub := media.NewHub(es.Tracks, media.HubOptions{})
	p := hls.NewPackager(hub, hls.Options{LowLatency: true, OnSegment: track.Segment, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(context.Background())
		track.Done()
	}()
	for hub.Stats().Subscribers == 0 {
		time.Sleep(time.Millisecond)
	}
	for _, f := range es.Frames {
		hub.Write(f)
		if f.Track == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	hub.Close()
	<-done
}

// A reconnect within the window, with the same media, continues the
// recording: one prefix, both stream ids, a discontinuity between them,
// Recording End once, after the window. A stream whose media differs, or
// one after the window, starts a new recording.
func TestReconnectMerge(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 320, Height: 180, Seconds: 6, GOP: 60})
	root := t.TempDir()
	store := blob.NewLocal(root)
	pub := &eventLog{}
	key := Media{Width: 320, Height: 180, FPS: 30, VideoCodec: "avc1.64000D", AudioCodec: "mp4a.40.2", Bitrate: 300000}
	rends := []Rendition{{Path: "180p30", Width: 320, Height: 180, FrameRate: 30}}
	rec := Start(Config{Store: store, SpoolDir: filepath.Join(t.TempDir(), "spool"), Bucket: "recordings",
		Account: "123456789012", Region: "us-west-2", ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/AbCdEfGh1234",
		ChannelID: "AbCdEfGh1234", StreamID: "st-one", Container: "TS", Events: pub, Logger: slog.New(slog.DiscardHandler),
		ReconnectWindow: 2 * time.Second, Media: key}, rends)
	feed(t, es, rec.Track(0))

	// Other media (another resolution) is refused; the same media merges.
	other := key
	other.Width, other.Height = 640, 360
	if _, ok := rec.Resume("st-other", other, rends); ok {
		t.Fatal("a reconnect with another resolution was merged")
	}
	faster := key
	faster.Bitrate = key.Bitrate * 2
	if _, ok := rec.Resume("st-fast", faster, rends); ok {
		t.Fatal("a reconnect at twice the bitrate was merged")
	}
	tracks, ok := rec.Resume("st-two", key, rends)
	if !ok {
		t.Fatal("a matching reconnect within the window was not merged")
	}
	feed(t, es, tracks[0])
	select {
	case <-rec.Done():
		t.Fatal("the recording closed before its reconnect window passed")
	case <-time.After(time.Second):
	}
	select {
	case <-rec.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the recording did not close after the window")
	}
	if _, ok := rec.Resume("st-late", key, rends); ok {
		t.Fatal("a reconnect after the window was merged")
	}
	if got := pub.statuses(); !slices.Equal(got, []string{statusStart, statusEnd}) {
		t.Fatalf("events %v", got)
	}
	end := pub.evs[1].Detail
	if ids := end["recording_session_stream_ids"].([]string); !slices.Equal(ids, []string{"st-one", "st-two"}) || end["stream_id"] != "st-two" {
		t.Fatalf("Recording End detail %v", end)
	}
	if ms := end["recording_duration_ms"].(int64); ms < 11000 || ms > 13000 {
		t.Fatalf("merged duration %d ms, want about 12000", ms)
	}
	local := filepath.Join(root, "recordings", filepath.FromSlash(rec.Prefix()))
	br, _ := os.ReadFile(filepath.Join(local, "media", "hls", "180p30", "byte-range-variant.m3u8"))
	pl, _ := os.ReadFile(filepath.Join(local, "media", "hls", "180p30", "playlist.m3u8"))
	if strings.Count(string(br), "#EXT-X-DISCONTINUITY") != 1 || strings.Count(string(pl), "#EXT-X-DISCONTINUITY") != 1 {
		t.Errorf("want one discontinuity between the streams:\n%s\n%s", pl, br)
	}
	if d := ffprobeDuration(t, filepath.Join(local, "media", "hls", "master.m3u8")); d < 11 || d > 13 {
		t.Errorf("merged recording plays %.2f s, want about 12", d)
	}
	var ended metadataFile
	raw, _ := os.ReadFile(filepath.Join(local, "events", "recording_ended.json"))
	if err := json.Unmarshal(raw, &ended); err != nil || ended.RecordingStatus != statusEnded {
		t.Errorf("recording_ended.json: %s", raw)
	}
}

// Shutting down ends the reconnect window at once.
func TestStopWaitingEndsWindow(t *testing.T) {
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 320, Height: 180, Seconds: 2})
	rec := Start(Config{Store: blob.NewLocal(t.TempDir()), SpoolDir: filepath.Join(t.TempDir(), "spool"), Bucket: "recordings",
		Account: "123456789012", Region: "us-west-2", ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/AbCdEfGh1234",
		ChannelID: "AbCdEfGh1234", StreamID: "st-one", Container: "TS", Logger: slog.New(slog.DiscardHandler),
		ReconnectWindow: time.Hour}, []Rendition{{Path: "180p30"}})
	feed(t, es, rec.Track(0))
	rec.StopWaiting()
	select {
	case <-rec.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("StopWaiting did not end the reconnect window")
	}
}

// A spool that runs out of space (the media file is /dev/full, which
// fails every write with ENOSPC) ends the recording with Recording End
// Failure and RECORDING_ENDED_WITH_FAILURE, keeping what was recorded;
// the packager (the live stream) never waits on it.
func TestSpoolDiskFullEndsRecordingNotStream(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: 320, Height: 180, Seconds: 24, GOP: 60})
	root, spool := t.TempDir(), filepath.Join(t.TempDir(), "spool")
	pub := &eventLog{}
	rec := Start(Config{Store: blob.NewLocal(root), SpoolDir: spool, Bucket: "recordings",
		Account: "123456789012", Region: "us-west-2", ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/AbCdEfGh1234",
		ChannelID: "AbCdEfGh1234", StreamID: "st-full", Container: "TS", Events: pub, Logger: slog.New(slog.DiscardHandler)},
		[]Rendition{{Path: "180p30", Width: 320, Height: 180}})
	// The second 10-second file lands on a full disk.
	dir := filepath.Join(spool, rec.m.RecordingID, "180p30")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", filepath.Join(dir, "1.ts")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	feed(t, es, rec.Track(0))
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the packager took %v: it waited on the failing recorder", took)
	}
	select {
	case <-rec.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the recording did not close")
	}
	if got := pub.statuses(); !slices.Equal(got, []string{statusStart, statusEndFailure}) {
		t.Fatalf("events %v", got)
	}
	if r := pub.evs[1].Detail["recording_status_reason"]; r != "InternalServerErrorException" {
		t.Errorf("recording_status_reason %v", r)
	}
	local := filepath.Join(root, "recordings", filepath.FromSlash(rec.Prefix()))
	var ended metadataFile
	raw, err := os.ReadFile(filepath.Join(local, "events", "recording_failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ended); err != nil || ended.RecordingStatus != statusEndedWithError || ended.RecordingStatusMessage != "InternalServerError" {
		t.Errorf("recording_failed.json: %s", raw)
	}
	if _, err := os.Stat(filepath.Join(local, "events", "recording_ended.json")); err == nil {
		t.Error("a failed recording has both recording_failed.json and recording_ended.json")
	}
	// What was recorded before the disk filled is kept and plays.
	if d := ffprobeDuration(t, filepath.Join(local, "media", "hls", "master.m3u8")); d < 9 || d > 13 {
		t.Errorf("the kept recording plays %.2f s, want the first 10-second file", d)
	}
}

// The merge rules of spec 04 §3.6: media must match (codec families,
// resolution, frame rate, bitrate within 50%), at most 20 streams, at most
// 48 h from the recording's start, the same renditions.
func TestCanMerge(t *testing.T) {
	key := Media{Width: 1280, Height: 720, FPS: 30, VideoCodec: "avc1.64001F", AudioCodec: "mp4a.40.2", Bitrate: 3_000_000}
	rends := []Rendition{{Path: "720p30"}}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	r := &Recorder{cfg: Config{Media: key, Now: func() time.Time { return now }},
		m: &meta{StartedAt: now.Add(-time.Hour), StreamIDs: []string{"st-1"}, Renditions: []renditionMeta{{Path: "720p30"}}}}
	ok := func(m Media, rs []Rendition) bool { return r.canMerge(resumeRequest{media: m, renditions: rs}) }
	with := func(f func(*Media)) Media { m := key; f(&m); return m }
	for name, c := range map[string]struct {
		m    Media
		rs   []Rendition
		want bool
	}{
		"same":                    {key, rends, true},
		"other level, same codec": {with(func(m *Media) { m.VideoCodec = "avc1.640028" }), rends, true},
		"bitrate +45%":            {with(func(m *Media) { m.Bitrate = 4_350_000 }), rends, true},
		"bitrate +55%":            {with(func(m *Media) { m.Bitrate = 4_650_000 }), rends, false},
		"bitrate -55%":            {with(func(m *Media) { m.Bitrate = 1_350_000 }), rends, false},
		"bitrate unknown":         {with(func(m *Media) { m.Bitrate = 0 }), rends, true},
		"other resolution":        {with(func(m *Media) { m.Height = 540 }), rends, false},
		"other frame rate":        {with(func(m *Media) { m.FPS = 60 }), rends, false},
		"other audio codec":       {with(func(m *Media) { m.AudioCodec = "opus" }), rends, false},
		"other renditions":        {key, []Rendition{{Path: "480p30"}}, false},
		"more renditions":         {key, append(rends, Rendition{Path: "160p30"}), false},
	} {
		if got := ok(c.m, c.rs); got != c.want {
			t.Errorf("%s: canMerge = %v, want %v", name, got, c.want)
		}
	}
	for len(r.m.StreamIDs) < maxMergedStreams {
		r.m.StreamIDs = append(r.m.StreamIDs, "st-x")
	}
	if ok(key, rends) {
		t.Error("a 21st stream was merged")
	}
	r.m.StreamIDs = r.m.StreamIDs[:1]
	r.m.StartedAt = now.Add(-maxMergedAge)
	if ok(key, rends) {
		t.Error("a stream 48 h after the recording started was merged")
	}
}
