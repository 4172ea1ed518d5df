package record

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/blob"
)

// upload is one object to write: a spooled file or bytes in memory.
type upload struct {
	key         string
	file        string // local path; removed after the upload when remove is set
	remove      bool
	data        []byte
	contentType string
}

// uploader writes a recording's objects in order, one at a time, retrying
// each until it succeeds: when the object store is down, jobs (and the
// spool behind them) wait, and nothing is skipped.
type uploader struct {
	store  blob.Store
	bucket string
	log    *slog.Logger

	mu      sync.Mutex
	queue   []upload
	busy    bool
	wake    chan struct{}
	idle    chan struct{} // closed when the queue is empty and nothing runs
	lastErr error
}

// Backoff between attempts of one upload.
const (
	uploadMinBackoff = 500 * time.Millisecond
	uploadMaxBackoff = 10 * time.Second
)

func newUploader(store blob.Store, bucket string, log *slog.Logger) *uploader {
	u := &uploader{store: store, bucket: bucket, log: log, wake: make(chan struct{}, 1), idle: make(chan struct{})}
	close(u.idle)
	return u
}

// add queues a job. A queued in-memory job for the same key (an older
// playlist) is replaced rather than written twice.
func (u *uploader) add(j upload) {
	u.mu.Lock()
	replaced := false
	if j.file == "" {
		// queue[0] may be in flight: it is removed when its put returns,
		// so it must not be swapped for the newer job.
		first := 0
		if u.busy {
			first = 1
		}
		for i := first; i < len(u.queue); i++ {
			if u.queue[i].key == j.key && u.queue[i].file == "" {
				u.queue[i] = j
				replaced = true
				break
			}
		}
	}
	if !replaced {
		u.queue = append(u.queue, j)
	}
	select {
	case <-u.idle:
		u.idle = make(chan struct{})
	default:
	}
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// drained returns a channel closed once every queued job is written.
func (u *uploader) drained() <-chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.idle
}

// failing reports the last upload error while jobs are held up by it.
func (u *uploader) failing() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastErr
}

// run writes jobs until ctx ends.
func (u *uploader) run(ctx context.Context) {
	attempts := 0
	for {
		u.mu.Lock()
		if len(u.queue) == 0 {
			u.busy = false
			select {
			case <-u.idle:
			default:
				close(u.idle)
			}
			u.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-u.wake:
				continue
			}
		}
		j := u.queue[0]
		u.busy = true
		u.mu.Unlock()

		err := u.put(ctx, j)
		if err == nil {
			attempts = 0
			u.mu.Lock()
			u.queue = u.queue[1:]
			u.lastErr = nil
			u.mu.Unlock()
			if j.remove {
				_ = os.Remove(j.file)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		attempts++
		u.mu.Lock()
		u.lastErr = err
		u.mu.Unlock()
		wait := min(uploadMaxBackoff, uploadMinBackoff<<min(attempts-1, 10))
		wait = wait/2 + rand.N(wait/2+1)
		if attempts == 1 || attempts%10 == 0 {
			u.log.Warn("recording upload failed; retrying", "key", j.key, "attempts", attempts, "retry_in", wait, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (u *uploader) put(ctx context.Context, j upload) error {
	obj := blob.Object{ContentType: j.contentType}
	if j.file == "" {
		return u.store.Put(ctx, u.bucket, j.key, bytes.NewReader(j.data), obj)
	}
	f, err := os.Open(j.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil // uploaded and removed before a restart
	} else if err != nil {
		return err
	}
	defer f.Close()
	return u.store.Put(ctx, u.bucket, j.key, f, obj)
}
