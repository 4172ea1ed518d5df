package chatlog_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/chat/chatlog"
	"github.com/openivs/openivs/internal/chat/messaging"
	"github.com/openivs/openivs/internal/store"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

const (
	roomA   = "arn:aws:ivschat:us-west-2:123456789012:room/abcDEF123456"
	roomB   = "arn:aws:ivschat:us-west-2:123456789012:room/zzzYYY987654"
	cwARN   = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/cw0000000001"
	fhARN   = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/fh0000000001"
	s3ARN   = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/s30000000001"
	goneARN = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/gone00000001"
)

// control stands in for chat.Service's Room and LoggingDestination.
type control struct {
	mu     sync.Mutex
	rooms  map[string][]string
	dests  map[string]*chat.DestinationConfiguration
	roomsN atomic.Int64
	block  chan struct{} // when set, Rooms waits for it
}

func newControl() *control {
	return &control{rooms: map[string][]string{}, dests: map[string]*chat.DestinationConfiguration{}}
}

func (c *control) setRoom(arn string, configs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rooms[arn] = configs
}

func (c *control) setDest(arn string, d chat.DestinationConfiguration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dests[arn] = &d
}

func (c *control) Rooms(ctx context.Context, arn string) (*chat.Room, error) {
	c.roomsN.Add(1)
	if c.block != nil {
		select {
		case <-c.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	configs, ok := c.rooms[arn]
	if !ok {
		return nil, chat.ErrRoomNotFound
	}
	return &chat.Room{ARN: arn, LoggingConfigurationARNs: slices.Clone(configs)}, nil
}

func (c *control) Destination(_ context.Context, arn string) (*chat.DestinationConfiguration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dests[arn]
	if !ok {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, arn)
	}
	cp := *d
	return &cp, nil
}

// logBuffer is a slog destination tests can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) warnings() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.SplitSeq(b.buf.String(), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out
}

var t0 = time.Date(2024, 3, 5, 7, 8, 9, 123_000_000, time.UTC)

type env struct {
	ctl    *control
	dir    string
	logs   *logBuffer
	logger *chatlog.Logger
	bus    messaging.Bus
	inner  *messaging.LocalBus
}

// start makes a Logger over a LocalBus; edit changes the Config first.
func start(t *testing.T, edit func(*chatlog.Config)) *env {
	t.Helper()
	e := &env{ctl: newControl(), dir: filepath.Join(t.TempDir(), "chat-logs"), logs: &logBuffer{}, inner: messaging.NewLocalBus()}
	cfg := chatlog.Config{
		Dir: e.dir, Rooms: e.ctl.Rooms, Destination: e.ctl.Destination,
		Region: "us-west-2", AccountID: "123456789012",
		Logger:          slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:             func() time.Time { return t0 },
		FlushInterval:   time.Hour, // tests flush themselves
		S3FlushInterval: time.Hour,
		RoomTTL:         time.Hour,
	}
	if edit != nil {
		edit(&cfg)
	}
	l, err := chatlog.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	e.logger, e.bus = l, l.Wrap(e.inner)
	return e
}

func messageFrame(id, content string) []byte {
	b, _ := json.Marshal(messaging.Message{
		Type: messaging.TypeMessage, ID: id, RequestID: "req-" + id, Content: content,
		Attributes: map[string]string{"k": "v"}, SendTime: "2024-03-05T07:08:09.100Z",
		Sender: messaging.Sender{UserID: "user-1", Attributes: map[string]string{"name": "Ann"}},
	})
	return b
}

func eventFrame(id, name string) []byte {
	b, _ := json.Marshal(messaging.Event{
		Type: messaging.TypeEvent, ID: id, EventName: name,
		Attributes: map[string]string{"MessageID": "abc"}, SendTime: "2024-03-05T07:08:09.200Z",
	})
	return b
}

