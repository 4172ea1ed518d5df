package blob_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

func TestS3AgainstVersity(t *testing.T) {
	srv := s3test.Start(t)
	store, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Put(ctx, "missing-bucket", "k", bytes.NewReader([]byte("x")), blob.Object{}); err == nil {
		t.Fatal("put into a missing bucket succeeded")
	}
	if err := store.CreateBucket(ctx, "audit"); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateBucket(ctx, "audit"); err != nil {
		t.Fatalf("creating an owned bucket again: %v", err)
	}
	body := bytes.Repeat([]byte("openivs "), 100000)
	for _, key := range []string{"a/b/2026/11/21/one.gz", "a/b/2026/11/21/two.gz", "other/x"} {
		if err := store.Put(ctx, "audit", key, bytes.NewReader(body), blob.Object{ContentType: "application/gzip"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := store.Get(ctx, "audit", "a/b/2026/11/21/two.gz")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	keys, err := store.List(ctx, "audit", "a/b/")
	if err != nil || !reflect.DeepEqual(keys, []string{"a/b/2026/11/21/one.gz", "a/b/2026/11/21/two.gz"}) {
		t.Fatalf("list: %v, %v", keys, err)
	}

	// Wrong credentials are refused.
	bad, _ := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: "wrong"})
	if err := bad.Put(ctx, "audit", "k", bytes.NewReader(body), blob.Object{}); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
}

func TestNewS3Config(t *testing.T) {
	for _, c := range []struct {
		cfg  blob.S3Config
		want string
	}{
		{blob.S3Config{AccessKeyID: "a", SecretAccessKey: "b"}, "region"},
		{blob.S3Config{Region: "r", AccessKeyID: "a"}, "secret"},
		{blob.S3Config{Region: "r", AccessKeyID: "a", SecretAccessKey: "b", Endpoint: "localhost:9000"}, "not an http(s) URL"},
	} {
		if _, err := blob.NewS3(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := blob.NewS3(blob.S3Config{Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b"}); err != nil {
		t.Errorf("AWS S3 without an endpoint: %v", err)
	}
}
