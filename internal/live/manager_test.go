package live

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/store"
	"github.com/openivs/openivs/internal/transcode"
)

// recorder is an event sink: it collects what the event outbox delivers,
// so the tests see events only once they are stored.
type recorder struct {
	mu sync.Mutex
	ev []events.Event
	st store.Outbox
}

func (r *recorder) Name() string { return "test-recorder" }

func (r *recorder) Deliver(_ context.Context, e *events.Event, _ []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ev = append(r.ev, *e)
	return nil
}

// sync waits until every event stored so far has been delivered here.
func (r *recorder) sync() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := r.st.PendingCount(context.Background(), r.Name()); err == nil && n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// names returns "detail-type/event_name-or-limit_name[/code]" of every event.
func (r *recorder) names() []string {
	r.sync()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.ev {
		n, _ := e.Detail["event_name"].(string)
		if n == "" {
			n, _ = e.Detail["limit_name"].(string)
		}
		if c, _ := e.Detail["code"].(string); c != "" {
			n += "/" + c
		}
		out = append(out, n)
	}
	return out
}

// has waits a little for the event: sessions store their events in the
// background.
func (r *recorder) has(name string) bool {
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, n := range r.names() {
			if n == name {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type fixture struct {
	svc    *ivs.Service
	st     store.Store
	mgr    *Manager
	events *recorder
}

func newFixture(t testing.TB, cfg Config, quotas ivs.Quotas) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if quotas == (ivs.Quotas{}) {
		quotas = ivs.DefaultQuotas()
	}
	svc, err := ivs.New(ivs.Config{Store: st, Region: "us-west-2", AccountID: "123456789012",
		IngestEndpoint: "localhost:1936", SRTEndpoint: "localhost:9000", PlaybackBaseURL: "http://localhost:8080", Quotas: quotas})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{st: st}
	outbox, err := events.NewOutbox(events.OutboxConfig{Store: st, Holder: "test", Routes: []events.Route{{Sink: rec}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); outbox.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg.Channels, cfg.Events, cfg.EventsStored, cfg.Region = svc, outbox, outbox.Wake, "us-west-2"
	mgr := NewManager(cfg)
	t.Cleanup(mgr.Close)
	return &fixture{svc: svc, st: st, mgr: mgr, events: rec}
}

// channel creates a channel and returns its ARN and stream key.
func (f *fixture) channel(t testing.TB, typ string, insecure bool) (arn, key string) {
	t.Helper()
	ch, k, err := f.svc.CreateChannel(context.Background(), "123456789012", "", typ, insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ch, k
}

// goLive admits and starts a stream of testTracks on the channel of key;
// the stream is closed when the test ends.
func (f *fixture) goLive(t testing.TB, key string) ingest.Stream {
	t.Helper()
	adm, err := f.mgr.Authorize(context.Background(), ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := adm.Start(testTracks, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Close(nil) })
	return stream
}

// A 640x360 Main 3.0 SPS and a PPS as x264 writes them.
var (
	testSPS = []byte{0x67, 0x4d, 0x40, 0x1e, 0xec, 0xa0, 0x50, 0x17, 0xfc, 0xb8, 0x0b, 0x50, 0x10, 0x10, 0x14, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xb6, 0x58}
	testPPS = []byte{0x68, 0xeb, 0xef, 0x2c}
)

var testTracks = []media.Track{
	{ID: 0, Kind: media.Video, Codec: media.CodecH264, Width: 640, Height: 360, Profile: "Main", Level: "3.0", CodecString: "avc1.4D401E", SPS: testSPS, PPS: testPPS},
	{ID: 1, Kind: media.Audio, Codec: media.CodecAAC, SampleRate: 48000, Channels: 2, AACObject: 2, CodecString: "mp4a.40.2",
		AudioConfig: []byte{0x11, 0x90}}, // AAC-LC, 48 kHz, stereo
}

// feed writes n video frames (keyframe every 30) at 30 fps of size bytes,
// starting at media time from, stamped with wall-clock times from wall.
func feed(t *testing.T, s ingest.Stream, n int, from time.Duration, wall time.Time, size int) error {
	t.Helper()
	for i := 0; i < n; i++ {
		ts := from + time.Duration(i)*time.Second/30
		nalu := make([]byte, size)
		nalu[0] = 0x41 // non-IDR slice
		if i%30 == 0 {
			nalu[0] = 0x65 // IDR slice
		}
		f := &media.Frame{Track: 0, PTS: ts, DTS: ts, Wall: wall.Add(ts - from), Key: i%30 == 0, NALUs: [][]byte{nalu}}
		if err := s.WriteFrame(f); err != nil {
			return err
		}
	}
	return nil
}

func TestAdmissionAndLifecycle(t *testing.T) {
	f := newFixture(t, Config{}, ivs.Quotas{})
	ctx := context.Background()
	arn, key := f.channel(t, "STANDARD", false)

	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: "sk_us-west-2_nope"}); !errors.Is(err, ingest.ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMP, StreamKey: key}); !errors.Is(err, ingest.ErrInsecureRefused) {
		t.Fatalf("plain RTMP on a secure channel: %v", err)
	}
	adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key}); !errors.Is(err, ingest.ErrChannelBusy) {
		t.Fatalf("second connection: %v", err)
	}
	stream, err := adm.Start(testTracks, "ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	hub, ok := f.mgr.Hub(arn)
	if !ok {
		t.Fatal("no hub for a live channel")
	}
	sub := hub.Subscribe("test")
	if err := feed(t, stream, 60, 0, time.Now(), 1000); err != nil {
		t.Fatal(err)
	}
	got, err := sub.Next(ctx)
	if err != nil || !got.Key {
		t.Fatalf("hub's first frame: %+v, %v", got, err)
	}
	waitFor(t, 2*time.Second, func() bool { return f.events.has("Stream Start") })
	if v, ok := f.mgr.Playback(arn); !ok || len(v) == 0 || v[0].Path != sourcePath {
		t.Fatalf("playback of a live channel: %+v, %v", v, ok)
	}
	if err := stream.WriteFrame(&media.Frame{Track: 7}); err == nil {
		t.Fatal("a frame for a track the stream does not have was accepted")
	}
	stream.Close(nil)
	want := []string{"Session Created", "Stream Start", "Session Ended", "Stream End"}
	if got := f.events.names(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("events %v, want %v", got, want)
	}
	// The channel is free again and the key keeps working.
	adm2, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	if err != nil {
		t.Fatalf("after the end: %v", err)
	}
	adm2.Abort(nil)
}

func TestCodecRefusals(t *testing.T) {
	f := newFixture(t, Config{}, ivs.Quotas{})
	ctx := context.Background()
	_, key := f.channel(t, "STANDARD", false)
	cases := map[string][]media.Track{
		"hevc":       {{Kind: media.Video, Codec: media.CodecH265, Width: 640, Height: 360}},
		"audio only": {testTracks[1]},
		"opus":       {testTracks[0], {Kind: media.Audio, Codec: media.CodecOpus}},
		"aac-he":     {testTracks[0], {Kind: media.Audio, Codec: media.CodecAAC, AACObject: 5}},
	}
	for name, tracks := range cases {
		adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
		if err != nil {
			t.Fatalf("%s: authorize: %v", name, err)
		}
		if _, err := adm.Start(tracks, ""); !errors.Is(err, ingest.ErrCodec) {
			t.Errorf("%s: Start = %v, want ErrCodec", name, err)
		}
	}
}

func TestResolutionAndBitrateLimits(t *testing.T) {
	f := newFixture(t, Config{BitrateWindow: time.Second}, ivs.Quotas{})
	ctx := context.Background()
	_, key := f.channel(t, "BASIC", false)

	adm, _ := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	big := []media.Track{{Kind: media.Video, Codec: media.CodecH264, Width: 2560, Height: 1440}}
	if _, err := adm.Start(big, ""); err == nil || !f.events.has("Ingest Resolution") {
		t.Fatalf("1440p: %v, events %v", err, f.events.names())
	}

	// 360p on BASIC: 1.5 Mbps. 10 KB frames at 30 fps = 2.4 Mbps.
	adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := adm.Start(testTracks, "")
	if err != nil {
		t.Fatal(err)
	}
	err = feed(t, stream, 90, 0, time.Now(), 10_000)
	if err == nil || !f.events.has("Ingest Bitrate") {
		t.Fatalf("2.4 Mbps on BASIC 360p: %v, events %v", err, f.events.names())
	}
	select {
	case <-stream.Done():
	default:
		t.Fatal("a breaching stream is not told to disconnect")
	}
}

func TestConcurrentStreamsQuota(t *testing.T) {
	q := ivs.DefaultQuotas()
	q.ConcurrentStreams = 1
	f := newFixture(t, Config{}, q)
	ctx := context.Background()
	_, k1 := f.channel(t, "STANDARD", false)
	_, k2 := f.channel(t, "STANDARD", false)
	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: k1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: k2}); !errors.Is(err, ingest.ErrQuota) {
		t.Fatalf("second stream over a quota of 1: %v", err)
	}
	if !f.events.has("Concurrent Broadcasts") {
		t.Fatalf("no Concurrent Broadcasts breach: %v", f.events.names())
	}
}