func (e *env) publish(t *testing.T, room string, frame []byte) {
	t.Helper()
	if err := e.bus.Publish(context.Background(), messaging.Envelope{Room: room, Frame: frame}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.logger.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// wantLine is a record exactly as IVS documents it.
func wantLine(at time.Time, typ string, frame []byte) string {
	return fmt.Sprintf(`{"event_timestamp":"%s","type":"%s","version":"1.0","payload":%s}`,
		at.UTC().Format("2006-01-02T15:04:05.000Z"), typ, frame)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline: %q", path, b)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// files lists the regular files under dir, relative and slash-separated.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %d lines:\n  %s\nwant %d lines:\n  %s", what, len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
}

func TestCloudWatchAndFirehoseRecords(t *testing.T) {
	e := start(t, nil)
	e.ctl.setRoom(roomA, cwARN, fhARN)
	e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "/aws/ivschat/my-group_1#x.y"}})
	e.ctl.setDest(fhARN, chat.DestinationConfiguration{Firehose: &chat.FirehoseDestination{DeliveryStreamName: "chat-stream"}})

	msg, ev := messageFrame("msg000000001", "hello \"world\" ✓"), eventFrame("evt000000001", messaging.EventDeleteMessage)
	e.publish(t, roomA, msg)
	e.publish(t, roomA, ev)
	e.flush(t)

	want := []string{wantLine(t0, "MESSAGE", msg), wantLine(t0, "EVENT", ev)}
	cw := "cloudwatch/%2Faws%2Fivschat%2Fmy-group_1#x.y/aws/IVSChatLogs/1.0/room_abcDEF123456.log"
	fh := "firehose/chat-stream/2024/03/05/07/chat-stream-2024-03-05-07.log"
	equalLines(t, "files", files(t, e.dir), []string{cw, fh})
	equalLines(t, "cloudwatch", readLines(t, filepath.Join(e.dir, cw)), want)
	equalLines(t, "firehose", readLines(t, filepath.Join(e.dir, fh)), want)

	// Each line is the IVS shape, the payload byte for byte what clients get.
	var rec struct {
		EventTimestamp string          `json:"event_timestamp"`
		Type           string          `json:"type"`
		Version        string          `json:"version"`
		Payload        json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal([]byte(readLines(t, filepath.Join(e.dir, cw))[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.EventTimestamp != "2024-03-05T07:08:09.123Z" || rec.Type != "MESSAGE" || rec.Version != "1.0" || !bytes.Equal(rec.Payload, msg) {
		t.Fatalf("record %+v", rec)
	}

	// Later flushes append; modes keep chat private.
	e.publish(t, roomA, msg)
	e.flush(t)
	if got := readLines(t, filepath.Join(e.dir, cw)); len(got) != 3 {
		t.Fatalf("after a second flush: %d lines", len(got))
	}
	for _, rel := range []string{cw, fh} {
		st, err := os.Stat(filepath.Join(e.dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", rel, st.Mode().Perm())
		}
		st, _ = os.Stat(filepath.Dir(filepath.Join(e.dir, rel)))
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: folder mode %v", rel, st.Mode().Perm())
		}
	}
	if w := e.logs.warnings(); len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
}

func TestFirehoseFilesFollowTheHour(t *testing.T) {
	var now atomic.Pointer[time.Time]
	at := time.Date(2024, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	now.Store(&at)
	e := start(t, func(c *chatlog.Config) { c.Now = func() time.Time { return *now.Load() } })
	e.ctl.setRoom(roomA, fhARN)
	e.ctl.setDest(fhARN, chat.DestinationConfiguration{Firehose: &chat.FirehoseDestination{DeliveryStreamName: "s"}})
	m1 := messageFrame("msg000000001", "last of the year")
	e.publish(t, roomA, m1)
	next := at.Add(2 * time.Millisecond)
	now.Store(&next)
	m2 := messageFrame("msg000000002", "first of the year")
	e.publish(t, roomA, m2)
	e.flush(t)
	old, neu := "firehose/s/2024/12/31/23/s-2024-12-31-23.log", "firehose/s/2025/01/01/00/s-2025-01-01-00.log"
	equalLines(t, "files", files(t, e.dir), []string{old, neu})
	equalLines(t, old, readLines(t, filepath.Join(e.dir, old)), []string{wantLine(at, "MESSAGE", m1)})
	equalLines(t, neu, readLines(t, filepath.Join(e.dir, neu)), []string{wantLine(next, "MESSAGE", m2)})
}

// s3KeyRE is IVS's documented layout for roomA on 2024-03-05 07:08 UTC.
var s3KeyRE = regexp.MustCompile(`^AWSLogs/123456789012/IVSChatLogs/1\.0/us-west-2/room_abcDEF123456/2024/03/05/07/` +
	`123456789012_IVSChatLogs_1\.0_us-west-2_room_abcDEF123456_202403050708_[0-9a-f]{8}\.log\.gz$`)

// checkS3 reads the single object under roomA's prefix and checks it.
func checkS3(t *testing.T, store blob.Store, bucket string, want []string) {
	t.Helper()
	ctx := context.Background()
	keys, err := store.List(ctx, bucket, "AWSLogs/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !s3KeyRE.MatchString(keys[0]) {
		t.Fatalf("keys %q, want one like %s", keys, s3KeyRE)
	}
	equalLines(t, keys[0], gunzipLines(t, store, bucket, keys[0]), want)
}

func gunzipLines(t *testing.T, store blob.Store, bucket, key string) []string {
	t.Helper()
	body, err := store.Get(context.Background(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s is not gzip: %v", key, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		t.Fatalf("%s: %q does not end with a newline", key, raw)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

func TestS3RealServerCloseFlushes(t *testing.T) {
	srv := s3test.Start(t)
	s3, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s3.CreateBucket(ctx, "chat-logs-bucket"); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *chatlog.Config) { c.Buckets = s3 })
	e.ctl.setRoom(roomA, s3ARN)
	e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "chat-logs-bucket"}})
	msg, ev := messageFrame("msg000000001", "hi"), eventFrame("evt000000001", "app:custom")
	e.publish(t, roomA, msg)
	e.publish(t, roomA, ev)
	e.publish(t, roomA, msg)

	// S3FlushInterval is an hour: nothing is written before Close.
	time.Sleep(100 * time.Millisecond)
	if keys, _ := s3.List(ctx, "chat-logs-bucket", ""); len(keys) != 0 {
		t.Fatalf("written before it was due: %q", keys)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.logger.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkS3(t, s3, "chat-logs-bucket", []string{wantLine(t0, "MESSAGE", msg), wantLine(t0, "EVENT", ev), wantLine(t0, "MESSAGE", msg)})
	if err := e.logger.Flush(ctx); !errors.Is(err, chatlog.ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}

	// A bucket that does not exist loses the records, with one warning
	// and an error from Flush, and does not wedge the uploader.
	e2 := start(t, func(c *chatlog.Config) { c.Buckets = s3 })
	e2.ctl.setRoom(roomA, s3ARN)
	e2.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "no-such-bucket"}})
	e2.publish(t, roomA, msg)
	if err := e2.logger.Flush(ctx); !errors.Is(err, blob.ErrNoSuchBucket) {
		t.Fatalf("Flush to a missing bucket: %v", err)
	}
	e2.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "chat-logs-bucket"}})
	e2.publish(t, roomB, msg) // roomB: not logged
	e2.flush(t)
}

