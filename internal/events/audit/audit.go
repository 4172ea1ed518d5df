// Package audit owns the audit log, openivs's CloudTrail: every
// authenticated API call (IVS, and IVS Chat and Real-Time through the same
// hook) becomes one CloudTrail-shaped JSON record, with secrets redacted,
// appended to rotating JSON-lines files in a directory (DATA_DIR/audit by
// default), and optionally their delivery to an S3 bucket (Shipper, fed
// the files the Logger closes through Options.OnFileClosed).
//
// Delivery is lossless: Log queues the encoded record for one writer
// goroutine and returns; when the queue is full (the disk cannot keep up)
// Log blocks the API call until there is room rather than drop a record.
// The writer flushes as soon as the queue is empty and at least every
// FlushInterval, so a record reaches the file within about a second. A
// record that cannot be written (the directory is not writable, the disk is
// full) goes to the process log at error level instead, and the error is
// returned by Close.
package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
)

// Defaults of Options.
const (
	DefaultMaxFileBytes  = 64 << 20
	DefaultQueue         = 4096
	DefaultFlushInterval = 500 * time.Millisecond
)

// Options configure a Logger.
type Options struct {
	// Dir receives the files; it is created 0700 when missing.
	Dir string
	// Region is the awsRegion of every record.
	Region string
	// MaxFileBytes starts a new file before one would grow past it
	// (default 64 MiB). Files also rotate at the top of every UTC hour.
	MaxFileBytes int64
	// Queue is how many records may wait for the writer before Log blocks.
	Queue int
	// FlushInterval bounds how long a written record may sit in the buffer
	// under a steady stream of calls.
	FlushInterval time.Duration
	// OnFileClosed, when set, is called by the writer goroutine with the
	// path of every file it has finished (rotated or closed at Close). It
	// must not block for long.
	OnFileClosed func(path string)
	Now          func() time.Time
	Logger       *slog.Logger
}

// Logger writes audit records. Its methods are safe for concurrent use.
type Logger struct {
	opts  Options
	red   *Redactor
	queue chan []byte
	done  chan struct{}

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool

	// Owned by the writer goroutine until done is closed.
	file     *os.File
	buf      *bufio.Writer
	size     int64
	hourEnd  time.Time // the file rotates at this instant
	lastName string
	seq      int // suffix for a second file name in the same second
	err      error
}

// New starts a Logger writing into opts.Dir.
func New(opts Options) (*Logger, error) {
	if opts.Dir == "" {
		return nil, errors.New("audit: no directory")
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	red, err := NewRedactor()
	if err != nil {
		return nil, err
	}
	l := &Logger{opts: opts, red: red, queue: make(chan []byte, opts.Queue), done: make(chan struct{})}
	go l.run()
	return l, nil
}

// Dir is the directory the files are written to.
func (l *Logger) Dir() string { return l.opts.Dir }

// Log records one finished API call (an awsapi.Options.OnCall hook). It
// blocks only while the queue is full.
func (l *Logger) Log(rec awsapi.CallRecord) {
	line, err := NewRecord(rec, l.opts.Region, l.red).Marshal()
	if err != nil {
		l.opts.Logger.Error("audit: encoding record", "requestId", rec.RequestID, "err", err)
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		// Only a request cut off by a forced shutdown gets here.
		l.lost(line)
		return
	}
	l.queue <- line
}

// Close writes every queued record, flushes, syncs and closes the current
// file, and returns the first write error the Logger met. Later Log calls
// are not written.
func (l *Logger) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
	return l.err
}

func (l *Logger) run() {
	defer close(l.done)
	tick := time.NewTicker(l.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case line, ok := <-l.queue:
			if !ok {
				l.closeFile()
				return
			}
			l.write(line)
			if len(l.queue) == 0 {
				l.flush()
			}
		case <-tick.C:
			l.flush()
			if l.file != nil && !l.opts.Now().Before(l.hourEnd) {
				l.closeFile() // the next record opens the next hour's file
			}
		}
	}
}

func (l *Logger) write(line []byte) {
	now := l.opts.Now()
	if l.file != nil && (!now.Before(l.hourEnd) || (l.size > 0 && l.size+int64(len(line)) > l.opts.MaxFileBytes)) {
		l.closeFile()
	}
	if l.file == nil {
		if err := l.openFile(now); err != nil {
			l.fail("opening file", err)
			l.lost(line)
			return
		}
	}
	n, err := l.buf.Write(line)
	l.size += int64(n)
	if err != nil {
		l.fail("writing", err)
		l.lost(line)
		l.closeFile()
	}
}

// lost puts a record that could not be written into the process log, so
// that it survives somewhere; the next record tries a new file.
func (l *Logger) lost(line []byte) {
	l.opts.Logger.Error("audit: record not written to the audit log", "record", string(bytes.TrimSpace(line)))
}

func (l *Logger) fail(what string, err error) {
	if l.err == nil {
		l.err = fmt.Errorf("audit: %s: %w", what, err)
	}
	l.opts.Logger.Error("audit: "+what, "dir", l.opts.Dir, "err", err)
}

// openFile starts a new file named after now: audit-20261121T143000Z.jsonl
// (a second file within the same second gets _001, _002, ...).
func (l *Logger) openFile(now time.Time) error {
	now = now.UTC()
	name := "audit-" + now.Format("20060102T150405Z")
	if name == l.lastName {
		l.seq++
	} else {
		l.lastName, l.seq = name, 0
	}
	for {
		full := name
		if l.seq > 0 {
			full = fmt.Sprintf("%s_%03d", name, l.seq)
		}
		f, err := os.OpenFile(filepath.Join(l.opts.Dir, full+".jsonl"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			l.seq++ // left by an earlier run within the same second
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			// The directory went away under us: make it again, once.
			if err := os.MkdirAll(l.opts.Dir, 0o700); err != nil {
				return err
			}
			f, err = os.OpenFile(filepath.Join(l.opts.Dir, full+".jsonl"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if err != nil {
			return err
		}
		l.file, l.buf, l.size = f, bufio.NewWriterSize(f, 64<<10), 0
		l.hourEnd = now.Truncate(time.Hour).Add(time.Hour)
		return nil
	}
}

func (l *Logger) flush() {
	if l.buf == nil || l.buf.Buffered() == 0 {
		return
	}
	if err := l.buf.Flush(); err != nil {
		l.fail("writing", err)
		l.closeFile()
	}
}

// closeFile flushes, syncs and closes the current file and hands it on.
func (l *Logger) closeFile() {
	if l.file == nil {
		return
	}
	f := l.file
	if err := l.buf.Flush(); err != nil {
		l.fail("writing", err)
	}
	if err := f.Sync(); err != nil {
		l.fail("syncing", err)
	}
	if err := f.Close(); err != nil {
		l.fail("closing", err)
	}
	l.file, l.buf, l.size = nil, nil, 0
	if l.opts.OnFileClosed != nil {
		l.opts.OnFileClosed(f.Name())
	}
}
