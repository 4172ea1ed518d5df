package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// location names a store for Open: a DSN and a data directory.
type location struct{ dsn, dataDir string }

// runSuite checks the Store contract against one backend. fresh returns the
// location of a new, empty store each time it is called.
func runSuite(t *testing.T, fresh func(t *testing.T) location) {
	open := func(t *testing.T) Store {
		t.Helper()
		return openAt(t, fresh(t))
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"InsertGetRoundTrip", testInsertGetRoundTrip},
		{"InsertValidation", testInsertValidation},
		{"InsertAlreadyExists", testInsertAlreadyExists},
		{"InsertMissing", testInsertMissing},
		{"GetByUnique", testGetByUnique},
		{"TagsRoundTrip", testTagsRoundTrip},
		{"SeqMonotonic", testSeqMonotonic},
		{"Update", testUpdate},
		{"UpdateErrors", testUpdateErrors},
		{"UpdateRefs", testUpdateRefs},
		{"Delete", testDelete},
		{"DeleteReferenced", testDeleteReferenced},
		{"List", testList},
		{"ListPagination", testListPagination},
		{"Quota", testQuota},
		{"ContextCancelled", testContextCancelled},
		{"OddInput", testOddInput},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"ConcurrentQuota", testConcurrentQuota},
		{"ConcurrentParentDelete", testConcurrentParentDelete},
		{"ConcurrentRefDelete", testConcurrentRefDelete},
		{"ConcurrentGetOrInsert", testConcurrentGetOrInsert},
		{"OutboxWithWrites", testOutboxWithWrites},
		{"OutboxSettle", testOutboxSettle},
		{"OutboxSkipAndCompact", testOutboxSkipAndCompact},
		{"OutboxPrune", testOutboxPrune},
		{"SinkLease", testSinkLease},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		testReopen(t, fresh(t))
	})
}

func openAt(t *testing.T, loc location) Store {
	t.Helper()
	s, err := Open(t.Context(), loc.dsn, loc.dataDir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustInsert(t *testing.T, s Store, r *Resource, q Quota) *Resource {
	t.Helper()
	if err := s.Insert(t.Context(), r, q); err != nil {
		t.Fatalf("Insert %s: %v", r.ARN, err)
	}
	return r
}

func mustGet(t *testing.T, s Store, arn string) *Resource {
	t.Helper()
	r, err := s.Get(t.Context(), arn)
	if err != nil {
		t.Fatalf("Get %s: %v", arn, err)
	}
	return r
}

func channel(arn string) *Resource {
	return &Resource{ARN: arn, Kind: "channel", Account: "111", Name: "n-" + arn, Doc: []byte(`{"arn":"` + arn + `"}`)}
}

func arns(rs []*Resource) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ARN)
	}
	return out
}

func wantMissing(t *testing.T, err error, arn string) {
	t.Helper()
	var me *MissingError
	if !errors.As(err, &me) || me.ARN != arn {
		t.Fatalf("err = %v, want *MissingError{%s}", err, arn)
	}
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

func testInsertGetRoundTrip(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, channel("p"), Quota{})
	mustInsert(t, s, channel("ref1"), Quota{})
	mustInsert(t, s, channel("ref2"), Quota{})
	before := time.Now()
	in := &Resource{
		ARN: "arn:aws:ivs:us-west-2:111:stream-key/abc", Kind: "stream-key", Account: "111",
		Name: "key", Parent: "p", Refs: []string{"ref2", "ref1", "ref2"}, Unique: "sk_secret",
		Tags: map[string]string{"a": "1", "ünï": "cödé"}, Doc: []byte{0, 1, 2, 255, '{'},
	}
	if err := s.Insert(ctx, in, Quota{Max: 5, PerParent: true}); err != nil {
		t.Fatal(err)
	}
	if in.Seq <= 0 || in.CreatedAt.IsZero() || !in.UpdatedAt.Equal(in.CreatedAt) {
		t.Fatalf("Insert did not assign Seq/timestamps: %+v", in)
	}
	if in.CreatedAt.Before(before.Add(-time.Second)) || in.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("CreatedAt %v not around now", in.CreatedAt)
	}
	got := mustGet(t, s, in.ARN)
	want := *in
	want.Refs = []string{"ref2", "ref1"} // de-duplicated, order kept
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("Get:\n got %+v\nwant %+v", got, &want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}
	// A resource with nothing optional set.
	bare := mustInsert(t, s, &Resource{ARN: "bare", Kind: "k"}, Quota{})
	got = mustGet(t, s, "bare")
	if got.Tags == nil || len(got.Tags) != 0 || got.Refs != nil || got.Doc != nil || got.Parent != "" || got.Seq != bare.Seq {
		t.Fatalf("bare resource round trip: %+v", got)
	}
	_, err := s.Get(ctx, "nope")
	wantIs(t, err, ErrNotFound)
}