func TestTakeover(t *testing.T) {
	f := newFixture(t, Config{}, ivs.Quotas{})
	ctx := context.Background()
	arn, key := f.channel(t, "STANDARD", false)
	first, _ := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key, Priority: 2, HasPriority: true})
	s1, err := first.Start(testTracks, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := feed(t, s1, 30, 0, start, 100); err != nil {
		t.Fatal(err)
	}
	lastWall := start.Add(29 * time.Second / 30)
	// Lower or equal priority: refused with a Takeover Failure.
	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key, Priority: 2, HasPriority: true}); err == nil {
		t.Fatal("equal priority took over")
	}
	if !f.events.has("Stream Takeover Failure/StreamTakeoverInvalidPriority") {
		t.Fatalf("events %v", f.events.names())
	}
	// Higher priority, other media: refused at Start.
	adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key, Priority: 3, HasPriority: true})
	if err != nil {
		t.Fatal(err)
	}
	other := []media.Track{{Kind: media.Video, Codec: media.CodecH264, Width: 1280, Height: 720}, testTracks[1]}
	if _, err := adm.Start(other, ""); err == nil || !f.events.has("Stream Takeover Failure/StreamTakeoverMediaMismatch") {
		t.Fatalf("mismatched takeover: %v, %v", err, f.events.names())
	}
	// Higher priority, same media: takes over; the first connection is told to go.
	adm, err = f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key, Priority: 3, HasPriority: true})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := adm.Start(testTracks, "")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s1.Done():
	case <-time.After(time.Second):
		t.Fatal("the taken-over connection was not ended")
	}
	if err := s1.WriteFrame(&media.Frame{Track: 0}); err == nil {
		t.Fatal("the old connection can still write")
	}
	hub, _ := f.mgr.Hub(arn)
	sub := hub.Subscribe("after")
	// The new encoder's first frames are a burst held back by track
	// discovery: 3 s of media (keyframes each second) stamped from 2 s
	// before the old connection's last frame.
	if err := feed(t, s2, 90, 0, lastWall.Add(-2*time.Second), 100); err != nil {
		t.Fatal(err)
	}
	s1.Close(nil) // the old encoder disconnecting does not end the stream
	if _, live := f.mgr.Hub(arn); !live {
		t.Fatal("stream ended when the taken-over connection closed")
	}
	var resumed *media.Frame
	for i := 0; i < 60; i++ {
		fr, err := sub.Next(ctx)
		if err != nil {
			break
		}
		if fr.Discontinuity {
			resumed = fr
			break
		}
	}
	if resumed == nil || !f.events.has("Stream Takeover") {
		t.Fatalf("discontinuity %v, events %v", resumed, f.events.names())
	}
	// It resumes at a keyframe no more than takeoverOverlap behind where the
	// old connection stopped, not at the start of the new one's burst.
	if !resumed.Key || resumed.Wall.Before(lastWall.Add(-takeoverOverlap)) {
		t.Errorf("resumed at key=%v, %v before the old connection's last frame; want a keyframe at most %v before",
			resumed.Key, lastWall.Sub(resumed.Wall), takeoverOverlap)
	}
}

