package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/blob"
)

// Uploader writes objects to a bucket (blob.S3 does).
type Uploader interface {
	Put(ctx context.Context, bucket, key string, body io.ReadSeeker, obj blob.Object) error
}

// ShipperOptions configure a Shipper.
type ShipperOptions struct {
	// Dir is the audit directory; files already in it when the Shipper
	// starts were closed by an earlier run and are shipped first.
	Dir     string
	Bucket  string
	Account string
	Region  string
	Store   Uploader
	// MinBackoff and MaxBackoff bound the wait between failed attempts
	// (defaults 1 s and 1 min).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Shipper delivers closed audit files to an S3 bucket, gzipped, under
// CloudTrail's layout:
//
//	AWSLogs/<account>/openivs/<region>/<yyyy>/<MM>/<dd>/audit-<time>.jsonl.gz
//
// (the date is the file's, UTC). A file is deleted locally only after its
// upload succeeded; failed uploads are retried with exponential backoff, and
// files still pending at Close stay on disk for the next start. Only one
// node may use an audit directory.
type Shipper struct {
	opts ShipperOptions

	mu      sync.Mutex
	pending []string // paths, oldest first

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	runCtx    context.Context
	cancelRun context.CancelFunc
	closeOnce sync.Once
}

// NewShipper queues the audit files already in opts.Dir and starts
// delivering. Hand it every file the Logger closes (Options.OnFileClosed =
// Shipper.Add); it must be created before that Logger opens its first file.
func NewShipper(opts ShipperOptions) (*Shipper, error) {
	if opts.Store == nil || opts.Bucket == "" || opts.Dir == "" {
		return nil, errors.New("audit: shipper needs a directory, a store and a bucket")
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(time.Minute, opts.MinBackoff)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	left, err := filepath.Glob(filepath.Join(opts.Dir, "audit-*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(left)
	s := &Shipper{opts: opts, pending: left, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	if len(left) > 0 {
		opts.Logger.Info("audit: shipping files left by an earlier run", "files", len(left), "bucket", opts.Bucket)
	}
	go s.run()
	return s, nil
}

// Add queues a closed audit file. It never blocks.
func (s *Shipper) Add(path string) {
	s.mu.Lock()
	s.pending = append(s.pending, path)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Pending is how many files wait for delivery.
func (s *Shipper) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Close tries to deliver what is pending until ctx ends, then stops. Files
// it could not deliver stay in the directory for the next start.
func (s *Shipper) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancelRun()
		<-s.done
	}
	s.cancelRun()
	if n := s.Pending(); n > 0 {
		return fmt.Errorf("audit: %d files not delivered to s3://%s (kept in %s for the next start)", n, s.opts.Bucket, s.opts.Dir)
	}
	return nil
}

func (s *Shipper) run() {
	defer close(s.done)
	backoff := s.opts.MinBackoff
	for {
		path, ok := s.next()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		err := s.ship(s.runCtx, path)
		if err == nil {
			backoff = s.opts.MinBackoff
			continue
		}
		select {
		case <-s.stop:
			// Closing: one more try of everything, no more waiting.
			for {
				path, ok := s.next()
				if !ok || s.ship(s.runCtx, path) != nil {
					return
				}
			}
		default:
		}
		s.opts.Logger.Warn("audit: upload failed, retrying", "file", filepath.Base(path), "bucket", s.opts.Bucket, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
}

func (s *Shipper) next() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return "", false
	}
	return s.pending[0], true
}

// dequeue drops path, the head of the queue, once it is delivered or gone.
func (s *Shipper) dequeue(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 && s.pending[0] == path {
		s.pending = s.pending[1:]
	}
}

// ship uploads one file and deletes it.
func (s *Shipper) ship(ctx context.Context, path string) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s.opts.Logger.Warn("audit: file to ship is gone", "file", path)
		s.dequeue(path)
		return nil
	}
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Name = filepath.Base(path)
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	key := ObjectKey(s.opts.Account, s.opts.Region, path, time.Now())
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.opts.Store.Put(ctx, s.opts.Bucket, key, bytes.NewReader(gz.Bytes()), blob.Object{ContentType: "application/gzip"}); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Delivered; a second delivery after a restart only repeats it.
		s.opts.Logger.Error("audit: removing a shipped file", "file", path, "err", err)
	}
	s.dequeue(path)
	s.opts.Logger.Debug("audit: shipped", "file", filepath.Base(path), "key", key)
	return nil
}

// ObjectKey is where an audit file goes in the bucket. The date comes from
// the file name (when the file was opened), or fallback.
func ObjectKey(account, region, path string, fallback time.Time) string {
	name := filepath.Base(path)
	at := fallback
	stamp := strings.TrimPrefix(name, "audit-")
	if len(stamp) >= len("20060102T150405Z") {
		if t, err := time.Parse("20060102T150405Z", stamp[:len("20060102T150405Z")]); err == nil {
			at = t
		}
	}
	at = at.UTC()
	return fmt.Sprintf("AWSLogs/%s/openivs/%s/%04d/%02d/%02d/%s.gz", account, region, at.Year(), int(at.Month()), at.Day(), name)
}