func TestS3LocalStore(t *testing.T) {
	root := t.TempDir()
	local := blob.NewLocal(root)
	e := start(t, func(c *chatlog.Config) {
		c.Buckets = local
		c.S3FlushInterval = 50 * time.Millisecond
		c.FlushInterval = 10 * time.Millisecond
	})
	e.ctl.setRoom(roomA, s3ARN)
	e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "my.chat-logs"}})
	msg := messageFrame("msg000000001", "hi")
	e.publish(t, roomA, msg)
	// Nobody made the bucket: the local store's check makes it. And the
	// object comes once S3FlushInterval has passed, without a Flush.
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, _ := local.List(context.Background(), "my.chat-logs", "")
		if len(keys) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no object after S3FlushInterval; logs:\n%s", e.logs.warnings())
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkS3(t, local, "my.chat-logs", []string{wantLine(t0, "MESSAGE", msg)})
	if _, err := os.Stat(filepath.Join(root, "my.chat-logs", "AWSLogs", "123456789012", "IVSChatLogs", "1.0", "us-west-2", "room_abcDEF123456", "2024", "03", "05", "07")); err != nil {
		t.Fatalf("the key's folders on disk: %v", err)
	}
	if w := e.logs.warnings(); len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
}

func TestS3ObjectsSplitByHour(t *testing.T) {
	var now atomic.Pointer[time.Time]
	at := time.Date(2024, 3, 5, 7, 59, 59, 500_000_000, time.UTC)
	now.Store(&at)
	local := blob.NewLocal(t.TempDir())
	e := start(t, func(c *chatlog.Config) { c.Buckets = local; c.Now = func() time.Time { return *now.Load() } })
	e.ctl.setRoom(roomA, s3ARN)
	e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "logs"}})
	m1, m2 := messageFrame("msg000000001", "one"), messageFrame("msg000000002", "two")
	e.publish(t, roomA, m1)
	next := at.Add(time.Second)
	now.Store(&next)
	e.publish(t, roomA, m2)
	e.flush(t)
	keys, err := local.List(context.Background(), "logs", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !strings.Contains(keys[0], "/2024/03/05/07/") || !strings.Contains(keys[0], "_202403050759_") ||
		!strings.Contains(keys[1], "/2024/03/05/08/") || !strings.Contains(keys[1], "_202403050800_") {
		t.Fatalf("keys %q", keys)
	}
	equalLines(t, keys[0], gunzipLines(t, local, "logs", keys[0]), []string{wantLine(at, "MESSAGE", m1)})
	equalLines(t, keys[1], gunzipLines(t, local, "logs", keys[1]), []string{wantLine(next, "MESSAGE", m2)})
}