func TestStarvationIdleAndStop(t *testing.T) {
	f := newFixture(t, Config{StarvationAfter: 300 * time.Millisecond, IdleTimeout: 1500 * time.Millisecond}, ivs.Quotas{})
	ctx := context.Background()
	arn, key := f.channel(t, "STANDARD", false)
	adm, _ := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	s, err := adm.Start(testTracks, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := feed(t, s, 5, 0, time.Now(), 100); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, func() bool { return f.events.has("Starvation Start") })
	if err := feed(t, s, 5, time.Second, time.Now(), 100); err != nil {
		t.Fatal(err)
	}
	if !f.events.has("Starvation End") {
		t.Fatalf("no Starvation End: %v", f.events.names())
	}
	// Nothing more: the idle timeout ends the stream.
	waitFor(t, 4*time.Second, func() bool { return f.events.has("Session Ended") })
	select {
	case <-s.Done():
	default:
		t.Fatal("idle stream not told to disconnect")
	}

	// StopStream ends a live stream.
	adm, err = f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = adm.Start(testTracks, "")
	if err := f.mgr.StopStream(ctx, arn); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(time.Second):
		t.Fatal("StopStream did not disconnect")
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTakeoverLimit(t *testing.T) {
	f := newFixture(t, Config{TakeoverLimit: 1}, ivs.Quotas{})
	ctx := context.Background()
	_, key := f.channel(t, "STANDARD", false)
	adm, _ := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key, Priority: 1, HasPriority: true})
	if _, err := adm.Start(testTracks, ""); err != nil {
		t.Fatal(err)
	}
	adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key, Priority: 2, HasPriority: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Start(testTracks, ""); err != nil {
		t.Fatalf("first takeover: %v", err)
	}
	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key, Priority: 3, HasPriority: true}); err == nil {
		t.Fatal("a takeover beyond the limit was admitted")
	}
	if !f.events.has("Stream Takeover Failure/StreamTakeoverLimitBreached") {
		t.Fatalf("events %v", f.events.names())
	}
	// Without a priority a second encoder is simply refused, with no takeover event.
	before := len(f.events.names())
	if _, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key}); !errors.Is(err, ingest.ErrChannelBusy) {
		t.Fatalf("no priority: %v", err)
	}
	if len(f.events.names()) != before {
		t.Fatalf("a plain duplicate raised events: %v", f.events.names()[before:])
	}
}

