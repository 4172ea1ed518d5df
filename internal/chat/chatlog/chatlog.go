// Package chatlog is IVS Chat logging: every MESSAGE and EVENT sent to a
// room with logging configurations is recorded, in IVS's record format
// (see Record), to each configuration's destination. openivs stands in
// for the destinations: CloudWatch Logs log groups and Firehose delivery
// streams are JSON-lines files under a local directory (CloudWatchPath,
// FirehosePath), S3 buckets are buckets of a blob.Store, with gzipped
// objects under IVS's keys (S3Key).
//
// Recording hooks the messaging fan-out: Logger.Wrap decorates the
// messaging.Bus a node publishes through, so each entity is recorded once,
// by the node that published it, however many nodes deliver it. Publish
// only queues the entity; a goroutine looks rooms and destinations up and
// writes, so chat never waits for logging, and a full queue drops records
// (counted in Dropped) rather than slowing chat down.
//
// As in IVS, delivery is prompt but not instant: local files are appended
// every FlushInterval (IVS: about 10 s), S3 objects written every
// S3FlushInterval (IVS: about 5 minutes) per room.
package chatlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/chat/messaging"
	"github.com/openivs/openivs/internal/store"
)

// Config configures a Logger.
type Config struct {
	// Dir is the root of the local destinations (cloudwatch/, firehose/);
	// created on first write. Empty: CloudWatch Logs and Firehose
	// configurations are warned about once and dropped.
	Dir string
	// Buckets holds the S3 destinations' buckets. nil: S3 configurations
	// are warned about once and dropped.
	Buckets blob.Store
	// Rooms returns a room's settings (chat.Service.Room);
	// chat.ErrRoomNotFound when it is gone.
	Rooms func(ctx context.Context, roomARN string) (*chat.Room, error)
	// Destination returns where a logging configuration sends records
	// (chat.Service.LoggingDestination); an error wrapping
	// store.ErrNotFound when it is gone.
	Destination func(ctx context.Context, loggingConfigurationARN string) (*chat.DestinationConfiguration, error)
	// Region and AccountID name a room in S3 keys when its ARN does not.
	Region, AccountID string
	Logger            *slog.Logger
	// Now stamps records (event_timestamp); default time.Now.
	Now func() time.Time
	// FlushInterval is how often local files are appended to; default 1 s.
	FlushInterval time.Duration
	// S3FlushInterval is how long records wait for an S3 object; default
	// 60 s (IVS: about 5 minutes).
	S3FlushInterval time.Duration
	// RoomTTL is how long a room's logging configurations and their
	// destinations are cached; default 2 s.
	RoomTTL time.Duration
	// QueueSize bounds the records waiting for the writer; default 8192.
	QueueSize int
	// OnDestinationError, when set, is told of each failure to deliver
	// records to a logging configuration's destination (IVS Chat's
	// LogDestinationErrors): err wraps blob.ErrNoSuchBucket,
	// blob.ErrAccessDenied or fs.ErrPermission when that is the cause. It
	// is called from the Logger's own goroutines and must not block.
	OnDestinationError func(loggingConfigurationARN string, err error)
}

// Errors OnDestinationError gets when this node has nowhere to write a
// destination's records.
var (
	ErrNoLocalDir    = errors.New("chatlog: no local directory for CloudWatch Logs and Firehose records")
	ErrNoObjectStore = errors.New("chatlog: no object store for S3 records")
)

// Defaults of Config.
const (
	DefaultFlushInterval   = time.Second
	DefaultS3FlushInterval = time.Minute
	DefaultRoomTTL         = 2 * time.Second
	DefaultQueueSize       = 8192
)

// Tuning that needs no setting.
const (
	lookupTimeout = 5 * time.Second
	// warnEvery spaces out repeated warnings of one kind.
	warnEvery = time.Minute
	// s3MaxBatch (uncompressed bytes) makes a room's S3 object before
	// S3FlushInterval when chat is busy, bounding memory.
	s3MaxBatch = 4 << 20
	// uploadQueue bounds the S3 objects waiting for the store; beyond it
	// (an outage) objects are dropped.
	uploadQueue = 256
	// Modes of the local destinations: chat content is private.
	dirMode  = 0o700
	fileMode = 0o600
)

// ErrClosed is what Flush answers after Close.
var ErrClosed = errors.New("chatlog: logger is closed")