func TestEveryConfigurationOfARoomGetsTheRecords(t *testing.T) {
	local := blob.NewLocal(t.TempDir())
	e := start(t, func(c *chatlog.Config) { c.Buckets = local })
	e.ctl.setRoom(roomA, cwARN, fhARN, s3ARN)
	e.ctl.setRoom(roomB) // no logging configurations
	e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
	e.ctl.setDest(fhARN, chat.DestinationConfiguration{Firehose: &chat.FirehoseDestination{DeliveryStreamName: "f"}})
	e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "logs"}})
	msg := messageFrame("msg000000001", "to all three")
	e.publish(t, roomA, msg)
	e.publish(t, roomB, messageFrame("msg000000002", "to nobody"))
	e.flush(t)

	want := []string{wantLine(t0, "MESSAGE", msg)}
	equalLines(t, "files", files(t, e.dir), []string{
		"cloudwatch/g/aws/IVSChatLogs/1.0/room_abcDEF123456.log",
		"firehose/f/2024/03/05/07/f-2024-03-05-07.log",
	})
	equalLines(t, "cloudwatch", readLines(t, filepath.Join(e.dir, "cloudwatch/g/aws/IVSChatLogs/1.0/room_abcDEF123456.log")), want)
	equalLines(t, "firehose", readLines(t, filepath.Join(e.dir, "firehose/f/2024/03/05/07/f-2024-03-05-07.log")), want)
	checkS3(t, local, "logs", want)

	// Two configurations naming the same log group each deliver.
	cw2 := strings.Replace(cwARN, "cw0000000001", "cw0000000002", 1)
	e.ctl.setDest(cw2, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
	e.ctl.setRoom(roomB, cwARN, cw2)
	if err := e.bus.Publish(context.Background(), messaging.Envelope{Room: roomB, RoomChanged: true}); err != nil {
		t.Fatal(err)
	}
	m3 := messageFrame("msg000000003", "twice")
	e.publish(t, roomB, m3)
	e.flush(t)
	equalLines(t, "roomB", readLines(t, filepath.Join(e.dir, "cloudwatch/g/aws/IVSChatLogs/1.0/room_zzzYYY987654.log")),
		[]string{wantLine(t0, "MESSAGE", m3), wantLine(t0, "MESSAGE", m3)})
}

func TestRoomWithoutLoggingWritesNothing(t *testing.T) {
	local := blob.NewLocal(t.TempDir())
	e := start(t, func(c *chatlog.Config) { c.Buckets = local })
	e.ctl.setRoom(roomA)
	for i := range 5 {
		e.publish(t, roomA, messageFrame(fmt.Sprintf("msg%09d", i), "x"))
	}
	e.publish(t, roomB, messageFrame("msg000000009", "unknown room"))
	e.flush(t)
	if _, err := os.Stat(e.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the log directory exists: %v %v", err, files(t, e.dir))
	}
	if got := files(t, local.Root()); len(got) != 0 {
		t.Fatalf("objects: %v", got)
	}
	// Looked up once per RoomTTL, not per message.
	if n := e.ctl.roomsN.Load(); n != 2 {
		t.Fatalf("%d room look-ups, want 2", n)
	}
	if w := e.logs.warnings(); len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
}