func testInsertValidation(t *testing.T, s Store) {
	for _, r := range []*Resource{nil, {Kind: "k"}, {ARN: "a"}} {
		if err := s.Insert(t.Context(), r, Quota{}); err == nil {
			t.Fatalf("Insert(%+v) succeeded", r)
		}
	}
}

func testInsertAlreadyExists(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, &Resource{ARN: "a", Kind: "k", Unique: "u"}, Quota{})
	wantIs(t, s.Insert(ctx, &Resource{ARN: "a", Kind: "k"}, Quota{}), ErrAlreadyExists)
	wantIs(t, s.Insert(ctx, &Resource{ARN: "a", Kind: "other"}, Quota{}), ErrAlreadyExists)
	wantIs(t, s.Insert(ctx, &Resource{ARN: "b", Kind: "k", Unique: "u"}, Quota{}), ErrAlreadyExists)
	// Unique is per kind, and empty is not a value.
	mustInsert(t, s, &Resource{ARN: "c", Kind: "k2", Unique: "u"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "d", Kind: "k"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "e", Kind: "k"}, Quota{})
	// A failed insert leaves nothing behind and does not disturb the original.
	if _, err := s.Get(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after failed insert: %v", err)
	}
	if r := mustGet(t, s, "a"); r.Kind != "k" || r.Unique != "u" {
		t.Fatalf("original changed: %+v", r)
	}
}

func testInsertMissing(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, channel("p"), Quota{})
	wantMissing(t, s.Insert(ctx, &Resource{ARN: "c", Kind: "k", Parent: "nope"}, Quota{}), "nope")
	wantMissing(t, s.Insert(ctx, &Resource{ARN: "c", Kind: "k", Parent: "p", Refs: []string{"p", "gone"}}, Quota{}), "gone")
	// The parent is reported before refs.
	wantMissing(t, s.Insert(ctx, &Resource{ARN: "c", Kind: "k", Parent: "np", Refs: []string{"gone"}}, Quota{}), "np")
	// A resource cannot be its own parent or refer to itself before it exists.
	wantMissing(t, s.Insert(ctx, &Resource{ARN: "self", Kind: "k", Parent: "self"}, Quota{}), "self")
	wantMissing(t, s.Insert(ctx, &Resource{ARN: "self", Kind: "k", Refs: []string{"self"}}, Quota{}), "self")
	if _, err := s.Get(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after failed insert: %v", err)
	}
	// Missing dependencies are reported before quota.
	wantMissing(t, s.Insert(ctx, &Resource{ARN: "c", Kind: "k", Parent: "nope"}, Quota{Max: 1, PerParent: true}), "nope")
}

func testGetByUnique(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, &Resource{ARN: "a", Kind: "k", Unique: "u1"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "b", Kind: "k2", Unique: "u1"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "c", Kind: "k"}, Quota{})
	r, err := s.GetByUnique(ctx, "k", "u1")
	if err != nil || r.ARN != "a" {
		t.Fatalf("GetByUnique(k, u1) = %v, %v", r, err)
	}
	r, err = s.GetByUnique(ctx, "k2", "u1")
	if err != nil || r.ARN != "b" {
		t.Fatalf("GetByUnique(k2, u1) = %v, %v", r, err)
	}
	_, err = s.GetByUnique(ctx, "k", "nope")
	wantIs(t, err, ErrNotFound)
	_, err = s.GetByUnique(ctx, "k", "")
	wantIs(t, err, ErrNotFound)
	_, err = s.GetByUnique(ctx, "k3", "u1")
	wantIs(t, err, ErrNotFound)
}