// TestTranscodeCapacityExceeded: with every transcode slot taken, a
// STANDARD stream fails with IVS's Stream Failure event and reason, and its
// session ends; BASIC streams, which do not transcode, still go live.
func TestTranscodeCapacityExceeded(t *testing.T) {
	capacity := transcode.NewCapacity(1)
	release, _ := capacity.Acquire() // the node is busy
	f := newFixture(t, Config{Transcode: &TranscodeConfig{Capacity: capacity}}, ivs.Quotas{})
	ctx := context.Background()
	_, key := f.channel(t, "STANDARD", false)
	adm, err := f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Start(testTracks, "test"); err == nil {
		t.Fatal("a STANDARD stream started with no transcode capacity")
	}
	var failure *events.Event
	f.events.sync()
	f.events.mu.Lock()
	for i, e := range f.events.ev {
		if e.Detail["event_name"] == "Stream Failure" {
			failure = &f.events.ev[i]
		}
	}
	f.events.mu.Unlock()
	if failure == nil || failure.Detail["reason"] != "Transcode capacity exceeded. Please try again." {
		t.Fatalf("events %v; Stream Failure %+v", f.events.names(), failure)
	}
	if !f.events.has("Session Ended") {
		t.Fatalf("events %v: the failed session did not end", f.events.names())
	}

	_, basicKey := f.channel(t, "BASIC", false)
	adm, err = f.mgr.Authorize(ctx, ingest.Request{Protocol: ingest.RTMPS, StreamKey: basicKey})
	if err != nil {
		t.Fatal(err)
	}
	st, err := adm.Start(testTracks, "test")
	if err != nil {
		t.Fatalf("BASIC needs no transcoder: %v", err)
	}
	st.Close(nil)
	if capacity.InUse() != 1 {
		t.Fatalf("%d slots in use; only the node's own", capacity.InUse())
	}
	release()
}