func TestSkippedEnvelopesAndConfigurations(t *testing.T) {
	e := start(t, nil)
	e.ctl.setRoom(roomA, goneARN, cwARN)
	e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
	ctx := context.Background()
	// RoomChanged, empty frames, non-MESSAGE/EVENT entities: not logged.
	for _, env := range []messaging.Envelope{
		{Room: roomA, RoomChanged: true},
		{Room: roomA},
		{Room: roomA, Frame: []byte(`{"Type":"ERROR","Id":"x","ErrorCode":400,"ErrorMessage":"no"}`)},
	} {
		if err := e.bus.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	// A DISCONNECT_USER envelope carries its event: logged.
	ev := eventFrame("evt000000001", messaging.EventDisconnectUser)
	if err := e.bus.Publish(ctx, messaging.Envelope{Room: roomA, Frame: ev, DisconnectUser: "user-1"}); err != nil {
		t.Fatal(err)
	}
	e.flush(t)
	path := filepath.Join(e.dir, "cloudwatch/g/aws/IVSChatLogs/1.0/room_abcDEF123456.log")
	equalLines(t, "cloudwatch", readLines(t, path), []string{wantLine(t0, "EVENT", ev)})
	// The deleted configuration is skipped quietly.
	if w := e.logs.warnings(); len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}

	// A room change is seen at once, whatever RoomTTL: the room now logs
	// to a configuration that was deleted, then nowhere.
	e.ctl.setRoom(roomA, goneARN)
	if err := e.bus.Publish(ctx, messaging.Envelope{Room: roomA, RoomChanged: true}); err != nil {
		t.Fatal(err)
	}
	e.publish(t, roomA, messageFrame("msg000000002", "not logged"))
	e.flush(t)
	if got := readLines(t, path); len(got) != 1 {
		t.Fatalf("logged after the room dropped the configuration: %v", got)
	}
}

// failingBus refuses every envelope.
type failingBus struct{ messaging.Bus }

func (failingBus) Publish(context.Context, messaging.Envelope) error { return errors.New("bus down") }

func TestFailedPublishIsNotLogged(t *testing.T) {
	e := start(t, nil)
	e.ctl.setRoom(roomA, cwARN)
	e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
	b := e.logger.Wrap(failingBus{e.inner})
	if err := b.Publish(context.Background(), messaging.Envelope{Room: roomA, Frame: messageFrame("msg000000001", "x")}); err == nil {
		t.Fatal("Publish succeeded")
	}
	e.flush(t)
	if got := files(t, e.dir); len(got) != 0 {
		t.Fatalf("files: %v", got)
	}
}

