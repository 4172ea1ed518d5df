package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

// storeContract is what every Store does alike. makeBucket creates an
// empty bucket; checkCreates says whether CheckBucket creates a missing
// bucket (Local) or reports ErrNoSuchBucket (S3).
func storeContract(t *testing.T, store blob.Store, makeBucket func(string), checkCreates bool) {
	ctx := context.Background()

	t.Run("missing bucket", func(t *testing.T) {
		if err := store.Put(ctx, "no-such-bucket", "k", strings.NewReader("x"), blob.Object{}); !errors.Is(err, blob.ErrNoSuchBucket) {
			t.Errorf("Put: %v, want ErrNoSuchBucket", err)
		}
		if _, err := store.Get(ctx, "no-such-bucket", "k"); !errors.Is(err, blob.ErrNoSuchBucket) {
			t.Errorf("Get: %v, want ErrNoSuchBucket", err)
		}
		if _, err := store.List(ctx, "no-such-bucket", ""); !errors.Is(err, blob.ErrNoSuchBucket) {
			t.Errorf("List: %v, want ErrNoSuchBucket", err)
		}
		err := store.CheckBucket(ctx, "no-such-bucket")
		if checkCreates {
			if err != nil {
				t.Errorf("CheckBucket of a missing bucket: %v, want it made", err)
			}
			if err := store.Put(ctx, "no-such-bucket", "k", strings.NewReader("x"), blob.Object{}); err != nil {
				t.Errorf("Put after CheckBucket: %v", err)
			}
		} else if !errors.Is(err, blob.ErrNoSuchBucket) {
			t.Errorf("CheckBucket: %v, want ErrNoSuchBucket", err)
		}
		for _, name := range []string{"Bad_Bucket", "ab", "-leading", "two..dots", "192.168.5.4"} {
			if err := store.CheckBucket(ctx, name); !errors.Is(err, blob.ErrNoSuchBucket) {
				t.Errorf("CheckBucket(%q): %v, want ErrNoSuchBucket", name, err)
			}
		}
	})

	makeBucket("contract")
	t.Run("check bucket", func(t *testing.T) {
		for range 2 {
			if err := store.CheckBucket(ctx, "contract"); err != nil {
				t.Fatalf("CheckBucket: %v", err)
			}
		}
		// The probe does not stay behind as an object.
		if keys, err := store.List(ctx, "contract", ""); err != nil || len(keys) != 0 {
			t.Fatalf("after CheckBucket the bucket lists %v, %v", keys, err)
		}
	})

	t.Run("put get list", func(t *testing.T) {
		big := bytes.Repeat([]byte("openivs "), 200000) // 1.6 MB
		objects := map[string][]byte{
			"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/1.ts":            big,
			"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/playlist.m3u8":   []byte("#EXTM3U\n"),
			"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/events/recording-started.json":    []byte(`{"version":"v1"}`),
			"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/latest_thumbnail/thumb.jpg": {0xff, 0xd8, 0xff},
			"a/b":   []byte("slash"),
			"a.b":   []byte("dot"),
			"empty": {},
		}
		for key, body := range objects {
			r := bytes.NewReader(body)
			_, _ = r.Seek(0, io.SeekEnd) // Put reads from the start whatever the position
			if err := store.Put(ctx, "contract", key, r, blob.Object{ContentType: "application/octet-stream"}); err != nil {
				t.Fatalf("Put %s: %v", key, err)
			}
		}
		for key, body := range objects {
			got, err := store.Get(ctx, "contract", key)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("Get %s: %d bytes (want %d), %v", key, len(got), len(body), err)
			}
		}
		for _, c := range []struct {
			prefix string
			want   []string
		}{
			{"", []string{"a.b", "a/b", "empty",
				"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/events/recording-started.json",
				"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/1.ts",
				"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/playlist.m3u8",
				"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/latest_thumbnail/thumb.jpg"}},
			{"a", []string{"a.b", "a/b"}},
			{"a/", []string{"a/b"}},
			{"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/p", []string{"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/playlist.m3u8"}},
			{"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/", []string{
				"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/1.ts",
				"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/hls/720p30/playlist.m3u8",
				"ivs/v1/123456789012/ch/2026/11/21/10/05/rec/media/latest_thumbnail/thumb.jpg"}},
			{"nothing/here/", nil},
			{"emp", []string{"empty"}},
			{"empty/", nil},
		} {
			keys, err := store.List(ctx, "contract", c.prefix)
			if err != nil || !reflect.DeepEqual(keys, c.want) {
				t.Errorf("List %q: %q, %v; want %q", c.prefix, keys, err, c.want)
			}
		}
	})

	t.Run("overwrite", func(t *testing.T) {
		for _, body := range []string{"first version, longer", "second"} {
			if err := store.Put(ctx, "contract", "over/write", strings.NewReader(body), blob.Object{}); err != nil {
				t.Fatal(err)
			}
			if got, err := store.Get(ctx, "contract", "over/write"); err != nil || string(got) != body {
				t.Fatalf("Get after Put %q: %q, %v", body, got, err)
			}
		}
		if keys, err := store.List(ctx, "contract", "over/"); err != nil || !reflect.DeepEqual(keys, []string{"over/write"}) {
			t.Fatalf("List after overwrite: %q, %v", keys, err)
		}
	})

	t.Run("missing key", func(t *testing.T) {
		// "a" is the folder of "a/b", not an object.
		for _, key := range []string{"no/such/key", "a", "ivs/v1"} {
			if got, err := store.Get(ctx, "contract", key); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Get %s: %q, %v; want ErrNotFound", key, got, err)
			}
		}
	})
}

