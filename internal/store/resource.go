package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// timeLayout is how SQLite stores timestamps: UTC, fixed width, so that text
// order is time order. PostgreSQL keeps microseconds too, so both backends
// return the same instants.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// maxRetries bounds how often a transaction that lost a deadlock or
// serialization race is run again.
const maxRetries = 8

// now is the timestamp the store writes: UTC, truncated to what both
// backends keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// validateInsert rejects a resource the store cannot key.
func validateInsert(r *Resource) error {
	if r == nil {
		return errors.New("store: insert: nil resource")
	}
	if r.ARN == "" {
		return errors.New("store: insert: empty ARN")
	}
	if r.Kind == "" {
		return fmt.Errorf("store: insert %s: empty kind", r.ARN)
	}
	return nil
}

// normalizeRefs drops empty and repeated ARNs, keeping the first occurrence's
// order; it returns nil when nothing is left.
func normalizeRefs(refs []string) []string {
	var out []string
	for _, ref := range refs {
		if ref == "" || slices.Contains(out, ref) {
			continue
		}
		out = append(out, ref)
	}
	return out
}

// addedRefs returns the refs in next that are not in prev.
func addedRefs(prev, next []string) []string {
	var out []string
	for _, ref := range next {
		if !slices.Contains(prev, ref) {
			out = append(out, ref)
		}
	}
	return out
}

// dependencies lists what must exist before r is written: its parent first,
// then its refs.
func dependencies(parent string, refs []string) []string {
	var deps []string
	if parent != "" {
		deps = append(deps, parent)
	}
	for _, ref := range refs {
		if !slices.Contains(deps, ref) {
			deps = append(deps, ref)
		}
	}
	return deps
}

// firstMissing returns a MissingError for the first of want that is not in
// found, or nil.
func firstMissing(want []string, found map[string]bool) error {
	for _, a := range want {
		if !found[a] {
			return &MissingError{ARN: a}
		}
	}
	return nil
}

// encodeTags renders tags as a JSON object ("{}" when empty).
func encodeTags(tags map[string]string) (string, error) {
	if len(tags) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return "", fmt.Errorf("store: encode tags: %w", err)
	}
	return string(b), nil
}

// decodeTags parses a JSON object of tags; the result is never nil.
func decodeTags(b []byte) (map[string]string, error) {
	tags := map[string]string{}
	if len(b) == 0 || string(b) == "{}" {
		return tags, nil
	}
	if err := json.Unmarshal(b, &tags); err != nil {
		return nil, fmt.Errorf("store: decode tags: %w", err)
	}
	return tags, nil
}

// docOrEmpty keeps NOT NULL columns happy with a nil document.
func docOrEmpty(doc []byte) []byte {
	if doc == nil {
		return []byte{}
	}
	return doc
}

// clone returns a deep copy of r, so that Update's fn cannot alias what the
// store holds.
func clone(r *Resource) *Resource {
	c := *r
	c.Refs = slices.Clone(r.Refs)
	c.Tags = maps.Clone(r.Tags)
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	c.Doc = slices.Clone(r.Doc)
	return &c
}

// ctxErr wraps a context error so that errors.Is still finds it.
func ctxErr(op string, err error) error {
	return fmt.Errorf("store: %s: %w", op, err)
}
