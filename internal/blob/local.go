package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Local keeps objects as files on local disk: bucket/key is the file
// root/bucket/key (see the package doc for what that rules out).
type Local struct {
	root string
}

var (
	_ Store = (*Local)(nil)
	_ Store = (*S3)(nil)
)

// Modes of what Local creates: readable by the group (a web server serving
// recordings), by nobody else.
const (
	localDirMode  = 0o750
	localFileMode = 0o640
)

// NewLocal returns a store of the bucket directories under root; it does
// not touch the disk (CheckBucket creates root and buckets).
func NewLocal(root string) *Local { return &Local{root: root} }

// Root is the directory holding the bucket directories.
func (l *Local) Root() string { return l.root }

// bucketDir is the directory of an existing bucket.
func (l *Local) bucketDir(bucket string) (string, error) {
	if err := CheckBucketName(bucket); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoSuchBucket, err)
	}
	dir := filepath.Join(l.root, bucket)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return "", fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	case err != nil:
		return "", fsError(err)
	case !st.IsDir():
		return "", fmt.Errorf("%w: %s is not a directory", ErrNoSuchBucket, dir)
	}
	return dir, nil
}

// Put writes body (read from its start) as bucket/key: into a temporary
// file beside the target, synced, then renamed over it, so that readers
// see the old object or the new one and never a part. The bucket must
// exist (CheckBucket makes it); folders within it are created as needed.
func (l *Local) Put(ctx context.Context, bucket, key string, body io.ReadSeeker, _ Object) error {
	if err := l.put(ctx, bucket, key, body); err != nil {
		return fmt.Errorf("blob: putting %s/%s: %w", bucket, key, err)
	}
	return nil
}

func (l *Local) put(ctx context.Context, bucket, key string, body io.ReadSeeker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := l.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := checkLocalKey(key); err != nil {
		return fmt.Errorf("invalid key: %w", err)
	}
	path := filepath.Join(dir, filepath.FromSlash(key))
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, localDirMode); err != nil {
		return fsError(err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding the body: %w", err)
	}
	tmp, err := os.CreateTemp(parent, reservedSegment+"tmp-*")
	if err != nil {
		return fsError(err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, ctxReader{ctx, body}); err != nil {
		return err
	}
	if err := tmp.Chmod(localFileMode); err != nil {
		return fsError(err)
	}
	// Synced before the rename: after a crash the key holds the old object
	// or the whole new one, never an empty file.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		done = true
		return fsError(err)
	}
	done = true
	syncDir(parent)
	return nil
}

// syncDir makes a rename in dir durable; where directories cannot be
// synced the rename is as durable as the filesystem makes it anyway.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// ctxReader stops a copy once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get reads bucket/key whole; ErrNotFound when it does not exist,
// ErrNoSuchBucket when the bucket does not.
func (l *Local) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	body, err := l.get(ctx, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("blob: getting %s/%s: %w", bucket, key, err)
	}
	return body, nil
}

func (l *Local) get(ctx context.Context, bucket, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := l.bucketDir(bucket)
	if err != nil {
		return nil, err
	}
	if err := checkLocalKey(key); err != nil {
		// No object can have that key here.
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(key)))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, fsError(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, ErrNotFound // a folder of other keys
	}
	return io.ReadAll(ctxReader{ctx, f})
}

// List returns the keys under prefix, in key order (byte-wise, as S3).
func (l *Local) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	keys, err := l.list(ctx, bucket, prefix)
	if err != nil {
		return nil, fmt.Errorf("blob: listing %s/%s: %w", bucket, prefix, err)
	}
	return keys, nil
}

func (l *Local) list(ctx context.Context, bucket, prefix string) ([]string, error) {
	dir, err := l.bucketDir(bucket)
	if err != nil {
		return nil, err
	}
	// Walk only the deepest folder the prefix names.
	start := dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if checkLocalKey(prefix[:i]) != nil {
			return nil, nil // no key can be under it
		}
		start = filepath.Join(dir, filepath.FromSlash(prefix[:i]))
	}
	var keys []string
	err = filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return filepath.SkipAll
			}
			return fsError(err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path != start && strings.HasPrefix(d.Name(), reservedSegment) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The walk's order is not the keys' ("a/b" before "a.b").
	slices.Sort(keys)
	return keys, nil
}

// CheckBucket makes the bucket's directory (and root) when missing and
// proves it takes files by writing and removing a probe file. A directory
// that cannot be made or written to is ErrAccessDenied.
func (l *Local) CheckBucket(ctx context.Context, bucket string) error {
	if err := l.checkBucket(ctx, bucket); err != nil {
		return fmt.Errorf("blob: checking local bucket %s: %w", bucket, err)
	}
	return nil
}

func (l *Local) checkBucket(ctx context.Context, bucket string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckBucketName(bucket); err != nil {
		return fmt.Errorf("%w: %w", ErrNoSuchBucket, err)
	}
	dir := filepath.Join(l.root, bucket)
	if err := os.MkdirAll(dir, localDirMode); err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%w: %s is not a directory: %w", ErrNoSuchBucket, dir, err)
		}
		return fsError(err)
	}
	if _, err := l.bucketDir(bucket); err != nil {
		return err
	}
	probe, err := os.CreateTemp(dir, reservedSegment+"write-check-*")
	if err != nil {
		return fsError(err)
	}
	_, werr := probe.WriteString("openivs write check\n")
	cerr := probe.Close()
	rerr := os.Remove(probe.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fsError(err)
	}
	return nil
}

// fsError marks the errors that mean "not allowed to write here" (modes,
// a read-only filesystem) as ErrAccessDenied.
func fsError(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	}
	return err
}
