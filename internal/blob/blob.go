package blob

import (
	"context"
	"errors"
	"io"
)

// Store is object storage as recordings and the audit log use it: the
// S3-compatible client (S3) or a directory per bucket on local disk
// (Local).
type Store interface {
	// Put writes body (read from its start) as bucket/key, replacing it.
	Put(ctx context.Context, bucket, key string, body io.ReadSeeker, obj Object) error
	// Get reads bucket/key whole; ErrNotFound when it does not exist.
	Get(ctx context.Context, bucket, key string) ([]byte, error)
	// List returns the keys under prefix, in key order.
	List(ctx context.Context, bucket, prefix string) ([]string, error)
	// CheckBucket reports whether bucket exists and objects can be written
	// to it: ErrNoSuchBucket, ErrAccessDenied, or another error.
	CheckBucket(ctx context.Context, bucket string) error
}

// Errors of Store.
var (
	ErrNotFound     = errors.New("blob: no such object")
	ErrNoSuchBucket = errors.New("blob: no such bucket")
	ErrAccessDenied = errors.New("blob: access denied")
)