// Logger records chat to logging destinations. Its methods are safe for
// concurrent use.
type Logger struct {
	cfg Config
	log *slog.Logger

	queue   chan entry
	flushes chan flushRequest
	stop    chan struct{} // closed by Close
	runDone chan struct{} // closed when run returns
	// lookups is the context of room and destination look-ups; cancelled
	// when Close gives up waiting.
	lookups      context.Context
	cancelLookup context.CancelFunc
	up           *uploader // nil without Buckets

	closing      atomic.Bool
	closeOnce    sync.Once
	closeErr     error
	dropped      atomic.Uint64
	lastDropWarn atomic.Int64 // unix nanoseconds

	// Owned by run.
	rooms  map[string]roomEntry
	dests  map[string]destEntry
	local  map[string]*localBatch // by file path
	s3     map[s3Target]*s3Buffer
	warned map[string]time.Time
}

// entry is one published envelope waiting for the writer.
type entry struct {
	room        string
	frame       []byte
	at          time.Time
	roomChanged bool
}

type flushRequest struct {
	ctx  context.Context
	res  *flushResult
	done chan struct{}
}

type roomEntry struct {
	configs []string // logging configuration ARNs
	expires time.Time
}

type destEntry struct {
	dest    *chat.DestinationConfiguration // nil: gone or unusable
	expires time.Time
}

// New starts a Logger; Close stops it.
func New(cfg Config) (*Logger, error) {
	if cfg.Rooms == nil || cfg.Destination == nil {
		return nil, errors.New("chatlog: Rooms and Destination are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.S3FlushInterval <= 0 {
		cfg.S3FlushInterval = DefaultS3FlushInterval
	}
	if cfg.RoomTTL <= 0 {
		cfg.RoomTTL = DefaultRoomTTL
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.OnDestinationError == nil {
		cfg.OnDestinationError = func(string, error) {}
	}
	l := &Logger{
		cfg: cfg, log: cfg.Logger,
		queue:   make(chan entry, cfg.QueueSize),
		flushes: make(chan flushRequest),
		stop:    make(chan struct{}),
		runDone: make(chan struct{}),
		rooms:   make(map[string]roomEntry),
		dests:   make(map[string]destEntry),
		local:   make(map[string]*localBatch),
		s3:      make(map[s3Target]*s3Buffer),
		warned:  make(map[string]time.Time),
	}
	l.lookups, l.cancelLookup = context.WithCancel(context.Background())
	if cfg.Buckets != nil {
		l.up = newUploader(cfg.Buckets, cfg.Logger, cfg.OnDestinationError)
	}
	go l.run()
	return l, nil
}

// Wrap returns a Bus that publishes through inner and records what was
// published. Wrap the Bus of the node's publisher only (what
// messaging.Config.Bus is), so that each entity is recorded once.
func (l *Logger) Wrap(inner messaging.Bus) messaging.Bus {
	return &bus{inner: inner, l: l}
}

type bus struct {
	inner messaging.Bus
	l     *Logger
}

// Publish implements messaging.Bus.
func (b *bus) Publish(ctx context.Context, env messaging.Envelope) error {
	// Stamped before the fan-out: event_timestamp is when chat received
	// the entity, not when the last node got it.
	at := b.l.cfg.Now()
	if err := b.inner.Publish(ctx, env); err != nil {
		return err
	}
	b.l.enqueue(env, at)
	return nil
}

// Subscribe implements messaging.Bus.
func (b *bus) Subscribe(room string, fn func(messaging.Envelope)) (func(), error) {
	return b.inner.Subscribe(room, fn)
}

// enqueue hands an envelope to the writer without ever waiting.
func (l *Logger) enqueue(env messaging.Envelope, at time.Time) {
	if l.closing.Load() {
		return
	}
	if env.RoomChanged {
		// Its logging configurations may have changed: forget them
		// here at once (other nodes do not record what this one
		// publishes). Lost when the queue is full: RoomTTL covers it.
		select {
		case l.queue <- entry{room: env.Room, roomChanged: true}:
		default:
		}
		return
	}
	if len(env.Frame) == 0 {
		return
	}
	// The frame is not copied: a published frame is shared by every
	// subscriber and never changed afterwards.
	select {
	case l.queue <- entry{room: env.Room, frame: env.Frame, at: at}:
	default:
		n := l.dropped.Add(1)
		now := time.Now().UnixNano()
		last := l.lastDropWarn.Load()
		if now-last >= int64(10*time.Second) && l.lastDropWarn.CompareAndSwap(last, now) {
			l.log.Warn("chat logging: queue full, records dropped", "dropped_total", n, "queue", cap(l.queue))
		}
	}
}

// Dropped counts the records dropped because the queue was full.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Flush writes everything published before it was called: local files
// appended, S3 objects put. It returns the errors of doing so, or ctx's
// when it ends first (S3 objects keep being tried after that).
func (l *Logger) Flush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, res: &flushResult{}, done: make(chan struct{})}
	select {
	case l.flushes <- req:
	case <-l.runDone:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return req.res.wait(ctx)
}

// Close flushes everything (S3 buffers included) and stops. Records of
// S3 objects not written when ctx ends are lost, and Close says so.
func (l *Logger) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.closing.Store(true)
		err := l.Flush(ctx)
		if err != nil {
			err = fmt.Errorf("chatlog: flushing at close: %w", err)
		}
		close(l.stop)
		select {
		case <-l.runDone:
		case <-ctx.Done():
			l.cancelLookup()
			<-l.runDone
		}
		l.cancelLookup()
		if l.up != nil {
			err = errors.Join(err, l.up.close(ctx))
		}
		l.closeErr = err
	})
	return l.closeErr
}