func TestQueueFullDropsWithoutBlockingPublish(t *testing.T) {
	e := start(t, func(c *chatlog.Config) { c.QueueSize = 4 })
	e.ctl.block = make(chan struct{}) // the writer hangs on its first look-up
	e.ctl.setRoom(roomA, cwARN)
	e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
	var delivered atomic.Int64
	cancel, err := e.bus.Subscribe(roomA, func(messaging.Envelope) { delivered.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()

	const n = 200
	began := time.Now()
	for i := range n {
		e.publish(t, roomA, messageFrame(fmt.Sprintf("msg%09d", i), "x"))
	}
	if took := time.Since(began); took > time.Second {
		t.Fatalf("%d publishes took %v with the writer stuck", n, took)
	}
	if delivered.Load() != n {
		t.Fatalf("subscribers got %d of %d", delivered.Load(), n)
	}
	dropped := e.logger.Dropped()
	if dropped < n-5 {
		t.Fatalf("dropped %d of %d with a queue of 4", dropped, n)
	}
	if w := e.logs.warnings(); len(w) != 1 || !strings.Contains(w[0], "queue full") {
		t.Fatalf("want one rate-limited warning, got %v", w)
	}
	close(e.ctl.block)
	e.flush(t)
	got := readLines(t, filepath.Join(e.dir, "cloudwatch/g/aws/IVSChatLogs/1.0/room_abcDEF123456.log"))
	if uint64(len(got)) != n-dropped {
		t.Fatalf("%d lines, want %d (%d published, %d dropped)", len(got), n-dropped, n, dropped)
	}
}

func TestNamesCannotEscapeDir(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "logs")
	e := start(t, func(c *chatlog.Config) { c.Dir = dir })
	evil := []string{"../../escape", "..", ".", "/aws/../../x", "a/../../../b", "", "#.hidden", ".hidden", "x\x00y", strings.Repeat("../", 300)}
	var configs []string
	for i, name := range evil {
		cw := fmt.Sprintf("arn:aws:ivschat:us-west-2:123456789012:logging-configuration/cw%d", i)
		fh := fmt.Sprintf("arn:aws:ivschat:us-west-2:123456789012:logging-configuration/fh%d", i)
		e.ctl.setDest(cw, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: name}})
		e.ctl.setDest(fh, chat.DestinationConfiguration{Firehose: &chat.FirehoseDestination{DeliveryStreamName: name}})
		configs = append(configs, cw, fh)
	}
	// A room ARN whose id would climb out too.
	evilRoom := "arn:aws:ivschat:us-west-2:123456789012:room/.."
	e.ctl.setRoom(roomA, configs...)
	e.ctl.setRoom(evilRoom, configs[:2]...)
	e.publish(t, roomA, messageFrame("msg000000001", "x"))
	e.publish(t, evilRoom, messageFrame("msg000000002", "x"))
	e.flush(t)

	entries, err := os.ReadDir(top)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "logs" {
		t.Fatalf("written outside Dir: %v", entries)
	}
	got := files(t, dir)
	if len(got) != 2*len(evil)+1 {
		t.Fatalf("%d files, want one per name and kind (+1 for the evil room): %q", len(got), got)
	}
	for _, rel := range got {
		first, rest, _ := strings.Cut(rel, "/")
		group, _, _ := strings.Cut(rest, "/")
		if first != "cloudwatch" && first != "firehose" || group == "" || group == "." || group == ".." ||
			strings.HasPrefix(group, ".") || len(group) > 255 {
			t.Errorf("bad path %q", rel)
		}
	}
}

func TestS3OutageRetriedThenCloseGivesUp(t *testing.T) {
	srv := s3test.Start(t)
	s3, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s3.CreateBucket(ctx, "logs"); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(c *chatlog.Config) { c.Buckets = s3 })
	e.ctl.setRoom(roomA, s3ARN)
	e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "logs"}})

	// The store is down while a flush writes: the object waits and is
	// written once the store is back.
	srv.Stop()
	msg := messageFrame("msg000000001", "survives an outage")
	e.publish(t, roomA, msg)
	flushed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		flushed <- e.logger.Flush(ctx)
	}()
	time.Sleep(700 * time.Millisecond) // a failed attempt or two
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned while the store was down: %v", err)
	default:
	}
	srv.Restart(t)
	if err := <-flushed; err != nil {
		t.Fatalf("Flush after the store came back: %v", err)
	}
	checkS3(t, s3, "logs", []string{wantLine(t0, "MESSAGE", msg)})

	// Down at shutdown: Close gives up when its ctx ends, and says so.
	srv.Stop()
	e.publish(t, roomA, msg)
	closeCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	began := time.Now()
	err = e.logger.Close(closeCtx)
	if err == nil {
		t.Fatal("Close succeeded with the store down")
	}
	t.Logf("Close: %v", err)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Close took %v", took)
	}
}

func TestNoObjectStoreWarnsOnce(t *testing.T) {
	e := start(t, nil) // no Buckets
	e.ctl.setRoom(roomA, s3ARN, cwARN)
	e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "logs"}})
	e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
	for i := range 10 {
		e.publish(t, roomA, messageFrame(fmt.Sprintf("msg%09d", i), "x"))
	}
	e.flush(t)
	if w := e.logs.warnings(); len(w) != 1 || !strings.Contains(w[0], "no object store") {
		t.Fatalf("want one warning, got %v", w)
	}
	// The other configuration is not held back.
	if got := readLines(t, filepath.Join(e.dir, "cloudwatch/g/aws/IVSChatLogs/1.0/room_abcDEF123456.log")); len(got) != 10 {
		t.Fatalf("%d lines", len(got))
	}
}