func testTagsRoundTrip(t *testing.T, s Store) {
	cases := []map[string]string{
		nil,
		{},
		{"k": ""},
		{"": "empty key"},
		{"aws:x": `q"uote\back`, "emoji": "🎥", "long": string(bytes.Repeat([]byte("v"), 256))},
	}
	many := map[string]string{}
	for i := range 50 {
		many["key"+strconv.Itoa(i)] = "value" + strconv.Itoa(i)
	}
	cases = append(cases, many)
	for i, tags := range cases {
		arn := "t" + strconv.Itoa(i)
		mustInsert(t, s, &Resource{ARN: arn, Kind: "k", Tags: tags}, Quota{})
		got := mustGet(t, s, arn).Tags
		want := tags
		if want == nil {
			want = map[string]string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tags %d: got %v, want %v", i, got, want)
		}
	}
	// Tags survive Update both ways.
	r, err := s.Update(t.Context(), "t0", func(r *Resource) error {
		r.Tags["new"] = "v"
		return nil
	})
	if err != nil || !reflect.DeepEqual(r.Tags, map[string]string{"new": "v"}) {
		t.Fatalf("Update tags = %v, %v", r, err)
	}
	if got := mustGet(t, s, "t0").Tags; !reflect.DeepEqual(got, map[string]string{"new": "v"}) {
		t.Fatalf("tags after update: %v", got)
	}
	if _, err := s.Update(t.Context(), "t0", func(r *Resource) error { r.Tags = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "t0").Tags; got == nil || len(got) != 0 {
		t.Fatalf("tags after clearing: %#v", got)
	}
}

func testSeqMonotonic(t *testing.T, s Store) {
	var last int64
	for i := range 5 {
		r := mustInsert(t, s, &Resource{ARN: "s" + strconv.Itoa(i), Kind: "k"}, Quota{})
		if r.Seq <= last {
			t.Fatalf("seq %d after %d", r.Seq, last)
		}
		last = r.Seq
	}
	// Deleting the newest must not let its Seq be handed out again.
	if err := s.Delete(t.Context(), "s4"); err != nil {
		t.Fatal(err)
	}
	if r := mustInsert(t, s, &Resource{ARN: "s5", Kind: "other"}, Quota{}); r.Seq <= last {
		t.Fatalf("seq %d reused after delete (last %d)", r.Seq, last)
	}
}

func testUpdate(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, channel("p"), Quota{})
	mustInsert(t, s, channel("r1"), Quota{})
	orig := mustInsert(t, s, &Resource{ARN: "a", Kind: "k", Account: "111", Name: "old", Parent: "p",
		Unique: "u", Tags: map[string]string{"x": "1"}, Doc: []byte(`{"v":1}`)}, Quota{})
	time.Sleep(2 * time.Millisecond)
	var seen *Resource
	got, err := s.Update(ctx, "a", func(r *Resource) error {
		seen = clone(r)
		r.Name = "new"
		r.Unique = "u2"
		r.Refs = []string{"r1"}
		r.Tags = map[string]string{"y": "2"}
		r.Doc = []byte(`{"v":2}`)
		// The store owns these; fn's changes are ignored.
		r.ARN, r.Kind, r.Account, r.Parent, r.Seq = "x", "x", "x", "", 99
		r.CreatedAt = time.Time{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seen, orig) {
		t.Fatalf("fn saw\n %+v\nwant\n %+v", seen, orig)
	}
	want := &Resource{ARN: "a", Kind: "k", Account: "111", Name: "new", Parent: "p", Unique: "u2",
		Refs: []string{"r1"}, Tags: map[string]string{"y": "2"}, Doc: []byte(`{"v":2}`),
		Seq: orig.Seq, CreatedAt: orig.CreatedAt, UpdatedAt: got.UpdatedAt}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Update returned\n %+v\nwant\n %+v", got, want)
	}
	if !got.UpdatedAt.After(orig.UpdatedAt) {
		t.Fatalf("UpdatedAt %v not after %v", got.UpdatedAt, orig.UpdatedAt)
	}
	if stored := mustGet(t, s, "a"); !reflect.DeepEqual(stored, got) {
		t.Fatalf("Get after Update\n %+v\nwant\n %+v", stored, got)
	}
	if r, err := s.GetByUnique(ctx, "k", "u2"); err != nil || r.ARN != "a" {
		t.Fatalf("GetByUnique new value: %v %v", r, err)
	}
	if _, err := s.GetByUnique(ctx, "k", "u"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetByUnique old value: %v", err)
	}
	// fn's modifications of the slice it was given must not leak into the store.
	_, err = s.Update(ctx, "a", func(r *Resource) error {
		r.Doc[0] = 'X'
		return errors.New("abort")
	})
	if err == nil {
		t.Fatal("aborted update succeeded")
	}
	if r := mustGet(t, s, "a"); string(r.Doc) != `{"v":2}` {
		t.Fatalf("aborted update changed doc: %q", r.Doc)
	}
}

func testUpdateErrors(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, &Resource{ARN: "a", Kind: "k", Unique: "ua", Doc: []byte("1")}, Quota{})
	mustInsert(t, s, &Resource{ARN: "b", Kind: "k", Unique: "ub"}, Quota{})
	_, err := s.Update(ctx, "nope", func(r *Resource) error { return nil })
	wantIs(t, err, ErrNotFound)

	sentinel := errors.New("service says no")
	_, err = s.Update(ctx, "a", func(r *Resource) error { r.Doc = []byte("2"); return sentinel })
	if err != sentinel {
		t.Fatalf("fn error returned as %v, want it as is", err)
	}
	var custom *ReferencedError
	_, err = s.Update(ctx, "a", func(r *Resource) error { return &ReferencedError{ARN: "z"} })
	if !errors.As(err, &custom) || custom.ARN != "z" {
		t.Fatalf("typed fn error returned as %v", err)
	}

	_, err = s.Update(ctx, "a", func(r *Resource) error { r.Refs = []string{"ghost"}; r.Doc = []byte("3"); return nil })
	wantMissing(t, err, "ghost")
	_, err = s.Update(ctx, "a", func(r *Resource) error { r.Unique = "ub"; r.Doc = []byte("4"); return nil })
	wantIs(t, err, ErrAlreadyExists)

	if r := mustGet(t, s, "a"); string(r.Doc) != "1" || r.Unique != "ua" || r.Refs != nil {
		t.Fatalf("failed updates changed the resource: %+v", r)
	}
	// A resource may refer to itself once it exists.
	if _, err := s.Update(ctx, "a", func(r *Resource) error { r.Refs = []string{"a"}; return nil }); err != nil {
		t.Fatalf("self ref: %v", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("delete self-referring resource: %v", err)
	}
}

func testUpdateRefs(t *testing.T, s Store) {
	ctx := t.Context()
	for _, a := range []string{"r1", "r2", "r3"} {
		mustInsert(t, s, channel(a), Quota{})
	}
	mustInsert(t, s, &Resource{ARN: "a", Kind: "k", Refs: []string{"r1", "r2"}}, Quota{})
	got, err := s.Update(ctx, "a", func(r *Resource) error { r.Refs = []string{"r3", "r2", "r3"}; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Refs, []string{"r3", "r2"}) {
		t.Fatalf("refs = %v", got.Refs)
	}
	// r1 is no longer referenced; r2 and r3 are.
	if err := s.Delete(ctx, "r1"); err != nil {
		t.Fatalf("delete dropped ref: %v", err)
	}
	var re *ReferencedError
	if err := s.Delete(ctx, "r3"); !errors.As(err, &re) || re.ARN != "r3" || re.By != "a" {
		t.Fatalf("delete r3: %v", err)
	}
	for ref, want := range map[string][]string{"r1": {}, "r2": {"a"}, "r3": {"a"}} {
		l, err := s.List(ctx, Query{Kind: "k", Ref: ref})
		if err != nil || !reflect.DeepEqual(arns(l), want) {
			t.Fatalf("List Ref=%s = %v, %v; want %v", ref, arns(l), err, want)
		}
	}
	if _, err := s.Update(ctx, "a", func(r *Resource) error { r.Refs = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, s, "a"); r.Refs != nil {
		t.Fatalf("refs after clearing = %#v", r.Refs)
	}
	if err := s.Delete(ctx, "r3"); err != nil {
		t.Fatalf("delete r3 after clearing refs: %v", err)
	}
}

func testDelete(t *testing.T, s Store) {
	ctx := t.Context()
	wantIs(t, s.Delete(ctx, "nope"), ErrNotFound)
	mustInsert(t, s, channel("p"), Quota{})
	mustInsert(t, s, channel("other"), Quota{})
	mustInsert(t, s, &Resource{ARN: "c1", Kind: "key", Parent: "p", Unique: "v1"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "c2", Kind: "key", Parent: "p", Refs: []string{"other"}}, Quota{})
	mustInsert(t, s, &Resource{ARN: "g1", Kind: "sub", Parent: "c1", Refs: []string{"p", "c2"}}, Quota{})
	mustInsert(t, s, &Resource{ARN: "c3", Kind: "key", Parent: "other"}, Quota{})

	// References inside the deleted tree do not block it.
	if err := s.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"p", "c1", "c2", "g1"} {
		if _, err := s.Get(ctx, a); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get %s after deleting its ancestor: %v", a, err)
		}
	}
	if _, err := s.GetByUnique(ctx, "key", "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetByUnique of deleted child: %v", err)
	}
	mustGet(t, s, "other")
	mustGet(t, s, "c3")
	// The refs rows of deleted resources are gone: "other" is free again...
	if l, err := s.List(ctx, Query{Kind: "key", Ref: "other"}); err != nil || len(l) != 0 {
		t.Fatalf("List Ref=other after delete = %v, %v", arns(l), err)
	}
	// ...and the ARNs can be used again.
	mustInsert(t, s, channel("p"), Quota{})
	mustInsert(t, s, &Resource{ARN: "c1", Kind: "key", Parent: "p", Unique: "v1"}, Quota{})
	wantIs(t, s.Delete(ctx, "c2"), ErrNotFound)
	if err := s.Delete(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	wantIs(t, s.Delete(ctx, "other"), ErrNotFound)
	wantIs(t, s.Delete(ctx, "c3"), ErrNotFound)
}

func testDeleteReferenced(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, channel("cfg"), Quota{})
	mustInsert(t, s, channel("ch"), Quota{})
	mustInsert(t, s, &Resource{ARN: "key", Kind: "key", Parent: "ch"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "user", Kind: "k", Refs: []string{"cfg"}}, Quota{})
	mustInsert(t, s, &Resource{ARN: "keyuser", Kind: "k", Refs: []string{"key"}}, Quota{})

	var re *ReferencedError
	if err := s.Delete(ctx, "cfg"); !errors.As(err, &re) || re.ARN != "cfg" || re.By != "user" {
		t.Fatalf("Delete cfg = %v, want ReferencedError by user", err)
	}
	// A child referenced from outside blocks its parent's delete.
	if err := s.Delete(ctx, "ch"); !errors.As(err, &re) || re.ARN != "key" || re.By != "keyuser" {
		t.Fatalf("Delete ch = %v, want ReferencedError key by keyuser", err)
	}
	mustGet(t, s, "cfg")
	mustGet(t, s, "ch")
	mustGet(t, s, "key")
	if err := s.Delete(ctx, "user"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "cfg"); err != nil {
		t.Fatalf("Delete cfg after its user: %v", err)
	}
	if err := s.Delete(ctx, "keyuser"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "ch"); err != nil {
		t.Fatalf("Delete ch after keyuser: %v", err)
	}
}