// run is the writer: it takes queued records, looks their rooms up and
// buffers them per destination, and writes the buffers when due.
func (l *Logger) run() {
	defer close(l.runDone)
	tick := time.NewTicker(min(l.cfg.FlushInterval, l.cfg.S3FlushInterval))
	defer tick.Stop()
	for {
		select {
		case e := <-l.queue:
			l.handle(e)
		case <-tick.C:
			if err := l.flushLocal(); err != nil {
				l.warn("local", "chat logging: writing local log files", "err", err)
			}
			l.sealS3(nil, nil, false)
			l.prune()
		case req := <-l.flushes:
			l.drain()
			if err := l.flushLocal(); err != nil {
				req.res.add(err)
			}
			done := req.ctx.Done()
			if done == nil { // a context that never ends: wait as long as it takes
				done = make(chan struct{})
			}
			l.sealS3(done, req.res, true)
			close(req.done)
		case <-l.stop:
			// Close flushed already; this is what came in since.
			l.drain()
			if err := l.flushLocal(); err != nil {
				l.warn("local", "chat logging: writing local log files", "err", err)
			}
			l.sealS3(nil, nil, true)
			return
		}
	}
}

// drain handles what is queued now.
func (l *Logger) drain() {
	for {
		select {
		case e := <-l.queue:
			l.handle(e)
		default:
			return
		}
	}
}

// dest is one logging configuration of a room, resolved.
type dest struct {
	config string
	chat.DestinationConfiguration
}

func (l *Logger) handle(e entry) {
	if e.roomChanged {
		delete(l.rooms, e.room)
		return
	}
	dests := l.destinations(e.room)
	if len(dests) == 0 {
		return
	}
	line, typ, err := encodeRecord(e.at, e.frame)
	if err != nil {
		l.warn("encode", "chat logging: skipping an entity that is not JSON", "room", e.room, "err", err)
		return
	}
	if line == nil {
		l.log.Debug("chat logging: not a MESSAGE or EVENT, not logged", "room", e.room, "type", typ)
		return
	}
	room := parseRoom(e.room, roomName{Region: l.cfg.Region, Account: l.cfg.AccountID})
	for _, d := range dests {
		switch {
		case d.CloudWatchLogs != nil:
			if l.localOK(d.config) {
				l.addLocal(CloudWatchPath(l.cfg.Dir, d.CloudWatchLogs.LogGroupName, room.ID), d.config, line)
			}
		case d.Firehose != nil:
			if l.localOK(d.config) {
				l.addLocal(FirehosePath(l.cfg.Dir, d.Firehose.DeliveryStreamName, e.at), d.config, line)
			}
		case d.S3 != nil:
			if l.up == nil {
				l.warnOnce("no-buckets", "chat logging: no object store, records for S3 logging configurations are dropped",
					"logging_configuration", d.config, "bucket", d.S3.BucketName)
				l.cfg.OnDestinationError(d.config, ErrNoObjectStore)
				continue
			}
			l.bufferS3(s3Target{config: d.config, bucket: d.S3.BucketName, room: e.room}, room, e.at, line)
		}
	}
}

