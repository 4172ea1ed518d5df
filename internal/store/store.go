// Package store persists API resources behind one interface with two
// implementations: SQLite (embedded default) and PostgreSQL (shared by a
// cluster). Services keep their own JSON document per resource; the store owns
// identity, the few indexed columns services query by, tags, quotas and
// referential rules, and it enforces them inside one transaction so that
// concurrent API calls can never break them.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Resource is one API resource as the store keeps it.
type Resource struct {
	ARN     string // primary key
	Kind    string // "channel", "stream-key", "recording-configuration", ...
	Account string
	// Name is indexed for name filters; may be empty.
	Name string
	// Parent is the ARN of the resource that owns this one (a stream key's
	// channel). It must exist at insert, and deleting the parent deletes its
	// children in the same transaction.
	Parent string
	// Refs are the ARNs this resource uses (a channel's recording
	// configuration). Each must exist when written, and a referenced
	// resource cannot be deleted (ErrReferenced).
	Refs []string
	// Unique, when not empty, is unique across all resources of the same Kind
	// (a stream key's value, a key pair's fingerprint) and can be looked up
	// with GetByUnique.
	Unique string
	Tags   map[string]string
	Doc    []byte // the owning service's JSON document
	// Events set by Insert's caller or Update's function are appended to
	// the event outbox in the same transaction as the write. They are not
	// read back.
	Events []OutboxEvent

	Seq       int64 // insertion order, assigned by Insert; increases monotonically
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Quota bounds how many resources of r.Kind may exist when inserting r.
type Quota struct {
	// Max is the largest allowed count after the insert; 0 means unlimited.
	Max int
	// PerParent counts resources of the kind with the same Parent instead of
	// the same Account.
	PerParent bool
}

// Query selects resources for List. Empty fields do not filter.
type Query struct {
	Kind     string // required
	Account  string
	Parent   string
	Name     string // exact match
	Ref      string // resources whose Refs contain this ARN
	AfterSeq int64  // only resources with Seq > AfterSeq (pagination cursor)
	// Descending lists newest first; the cursor then works the other way:
	// only resources with Seq < AfterSeq when AfterSeq > 0.
	Descending bool
	Limit      int // 0 means no limit
}

// Store is implemented by SQLite and PostgreSQL. All methods are safe for
// concurrent use.
type Store interface {
	// Insert adds r, assigning Seq, CreatedAt and UpdatedAt. Errors:
	// ErrQuotaExceeded, ErrAlreadyExists (same ARN, or same Kind+Unique),
	// *MissingError (Parent or a Ref does not exist).
	Insert(ctx context.Context, r *Resource, q Quota) error
	// Get returns the resource with that ARN or ErrNotFound.
	Get(ctx context.Context, arn string) (*Resource, error)
	// GetByUnique returns the resource of that kind with that Unique value or
	// ErrNotFound.
	GetByUnique(ctx context.Context, kind, unique string) (*Resource, error)
	// Update reads the resource, calls fn with it and writes back Name, Refs,
	// Unique, Tags and Doc as fn left them, all in one transaction; no other
	// writer of the same resource runs in between. fn's error aborts the
	// update and is returned as is. Errors also: ErrNotFound, *MissingError
	// (a new Ref does not exist), ErrAlreadyExists.
	Update(ctx context.Context, arn string, fn func(r *Resource) error) (*Resource, error)
	// Delete removes the resource and its children. Errors: ErrNotFound,
	// *ReferencedError (another resource still refers to it).
	Delete(ctx context.Context, arn string) error
	// List returns matching resources ordered by Seq (see Query.Descending).
	List(ctx context.Context, q Query) ([]*Resource, error)
	Outbox
	Close() error
}

var (
	ErrNotFound      = errors.New("store: resource not found")
	ErrAlreadyExists = errors.New("store: resource already exists")
	ErrQuotaExceeded = errors.New("store: quota exceeded")
)

// MissingError reports a Parent or Ref that does not exist.
type MissingError struct{ ARN string }

func (e *MissingError) Error() string { return fmt.Sprintf("store: %s does not exist", e.ARN) }

// ReferencedError reports that a resource cannot be deleted because another
// resource refers to it.
type ReferencedError struct{ ARN, By string }

func (e *ReferencedError) Error() string {
	return fmt.Sprintf("store: %s is referenced by %s", e.ARN, e.By)
}

// GetOrInsert returns the resource at r.ARN, inserting r when there is
// none: of several nodes racing to create it, every one gets the same
// (the first inserted). For values a cluster shares and makes on first
// use, such as a signing key.
func GetOrInsert(ctx context.Context, s Store, r *Resource) (*Resource, error) {
	for range 2 {
		got, err := s.Get(ctx, r.ARN)
		if err == nil {
			return got, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		err = s.Insert(ctx, r, Quota{})
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ErrAlreadyExists) {
			return nil, err
		}
		// Another node inserted it first: read theirs.
	}
	return nil, fmt.Errorf("store: could not get or insert %s", r.ARN)
}