func testList(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, &Resource{ARN: "cfg", Kind: "cfg", Account: "1"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "c1", Kind: "ch", Account: "1", Name: "alpha", Refs: []string{"cfg"}}, Quota{})
	mustInsert(t, s, &Resource{ARN: "c2", Kind: "ch", Account: "1", Name: "beta"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "c3", Kind: "ch", Account: "2", Name: "alpha", Refs: []string{"cfg"}}, Quota{})
	mustInsert(t, s, &Resource{ARN: "k1", Kind: "key", Account: "1", Parent: "c1"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "k2", Kind: "key", Account: "1", Parent: "c2"}, Quota{})
	mustInsert(t, s, &Resource{ARN: "k3", Kind: "key", Account: "1", Parent: "c1"}, Quota{})
	cases := []struct {
		q    Query
		want []string
	}{
		{Query{Kind: "ch"}, []string{"c1", "c2", "c3"}},
		{Query{Kind: "ch", Account: "1"}, []string{"c1", "c2"}},
		{Query{Kind: "ch", Account: "3"}, []string{}},
		{Query{Kind: "ch", Name: "alpha"}, []string{"c1", "c3"}},
		{Query{Kind: "ch", Name: "alpha", Account: "2"}, []string{"c3"}},
		{Query{Kind: "ch", Ref: "cfg"}, []string{"c1", "c3"}},
		{Query{Kind: "ch", Ref: "cfg", Account: "1"}, []string{"c1"}},
		{Query{Kind: "ch", Ref: "nope"}, []string{}},
		{Query{Kind: "key", Parent: "c1"}, []string{"k1", "k3"}},
		{Query{Kind: "key", Parent: "c2", Account: "1"}, []string{"k2"}},
		{Query{Kind: "ch", Parent: "c1"}, []string{}},
		{Query{Kind: "none"}, []string{}},
		{Query{Kind: "ch", Descending: true}, []string{"c3", "c2", "c1"}},
		{Query{Kind: "ch", Limit: 2}, []string{"c1", "c2"}},
		{Query{Kind: "ch", Limit: -1}, []string{"c1", "c2", "c3"}},
	}
	for _, tc := range cases {
		got, err := s.List(ctx, tc.q)
		if err != nil {
			t.Fatalf("List(%+v): %v", tc.q, err)
		}
		if !reflect.DeepEqual(arns(got), tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.q, arns(got), tc.want)
		}
	}
	got, err := s.List(ctx, Query{Kind: "ch", Name: "alpha", Account: "1"})
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], mustGet(t, s, "c1")) {
		t.Fatalf("List returns full resources: %+v %v", got, err)
	}
	if _, err := s.List(ctx, Query{}); err == nil {
		t.Fatal("List without Kind succeeded")
	}
}

