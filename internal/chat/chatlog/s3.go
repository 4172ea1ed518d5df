package chatlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/blob"
)

// s3Target is one logging configuration's S3 destination for one room:
// each gets its own objects, as each configuration delivers on its own.
type s3Target struct {
	config, bucket, room string
}

// s3Buffer is a target's records waiting for their object.
type s3Buffer struct {
	room    roomName
	since   time.Time // monotonic: when the first record came
	records []s3Record
	size    int
}

type s3Record struct {
	at   time.Time
	line []byte
}

func (l *Logger) bufferS3(t s3Target, room roomName, at time.Time, line []byte) {
	b := l.s3[t]
	if b == nil {
		b = &s3Buffer{room: room, since: time.Now()}
		l.s3[t] = b
	}
	b.records = append(b.records, s3Record{at: at, line: line})
	b.size += len(line)
	if b.size >= s3MaxBatch {
		l.seal(nil, t, b, nil)
	}
}

// sealS3 turns the buffers that are due (all of them with all) into
// objects for the uploader. A flush passes its ctx's Done and res: the
// objects wait for room in the upload queue until it is closed (instead
// of being dropped at once), and res learns how they fare.
func (l *Logger) sealS3(done <-chan struct{}, res *flushResult, all bool) {
	for t, b := range l.s3 {
		if all || time.Since(b.since) >= l.cfg.S3FlushInterval {
			l.seal(done, t, b, res)
		}
	}
}

// seal makes a buffer's objects: one per hour its records fall in, since
// the hour is in the key.
func (l *Logger) seal(done <-chan struct{}, t s3Target, b *s3Buffer, res *flushResult) {
	delete(l.s3, t)
	for len(b.records) > 0 {
		first := b.records[0].at.UTC()
		hour := first.Truncate(time.Hour)
		var raw bytes.Buffer
		n := 0
		for n < len(b.records) && b.records[n].at.UTC().Truncate(time.Hour).Equal(hour) {
			raw.Write(b.records[n].line)
			n++
		}
		b.records = b.records[n:]
		body, err := gzipped(raw.Bytes())
		if err != nil { // writing to memory: not expected
			l.warn("gzip", "chat logging: compressing an S3 object", "err", err)
			continue
		}
		j := &upload{bucket: t.bucket, key: S3Key(b.room.Account, b.room.Region, b.room.ID, first, randomHash()), body: body, records: n, config: t.config, res: res}
		res.begin()
		if !l.up.add(done, j) {
			err := fmt.Errorf("chat logging: upload queue full, %d records for s3://%s dropped", n, t.bucket)
			l.cfg.OnDestinationError(t.config, err)
			res.end(err)
			l.warn("upload-full", "chat logging: too many S3 objects waiting for the object store, records dropped",
				"bucket", t.bucket, "records", n)
		}
	}
}

func gzipped(raw []byte) ([]byte, error) {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// flushResult gathers how the work of one Flush went. A nil one
// gathers nothing.
type flushResult struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (r *flushResult) begin() {
	if r != nil {
		r.wg.Add(1)
	}
}

func (r *flushResult) end(err error) {
	if r == nil {
		return
	}
	r.add(err)
	r.wg.Done()
}

func (r *flushResult) add(err error) {
	if r == nil || err == nil {
		return
	}
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// wait returns the errors once every object of the flush is written or
// given up, or ctx's error first.
func (r *flushResult) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// upload is one S3 object to put.
type upload struct {
	bucket, key string
	body        []byte
	records     int
	config      string
	res         *flushResult
}

// uploader puts objects one at a time, in order, retrying each while the
// store fails in ways that pass (a store that is down); a bucket that does
// not exist or refuses us loses the object, as IVS's delivery would.
type uploader struct {
	store blob.Store
	log   *slog.Logger
	// failed is Config.OnDestinationError: each failed attempt.
	failed func(config string, err error)

	queue  chan *upload
	ctx    context.Context // cancelled when Close gives up
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Backoff between attempts of one object.
const (
	uploadMinBackoff = 500 * time.Millisecond
	uploadMaxBackoff = 30 * time.Second
	uploadTimeout    = 2 * time.Minute
)

func newUploader(store blob.Store, log *slog.Logger, failed func(config string, err error)) *uploader {
	ctx, cancel := context.WithCancel(context.Background())
	u := &uploader{store: store, log: log, failed: failed, queue: make(chan *upload, uploadQueue), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go u.run()
	return u
}

// add queues j. When the queue is full it waits for room until done is
// closed, with a nil done not at all; false when j was not queued.
func (u *uploader) add(done <-chan struct{}, j *upload) bool {
	select {
	case u.queue <- j:
		return true
	default:
	}
	if done == nil {
		return false
	}
	select {
	case u.queue <- j:
		return true
	case <-done:
		return false
	case <-u.ctx.Done():
		return false
	}
}

func (u *uploader) run() {
	defer close(u.done)
	for j := range u.queue {
		if err := u.ctx.Err(); err != nil {
			err = fmt.Errorf("chat logging: %d records for s3://%s/%s lost: %w", j.records, j.bucket, j.key, err)
			u.failed(j.config, err)
			j.res.end(err)
			continue
		}
		j.res.end(u.put(j))
	}
}

// put writes one object, retrying until it is written, cannot be, or the
// uploader is stopped.
func (u *uploader) put(j *upload) error {
	backoff := uploadMinBackoff
	checked := false
	for {
		ctx, cancel := context.WithTimeout(u.ctx, uploadTimeout)
		err := u.store.Put(ctx, j.bucket, j.key, bytes.NewReader(j.body), blob.Object{ContentType: "application/gzip"})
		cancel()
		if err == nil {
			u.log.Debug("chat logging: S3 object written", "bucket", j.bucket, "key", j.key, "records", j.records)
			return nil
		}
		if errors.Is(err, blob.ErrNoSuchBucket) && !checked {
			// A local store's buckets are made by checking them (and
			// nobody checks a logging configuration's bucket); an S3
			// bucket made since the last object is found again.
			checked = true
			ctx, cancel := context.WithTimeout(u.ctx, uploadTimeout)
			cerr := u.store.CheckBucket(ctx, j.bucket)
			cancel()
			if cerr == nil {
				continue
			}
			err = cerr
		}
		u.failed(j.config, err)
		if errors.Is(err, blob.ErrNoSuchBucket) || errors.Is(err, blob.ErrAccessDenied) {
			u.log.Warn("chat logging: cannot write to the bucket of an S3 logging configuration, records dropped",
				"logging_configuration", j.config, "bucket", j.bucket, "records", j.records, "err", err)
			return fmt.Errorf("chat logging: %d records for s3://%s dropped: %w", j.records, j.bucket, err)
		}
		if u.ctx.Err() != nil {
			return fmt.Errorf("chat logging: %d records for s3://%s/%s lost: %w", j.records, j.bucket, j.key, err)
		}
		u.log.Warn("chat logging: writing an S3 object failed, retrying", "bucket", j.bucket, "key", j.key, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-u.ctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, uploadMaxBackoff)
	}
}

// close waits until the queued objects are written, or ctx ends (then
// the rest is given up), and stops. The Logger's writer must have
// stopped: nothing is added any more.
func (u *uploader) close(ctx context.Context) error {
	var err error
	u.once.Do(func() {
		close(u.queue)
		select {
		case <-u.done:
		case <-ctx.Done():
			err = fmt.Errorf("chat logging: S3 objects not written before shutdown: %w", ctx.Err())
		}
		u.cancel()
		<-u.done
	})
	return err
}