// TestTranscodeFallsBackWithoutFFmpeg: a node whose ffmpeg is missing still
// serves STANDARD streams — the source alone, with the error in the log —
// rather than streams that never start; and it holds no transcode slot.
func TestTranscodeFallsBackWithoutFFmpeg(t *testing.T) {
	capacity := transcode.NewCapacity(1)
	f := newFixture(t, Config{Transcode: &TranscodeConfig{Capacity: capacity, FFmpeg: "/nonexistent/ffmpeg"}}, ivs.Quotas{})
	arn, key := f.channel(t, "STANDARD", false)
	stream := f.goLive(t, key)
	if err := feed(t, stream, 60, 0, time.Now(), 1000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, func() bool { return f.events.has("Stream Start") })
	v, ok := f.mgr.Playback(arn)
	if !ok || len(v) == 0 || !v[0].Source || (len(v) > 1 && !v[1].OnRequest) {
		t.Fatalf("renditions %+v, want the source (and audio-only on request)", v)
	}
	if n := capacity.InUse(); n != 0 {
		t.Fatalf("%d transcode slots held by a stream that does not transcode", n)
	}
}

// TestPutMetadata: metadata on a live stream (fMP4 or TS) becomes an ID3
// frame of the hub's metadata track dated at the newest video frame, owned
// by the API; a channel without a live stream is not broadcasting.
func TestPutMetadata(t *testing.T) {
	f := newFixture(t, Config{}, ivs.Quotas{})
	ctx := context.Background()
	tsARN, tsKey := f.channel(t, "BASIC", false)
	arn, key, err := f.svc.CreateChannelIn(ctx, "123456789012", "", "BASIC", "FRAGMENTED_MP4", false)
	if err != nil {
		t.Fatal(err)
	}
	var nb *awsapi.Error
	if err := f.mgr.PutMetadata(ctx, arn, "early"); !errors.As(err, &nb) || nb.Code != "ChannelNotBroadcasting" {
		t.Fatalf("offline: %v", err)
	}
	// TS channels carry it too (a timed-ID3 stream).
	if err := feed(t, f.goLive(t, tsKey), 2, 0, time.Now(), 100); err != nil {
		t.Fatal(err)
	}
	if err := f.mgr.PutMetadata(ctx, tsARN, "ts"); err != nil {
		t.Fatalf("TS channel: %v", err)
	}

	stream := f.goLive(t, key)
	hub, _ := f.mgr.Hub(arn)
	sub := hub.Subscribe("test")
	defer sub.Close()
	if err := feed(t, stream, 10, 0, time.Now(), 100); err != nil {
		t.Fatal(err)
	}
	if err := f.mgr.PutMetadata(ctx, arn, `{"q":1}`); err != nil {
		t.Fatal(err)
	}
	nextMeta := func() *media.Frame {
		for {
			got, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.Track == len(testTracks) {
				return got
			}
		}
	}
	if got := nextMeta(); got.PTS != 9*time.Second/30 || !bytes.Equal(got.NALUs[0], media.TextID3(media.OwnerAPI, `{"q":1}`)) {
		t.Fatalf("metadata frame at %v: %q", got.PTS, got.NALUs[0])
	}

	// In-band metadata from the encoder: the same, owned by in-band.
	if err := stream.WriteMetadata("from the encoder"); err != nil {
		t.Fatal(err)
	}
	if got := nextMeta(); got.PTS != 9*time.Second/30 || !bytes.Equal(got.NALUs[0], media.TextID3(media.OwnerInband, "from the encoder")) {
		t.Fatalf("in-band metadata frame at %v: %q", got.PTS, got.NALUs[0])
	}
}
