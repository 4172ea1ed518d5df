package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSQLite(t *testing.T) {
	runSuite(t, func(t *testing.T) location { return location{dsn: "", dataDir: t.TempDir()} })
}

func TestSQLiteDSNForms(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "a dir?with#odd%chars")
	cases := []struct {
		name, dsn, dataDir, file string
	}{
		{"empty", "", filepath.Join(dir, "d1"), filepath.Join(dir, "d1", DefaultSQLiteFile)},
		{"sqlite", "sqlite", filepath.Join(dir, "d2"), filepath.Join(dir, "d2", DefaultSQLiteFile)},
		{"sqlite url", "sqlite://" + filepath.Join(dir, "u.db"), "", filepath.Join(dir, "u.db")},
		{"sqlite url with params", "sqlite://" + filepath.Join(dir, "q.db") + "?_pragma=cache_size(-4000)", "", filepath.Join(dir, "q.db")},
		{"file uri", "file:" + filepath.Join(dir, "f.db"), "", filepath.Join(dir, "f.db")},
		{"odd data dir", "", odd, filepath.Join(odd, DefaultSQLiteFile)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.dsn, tc.dataDir)
			if err != nil {
				t.Fatal(err)
			}
			mustInsert(t, s, &Resource{ARN: "a", Kind: "k"}, Quota{})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tc.file); err != nil {
				t.Fatalf("database file: %v", err)
			}
		})
	}
	for _, bad := range []string{"mysql://x", "sqlite://", "postgres://u@127.0.0.1:1/db?connect_timeout=1"} {
		if s, err := Open(t.Context(), bad, dir); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := Open(t.Context(), "", ""); err == nil {
		t.Error("Open without data dir succeeded")
	}
}

func TestSQLiteMigrationsRecorded(t *testing.T) {
	dir := t.TempDir()
	for range 3 {
		s, err := Open(t.Context(), "", dir)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.(*sqliteStore).w.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		ms, _ := loadMigrations("sqlite")
		if n != len(ms) {
			t.Fatalf("%d migrations recorded, want %d", n, len(ms))
		}
		var mode string
		if err := s.(*sqliteStore).r.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal_mode = %q, %v", mode, err)
		}
		s.Close()
	}
}

func BenchmarkSQLiteGet(b *testing.B) {
	s, err := Open(context.Background(), "", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchmarkGet(b, s)
}

// benchmarkGet measures Get of channel-sized resources from parallel
// goroutines, as the API serves them.
func benchmarkGet(b *testing.B, s Store) {
	ctx := context.Background()
	const n = 1000
	doc := []byte(`{"name":"channel","latencyMode":"LOW","type":"STANDARD","authorized":false,"recordingConfigurationArn":"","ingestEndpoint":"abcdef.global-contribute.live-video.net","playbackUrl":"https://abcdef.us-west-2.playback.live-video.net/api/video/v1/us-west-2.123456789012.channel.abcdefghijkl.m3u8","insecureIngest":false,"preset":"","containerFormat":"TS","multitrackInputConfiguration":{"enabled":false}}`)
	for i := range n {
		r := &Resource{ARN: "arn:aws:ivs:us-west-2:123456789012:channel/" + strconv.Itoa(i), Kind: "channel",
			Account: "123456789012", Name: "ch" + strconv.Itoa(i), Tags: map[string]string{"env": "bench", "team": "video"}, Doc: doc}
		if err := s.Insert(ctx, r, Quota{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := s.Get(ctx, "arn:aws:ivs:us-west-2:123456789012:channel/"+strconv.Itoa(i%n)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