func (l *Logger) localOK(config string) bool {
	if l.cfg.Dir == "" {
		l.warnOnce("no-dir", "chat logging: no local directory, records for CloudWatch Logs and Firehose logging configurations are dropped")
		l.cfg.OnDestinationError(config, ErrNoLocalDir)
		return false
	}
	return true
}

// localBatch is what waits to be appended to one local file, and the
// logging configurations it is for (a failed write is an error of each).
type localBatch struct {
	lines   []byte
	configs []string
}

func (l *Logger) addLocal(path, config string, line []byte) {
	b := l.local[path]
	if b == nil {
		b = &localBatch{}
		l.local[path] = b
	}
	b.lines = append(b.lines, line...)
	if !slices.Contains(b.configs, config) {
		b.configs = append(b.configs, config)
	}
}

// destinations are the usable destinations of a room's logging
// configurations, looked up at most once per RoomTTL.
func (l *Logger) destinations(roomARN string) []dest {
	now := time.Now()
	re, ok := l.rooms[roomARN]
	if !ok || !now.Before(re.expires) {
		ctx, cancel := context.WithTimeout(l.lookups, lookupTimeout)
		r, err := l.cfg.Rooms(ctx, roomARN)
		cancel()
		// Failures are cached too: a store in trouble is asked once per
		// RoomTTL, not once per message.
		re = roomEntry{expires: now.Add(l.cfg.RoomTTL)}
		switch {
		case err == nil && r != nil:
			re.configs = r.LoggingConfigurationARNs
		case errors.Is(err, chat.ErrRoomNotFound):
		case err != nil:
			l.warn("rooms", "chat logging: looking a room up; its records are dropped meanwhile", "room", roomARN, "err", err)
		}
		l.rooms[roomARN] = re
	}
	var out []dest
	for _, arn := range re.configs {
		de, ok := l.dests[arn]
		if !ok || !now.Before(de.expires) {
			ctx, cancel := context.WithTimeout(l.lookups, lookupTimeout)
			d, err := l.cfg.Destination(ctx, arn)
			cancel()
			de = destEntry{expires: now.Add(l.cfg.RoomTTL)}
			switch {
			case err == nil && d != nil:
				de.dest = d
			case errors.Is(err, store.ErrNotFound):
				// Deleted: no longer ACTIVE, nothing to say.
			case err != nil:
				l.warn("destinations", "chat logging: looking a logging configuration up; its records are dropped meanwhile",
					"logging_configuration", arn, "err", err)
			}
			l.dests[arn] = de
		}
		if de.dest != nil {
			out = append(out, dest{config: arn, DestinationConfiguration: *de.dest})
		}
	}
	return out
}

// prune forgets expired look-ups, so that rooms long quiet cost nothing.
func (l *Logger) prune() {
	now := time.Now()
	for k, v := range l.rooms {
		if !now.Before(v.expires) {
			delete(l.rooms, k)
		}
	}
	for k, v := range l.dests {
		if !now.Before(v.expires) {
			delete(l.dests, k)
		}
	}
}

// flushLocal appends the buffered lines to their files: one write per
// file with O_APPEND, so that a file only ever grows by whole lines even
// when several nodes share the directory.
func (l *Logger) flushLocal() error {
	var errs []error
	for path, b := range l.local {
		delete(l.local, path)
		if err := appendFile(path, b.lines); err != nil {
			errs = append(errs, err)
			for _, config := range b.configs {
				l.cfg.OnDestinationError(config, err)
			}
		}
	}
	return errors.Join(errs...)
}

func appendFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	return nil
}

// warn logs at most once per warnEvery for each key.
func (l *Logger) warn(key, msg string, args ...any) {
	now := time.Now()
	if last, ok := l.warned[key]; ok && now.Sub(last) < warnEvery {
		return
	}
	l.warned[key] = now
	l.log.Warn(msg, args...)
}

// warnOnce logs once for each key in the Logger's life.
func (l *Logger) warnOnce(key, msg string, args ...any) {
	if _, ok := l.warned[key]; ok {
		return
	}
	l.warned[key] = time.Now()
	l.log.Warn(msg, args...)
}