func testListPagination(t *testing.T, s Store) {
	ctx := t.Context()
	var all []string
	for i := range 23 {
		r := mustInsert(t, s, &Resource{ARN: fmt.Sprintf("r%02d", i), Kind: "k", Account: "1"}, Quota{})
		all = append(all, r.ARN)
		mustInsert(t, s, &Resource{ARN: fmt.Sprintf("x%02d", i), Kind: "k", Account: "2"}, Quota{})
	}
	for _, desc := range []bool{false, true} {
		var got []string
		var cursor int64
		pages := 0
		for {
			page, err := s.List(ctx, Query{Kind: "k", Account: "1", AfterSeq: cursor, Limit: 5, Descending: desc})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			got = append(got, arns(page)...)
			if len(page) < 5 {
				break
			}
			cursor = page[len(page)-1].Seq
		}
		want := all
		if desc {
			want = nil
			for i := len(all) - 1; i >= 0; i-- {
				want = append(want, all[i])
			}
		}
		if !reflect.DeepEqual(got, want) || pages != 5 {
			t.Fatalf("descending=%v: paged %v in %d pages, want %v", desc, got, pages, want)
		}
	}
}

func testQuota(t *testing.T, s Store) {
	ctx := t.Context()
	q := Quota{Max: 2}
	mustInsert(t, s, &Resource{ARN: "a1", Kind: "ch", Account: "1"}, q)
	mustInsert(t, s, &Resource{ARN: "a2", Kind: "ch", Account: "1"}, q)
	wantIs(t, s.Insert(ctx, &Resource{ARN: "a3", Kind: "ch", Account: "1"}, q), ErrQuotaExceeded)
	// Other accounts and kinds have their own count; Max 0 is unlimited.
	mustInsert(t, s, &Resource{ARN: "b1", Kind: "ch", Account: "2"}, q)
	mustInsert(t, s, &Resource{ARN: "o1", Kind: "other", Account: "1"}, q)
	mustInsert(t, s, &Resource{ARN: "a3", Kind: "ch", Account: "1"}, Quota{})
	// Over quota already: still refused.
	wantIs(t, s.Insert(ctx, &Resource{ARN: "a4", Kind: "ch", Account: "1"}, q), ErrQuotaExceeded)
	if err := s.Delete(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a2"); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s, &Resource{ARN: "a4", Kind: "ch", Account: "1"}, q)

	// Per parent.
	pq := Quota{Max: 1, PerParent: true}
	mustInsert(t, s, &Resource{ARN: "k1", Kind: "key", Account: "1", Parent: "a3"}, pq)
	wantIs(t, s.Insert(ctx, &Resource{ARN: "k2", Kind: "key", Account: "1", Parent: "a3"}, pq), ErrQuotaExceeded)
	mustInsert(t, s, &Resource{ARN: "k3", Kind: "key", Account: "1", Parent: "a4"}, pq)
	// Per parent with no parent counts the parentless ones.
	mustInsert(t, s, &Resource{ARN: "n1", Kind: "key", Account: "1"}, pq)
	wantIs(t, s.Insert(ctx, &Resource{ARN: "n2", Kind: "key", Account: "1"}, pq), ErrQuotaExceeded)
	if l, _ := s.List(ctx, Query{Kind: "key"}); len(l) != 3 {
		t.Fatalf("keys = %v", arns(l))
	}
}

func testContextCancelled(t *testing.T, s Store) {
	mustInsert(t, s, &Resource{ARN: "a", Kind: "k"}, Quota{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"Insert": func() error { return s.Insert(ctx, &Resource{ARN: "b", Kind: "k"}, Quota{}) },
		"Get":    func() error { _, err := s.Get(ctx, "a"); return err },
		"GetByUnique": func() error {
			_, err := s.GetByUnique(ctx, "k", "u")
			return err
		},
		"Update": func() error {
			_, err := s.Update(ctx, "a", func(r *Resource) error { return nil })
			return err
		},
		"Delete": func() error { return s.Delete(ctx, "a") },
		"List":   func() error { _, err := s.List(ctx, Query{Kind: "k"}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with cancelled context: %v, want context.Canceled", name, err)
		}
	}
	// A context cancelled while fn runs aborts the update.
	ctx, cancel = context.WithCancel(t.Context())
	_, err := s.Update(ctx, "a", func(r *Resource) error { r.Name = "changed"; cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update cancelled in fn: %v", err)
	}
	if r := mustGet(t, s, "a"); r.Name != "" {
		t.Errorf("cancelled update was written: %+v", r)
	}
	// The store still works.
	mustInsert(t, s, &Resource{ARN: "b", Kind: "k"}, Quota{})
}

// testOddInput feeds values a careless service might pass; the store must
// answer with a result or an error, never a panic.
func testOddInput(t *testing.T, s Store) {
	ctx := t.Context()
	odd := []string{"'; DROP TABLE resources; --", `"`, "\\", "%", "?", "$1", "ü", "\x00", "\xff\xfe", string(bytes.Repeat([]byte("a"), 10000))}
	for i, v := range odd {
		r := &Resource{ARN: v, Kind: v, Account: v, Name: v, Unique: v, Tags: map[string]string{v: v}, Doc: []byte(v)}
		if err := s.Insert(ctx, r, Quota{Max: 100}); err != nil {
			t.Logf("Insert odd %d: %v", i, err)
			continue
		}
		got, err := s.Get(ctx, v)
		if err != nil || got.Name != v || string(got.Doc) != v {
			t.Errorf("odd %d round trip: %+v %v", i, got, err)
		}
	}
	for _, v := range odd {
		_, _ = s.Get(ctx, v)
		_, _ = s.GetByUnique(ctx, v, v)
		_, _ = s.List(ctx, Query{Kind: v, Account: v, Parent: v, Name: v, Ref: v, AfterSeq: -1, Limit: -5})
		_, _ = s.Update(ctx, v, func(r *Resource) error { r.Refs = []string{v, ""}; return nil })
		_ = s.Insert(ctx, &Resource{ARN: v + "child", Kind: "k", Parent: v, Refs: []string{v}}, Quota{Max: -1})
		_ = s.Delete(ctx, v)
	}
	if _, err := s.Update(ctx, "missing", nil); err == nil {
		t.Error("Update with nil fn succeeded")
	}
	mustInsert(t, s, &Resource{ARN: "ok", Kind: "k"}, Quota{})
	if _, err := s.Update(ctx, "ok", nil); err == nil {
		t.Error("Update with nil fn succeeded")
	}
	// Doc is opaque bytes, not necessarily JSON.
	if _, err := s.Update(ctx, "ok", func(r *Resource) error { r.Doc = []byte{0, 0xff}; return nil }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustGet(t, s, "ok").Doc, []byte{0, 0xff}) {
		t.Fatal("binary doc did not round trip")
	}
}

func testConcurrentUpdate(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, &Resource{ARN: "counter", Kind: "k", Doc: []byte(`{"n":0}`)}, Quota{})
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.Update(ctx, "counter", func(r *Resource) error {
				var d struct{ N int }
				if err := json.Unmarshal(r.Doc, &d); err != nil {
					return err
				}
				d.N++
				b, err := json.Marshal(map[string]int{"n": d.N})
				r.Doc = b
				return err
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := string(mustGet(t, s, "counter").Doc); got != fmt.Sprintf(`{"n":%d}`, n) {
		t.Fatalf("counter = %s after %d concurrent increments", got, n)
	}
}

func testConcurrentQuota(t *testing.T, s Store) {
	ctx := t.Context()
	mustInsert(t, s, channel("p"), Quota{})
	const goroutines, max = 40, 25
	for _, perParent := range []bool{false, true} {
		kind := "acct"
		if perParent {
			kind = "child"
		}
		var ok, over atomic.Int32
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				r := &Resource{ARN: fmt.Sprintf("%s-%d", kind, i), Kind: kind, Account: "1", Parent: "p"}
				switch err := s.Insert(ctx, r, Quota{Max: max, PerParent: perParent}); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrQuotaExceeded):
					over.Add(1)
				default:
					t.Errorf("Insert: %v", err)
				}
			})
		}
		wg.Wait()
		l, err := s.List(ctx, Query{Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		if ok.Load() != max || over.Load() != goroutines-max || len(l) != max {
			t.Fatalf("perParent=%v: %d inserted, %d over quota, %d stored; want %d, %d, %d",
				perParent, ok.Load(), over.Load(), len(l), max, goroutines-max, max)
		}
	}
}

// testConcurrentParentDelete races inserts of children against the delete
// of their parent: every child either fails with MissingError or is deleted
// with its parent, never left behind.
func testConcurrentParentDelete(t *testing.T, s Store) {
	ctx := t.Context()
	for round := range 8 {
		parent := fmt.Sprintf("p%d", round)
		mustInsert(t, s, channel(parent), Quota{})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 8 {
			wg.Go(func() {
				<-start
				r := &Resource{ARN: fmt.Sprintf("%s-c%d", parent, i), Kind: "key", Parent: parent}
				var me *MissingError
				if err := s.Insert(ctx, r, Quota{Max: 100, PerParent: true}); err != nil && !(errors.As(err, &me) && me.ARN == parent) {
					t.Errorf("Insert child: %v", err)
				}
			})
		}
		wg.Go(func() {
			<-start
			if err := s.Delete(ctx, parent); err != nil {
				t.Errorf("Delete parent: %v", err)
			}
		})
		close(start)
		wg.Wait()
		if _, err := s.Get(ctx, parent); !errors.Is(err, ErrNotFound) {
			t.Fatalf("parent still there: %v", err)
		}
		l, err := s.List(ctx, Query{Kind: "key", Parent: parent})
		if err != nil || len(l) != 0 {
			t.Fatalf("round %d: orphans %v (%v)", round, arns(l), err)
		}
		for i := range 8 {
			if _, err := s.Get(ctx, fmt.Sprintf("%s-c%d", parent, i)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("round %d: orphan child %d: %v", round, i, err)
			}
		}
	}
}

// testConcurrentRefDelete races inserts and updates that refer to a resource
// against its delete: afterwards, either it exists or nothing refers to it.
func testConcurrentRefDelete(t *testing.T, s Store) {
	ctx := t.Context()
	for round := range 8 {
		target := fmt.Sprintf("cfg%d", round)
		updated := fmt.Sprintf("u%d", round)
		mustInsert(t, s, channel(target), Quota{})
		mustInsert(t, s, channel(updated), Quota{})
		var wg sync.WaitGroup
		start := make(chan struct{})
		var refs atomic.Int32
		for i := range 6 {
			wg.Go(func() {
				<-start
				r := &Resource{ARN: fmt.Sprintf("%s-user%d", target, i), Kind: "user", Refs: []string{target}}
				var me *MissingError
				switch err := s.Insert(ctx, r, Quota{}); {
				case err == nil:
					refs.Add(1)
				case !(errors.As(err, &me) && me.ARN == target):
					t.Errorf("Insert referrer: %v", err)
				}
			})
		}
		wg.Go(func() {
			<-start
			_, err := s.Update(ctx, updated, func(r *Resource) error { r.Refs = []string{target}; return nil })
			var me *MissingError
			switch {
			case err == nil:
				refs.Add(1)
			case !(errors.As(err, &me) && me.ARN == target):
				t.Errorf("Update referrer: %v", err)
			}
		})
		var deleted bool
		wg.Go(func() {
			<-start
			var re *ReferencedError
			switch err := s.Delete(ctx, target); {
			case err == nil:
				deleted = true
			case !errors.As(err, &re):
				t.Errorf("Delete: %v", err)
			}
		})
		close(start)
		wg.Wait()
		users, err := s.List(ctx, Query{Kind: "user", Ref: target})
		if err != nil {
			t.Fatal(err)
		}
		upd := mustGet(t, s, updated)
		if deleted {
			if refs.Load() != 0 || len(users) != 0 || len(upd.Refs) != 0 {
				t.Fatalf("round %d: %s deleted but referred to by %v / %v (%d successful writes)",
					round, target, arns(users), upd.Refs, refs.Load())
			}
		} else {
			mustGet(t, s, target)
			if refs.Load() == 0 {
				t.Fatalf("round %d: delete refused but nothing refers to %s", round, target)
			}
		}
	}
}

// testReopen checks that data, Seq order and migrations survive restarts.
func testReopen(t *testing.T, loc location) {
	ctx := t.Context()
	reopen := func() Store {
		t.Helper()
		s, err := Open(ctx, loc.dsn, loc.dataDir)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	s := reopen()
	mustInsert(t, s, channel("p"), Quota{})
	in := mustInsert(t, s, &Resource{ARN: "a", Kind: "k", Parent: "p", Refs: []string{"p"}, Unique: "u",
		Tags: map[string]string{"t": "v"}, Doc: []byte("doc")}, Quota{})
	last := in.Seq
	for round := range 3 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		if got := mustGet(t, s, "a"); !reflect.DeepEqual(got, in) {
			t.Fatalf("round %d after reopen: %+v; want %+v", round, got, in)
		}
		next := mustInsert(t, s, &Resource{ARN: "b" + strconv.Itoa(round), Kind: "k", Parent: "p"}, Quota{})
		if next.Seq <= last {
			t.Fatalf("round %d: seq %d after reopen, last was %d", round, next.Seq, last)
		}
		last = next.Seq
		if l, err := s.List(ctx, Query{Kind: "k", Parent: "p"}); err != nil || len(l) != round+2 {
			t.Fatalf("round %d: children %v, %v", round, arns(l), err)
		}
	}
	if err := s.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	defer s.Close()
	if l, err := s.List(ctx, Query{Kind: "k"}); err != nil || len(l) != 0 {
		t.Fatalf("after deleting the parent and reopening: %v, %v", arns(l), err)
	}
}

// testConcurrentGetOrInsert: nodes racing to make a shared value all get
// the one that was inserted first.
func testConcurrentGetOrInsert(t *testing.T, s Store) {
	ctx := t.Context()
	const n = 20
	got := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := GetOrInsert(ctx, s, &Resource{ARN: "shared-key", Kind: "k", Doc: fmt.Appendf(nil, `{"by":%d}`, i)})
			if err != nil {
				t.Error(err)
				return
			}
			got <- string(r.Doc)
		})
	}
	wg.Wait()
	close(got)
	stored := string(mustGet(t, s, "shared-key").Doc)
	for doc := range got {
		if doc != stored {
			t.Fatalf("GetOrInsert returned %s, the store holds %s", doc, stored)
		}
	}
}
