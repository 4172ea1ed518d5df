package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

func TestObjectKey(t *testing.T) {
	fallback := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for path, want := range map[string]string{
		"/d/audit-20261121T143000Z.jsonl":     "AWSLogs/123456789012/openivs/us-west-2/2026/11/21/audit-20261121T143000Z.jsonl.gz",
		"/d/audit-20261231T235959Z_002.jsonl": "AWSLogs/123456789012/openivs/us-west-2/2026/12/31/audit-20261231T235959Z_002.jsonl.gz",
		"/d/audit-odd.jsonl":                  "AWSLogs/123456789012/openivs/us-west-2/2030/01/02/audit-odd.jsonl.gz",
	} {
		if got := ObjectKey("123456789012", "us-west-2", path, fallback); got != want {
			t.Errorf("ObjectKey(%s) = %s, want %s", path, got, want)
		}
	}
}

func s3Store(t *testing.T) (*blob.S3, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	store, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	return store, srv
}

// bucketRecords reads every record shipped to the bucket.
func bucketRecords(t *testing.T, store *blob.S3, bucket string) (keys []string, requestIDs []string) {
	t.Helper()
	ctx := context.Background()
	keys, err := store.List(ctx, bucket, "AWSLogs/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		raw, err := store.Get(ctx, bucket, k)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s is not gzip: %v", k, err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(plain))
		for sc.Scan() {
			requestIDs = append(requestIDs, decode(t, sc.Bytes())["requestID"].(string))
		}
	}
	return keys, requestIDs
}

func localFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestShipperDeliversToS3: rotated files go to the bucket, gzipped, under
// the CloudTrail layout, and leave the disk; the last one goes at Close.
func TestShipperDeliversToS3(t *testing.T) {
	store, _ := s3Store(t)
	ctx := context.Background()
	if err := store.CreateBucket(ctx, "trail"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "audit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ship, err := NewShipper(ShipperOptions{Dir: dir, Bucket: "trail", Account: "123456789012", Region: "us-west-2", Store: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	one, _ := NewRecord(callN(0), "us-west-2", mustRedactor(t)).Marshal()
	l := newTestLogger(t, Options{Dir: dir, MaxFileBytes: int64(len(one) * 2), OnFileClosed: ship.Add})
	for i := range 7 {
		l.Log(callN(i))
	}
	// Three files are full and rotated: they reach the bucket while the
	// fourth is still open.
	waitFor(t, func() bool { keys, _ := bucketRecords(t, store, "trail"); return len(keys) == 3 })
	if files := localFiles(t, dir); len(files) != 1 {
		t.Fatalf("local files %v, want only the open one", files)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ship.Close(ctx); err != nil {
		t.Fatal(err)
	}
	keys, ids := bucketRecords(t, store, "trail")
	keyPattern := regexp.MustCompile(`^AWSLogs/123456789012/openivs/us-west-2/\d{4}/\d{2}/\d{2}/audit-\d{8}T\d{6}Z(_\d{3})?\.jsonl\.gz$`)
	for _, k := range keys {
		if !keyPattern.MatchString(k) {
			t.Errorf("key %s", k)
		}
	}
	if len(keys) != 4 || len(ids) != 7 {
		t.Fatalf("%d objects with %d records, want 4 with 7: %v", len(keys), len(ids), keys)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for i := range 7 {
		if !seen[callN(i).RequestID] {
			t.Errorf("record %s not shipped", callN(i).RequestID)
		}
	}
	if files := localFiles(t, dir); len(files) != 0 {
		t.Fatalf("local files left after delivery: %v", files)
	}
}

// TestShipperRetriesAndKeeps: while the bucket cannot take files they stay
// on disk and are retried; files left at Close are shipped by the next
// Shipper.
func TestShipperRetriesAndKeeps(t *testing.T) {
	store, _ := s3Store(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "audit")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := ShipperOptions{Dir: dir, Bucket: "late", Account: "123456789012", Region: "us-west-2", Store: store,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quiet}

	// No bucket yet: delivery fails, Close gives up at its deadline and
	// the file stays.
	ship, err := NewShipper(opts)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLogger(t, Options{Dir: dir, OnFileClosed: ship.Add})
	l.Log(callN(1))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = ship.Close(closeCtx)
	cancel()
	if err == nil {
		t.Fatal("Close reported delivery into a missing bucket")
	}
	if files := localFiles(t, dir); len(files) != 1 {
		t.Fatalf("local files %v, want the undelivered one", files)
	}

	// The next start ships the file left behind, retrying until the bucket
	// exists.
	ship2, err := NewShipper(opts)
	if err != nil {
		t.Fatal(err)
	}
	if ship2.Pending() != 1 {
		t.Fatalf("pending %d, want the left-over file", ship2.Pending())
	}
	time.Sleep(100 * time.Millisecond) // a few failed attempts
	if err := store.CreateBucket(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return ship2.Pending() == 0 })
	if err := ship2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ids := bucketRecords(t, store, "late"); len(ids) != 1 || ids[0] != callN(1).RequestID {
		t.Fatalf("shipped records %v", ids)
	}
	if files := localFiles(t, dir); len(files) != 0 {
		t.Fatalf("local files after delivery: %v", files)
	}
}