func TestS3Contract(t *testing.T) {
	srv := s3test.Start(t)
	store, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	storeContract(t, store, func(bucket string) {
		if err := store.CreateBucket(context.Background(), bucket); err != nil {
			t.Fatal(err)
		}
	}, false)

	t.Run("access denied", func(t *testing.T) {
		bad, _ := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: "wrong"})
		ctx := context.Background()
		if err := bad.CheckBucket(ctx, "contract"); !errors.Is(err, blob.ErrAccessDenied) {
			t.Errorf("CheckBucket with a wrong secret: %v, want ErrAccessDenied", err)
		}
		if err := bad.Put(ctx, "contract", "k", strings.NewReader("x"), blob.Object{}); !errors.Is(err, blob.ErrAccessDenied) {
			t.Errorf("Put with a wrong secret: %v, want ErrAccessDenied", err)
		}
	})
}

func TestLocalContract(t *testing.T) {
	root := filepath.Join(t.TempDir(), "recordings") // made by the first CheckBucket
	store := blob.NewLocal(root)
	storeContract(t, store, func(bucket string) {
		if err := os.Mkdir(filepath.Join(root, bucket), 0o750); err != nil {
			t.Fatal(err)
		}
	}, true)

	for path, want := range map[string]os.FileMode{
		root: 0o750,
		filepath.Join(root, "contract", "ivs", "v1"):                                       0o750,
		filepath.Join(root, "contract", "a", "b"):                                          0o640,
		filepath.Join(root, "contract", filepath.FromSlash("over/write")):                  0o640,
		filepath.Join(root, "no-such-bucket", "k"):                                         0o640,
		filepath.Join(root, "contract", filepath.FromSlash("ivs/v1/123456789012/ch/2026")): 0o750,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s: mode %v, want %v or stricter", path, got, want)
		}
	}
	// Neither temporary files nor write probes are left behind.
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".openivs-") {
			t.Errorf("left behind: %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalRejectsKeys(t *testing.T) {
	root := t.TempDir()
	store := blob.NewLocal(root)
	ctx := context.Background()
	if err := store.CheckBucket(ctx, "bucket"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "../escape", "a/../../escape", "/etc/passwd", "a//b", "a/", "./a", "a/./b",
		"nul\x00byte", ".openivs-tmp-x", "a/.openivs-write-check-1", strings.Repeat("k", 1025)} {
		if err := store.Put(ctx, "bucket", key, strings.NewReader("x"), blob.Object{}); err == nil {
			t.Errorf("Put accepted the key %q", key)
		}
		if _, err := store.Get(ctx, "bucket", key); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Get %q: %v, want ErrNotFound", key, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key escaped the bucket: %v", err)
	}
	// Keys a file system cannot hold beside each other.
	if err := store.Put(ctx, "bucket", "x/y", strings.NewReader("x"), blob.Object{}); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, "bucket", "x", strings.NewReader("x"), blob.Object{}); err == nil {
		t.Error("Put made an object of the folder x")
	}
	if err := store.Put(ctx, "bucket", "x/y/z", strings.NewReader("x"), blob.Object{}); err == nil {
		t.Error("Put made a folder of the object x/y")
	}
	// A bucket name that is a file is no bucket.
	if err := os.WriteFile(filepath.Join(root, "file-not-dir"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckBucket(ctx, "file-not-dir"); !errors.Is(err, blob.ErrNoSuchBucket) {
		t.Errorf("CheckBucket of a file: %v, want ErrNoSuchBucket", err)
	}
	if err := store.Put(ctx, "file-not-dir", "k", strings.NewReader("x"), blob.Object{}); !errors.Is(err, blob.ErrNoSuchBucket) {
		t.Errorf("Put into a file: %v, want ErrNoSuchBucket", err)
	}
}

func TestLocalPutCanceled(t *testing.T) {
	root := t.TempDir()
	store := blob.NewLocal(root)
	if err := store.CheckBucket(context.Background(), "bucket"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := store.Put(ctx, "bucket", "k", strings.NewReader("x"), blob.Object{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a canceled context: %v", err)
	}
	// A body that fails half-way leaves neither the key nor a temporary file.
	failing := &failingReader{Reader: strings.NewReader(strings.Repeat("x", 1<<20))}
	if err := store.Put(context.Background(), "bucket", "dir/k", failing, blob.Object{}); err == nil {
		t.Fatal("Put of a failing body succeeded")
	}
	entries, err := os.ReadDir(filepath.Join(root, "bucket", "dir"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("after a failed Put the folder holds %v, %v", entries, err)
	}
}

type failingReader struct {
	*strings.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n++; f.n > 3 {
		return 0, errors.New("disk on fire")
	}
	return f.Reader.Read(p[:min(len(p), 1000)])
}

// TestLocalRootNotWritable: a root nobody may write to is ErrAccessDenied.
func TestLocalRootNotWritable(t *testing.T) {
	root := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(root, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Modes do not stop root; sysfs refuses it new directories.
		if _, err := os.Stat("/sys/kernel"); err != nil {
			t.Skip("running as root without /sys: cannot make a directory root may not write to")
		}
		root = "/sys/openivs-test"
	}
	store := blob.NewLocal(root)
	if err := store.CheckBucket(context.Background(), "bucket"); !errors.Is(err, blob.ErrAccessDenied) {
		t.Fatalf("CheckBucket under a read-only root: %v, want ErrAccessDenied", err)
	}
}

func TestCheckBucketName(t *testing.T) {
	for _, name := range []string{"abc", "my-recordings", "other.bucket-1", "a1b", strings.Repeat("a", 63), "1.2.3.4a"} {
		if err := blob.CheckBucketName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for name, want := range map[string]string{
		"ab":                    "3 to 63",
		strings.Repeat("a", 64): "3 to 63",
		"Bad_Bucket":            "lowercase",
		"bad bucket":            "lowercase",
		"-abc":                  "begin and end",
		"abc-":                  "begin and end",
		".abc":                  "begin and end",
		"a..b":                  "two dots",
		"192.168.5.4":           "IP address",
	} {
		if err := blob.CheckBucketName(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", name, err, want)
		}
	}
}
