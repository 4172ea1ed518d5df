package awsapi

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bucketCount is the number of buckets the limiter holds.
func (l *RateLimiter) bucketCount() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}

func TestRateLimitTokenBucket(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		key   string
		after time.Duration // since t0
		rate  float64
		burst int
		want  bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"burst then deny", []step{
			{"k", 0, 1, 3, true}, {"k", 0, 1, 3, true}, {"k", 0, 1, 3, true}, {"k", 0, 1, 3, false},
		}},
		{"refill one per second", []step{
			{"k", 0, 1, 1, true}, {"k", 500 * time.Millisecond, 1, 1, false},
			{"k", 1000 * time.Millisecond, 1, 1, true}, {"k", 1001 * time.Millisecond, 1, 1, false},
		}},
		{"fractional rate", []step{
			{"k", 0, 0.5, 1, true}, {"k", time.Second, 0.5, 1, false}, {"k", 2 * time.Second, 0.5, 1, true},
		}},
		{"fast rate", []step{
			{"k", 0, 100, 1, true}, {"k", 5 * time.Millisecond, 100, 1, false}, {"k", 10 * time.Millisecond, 100, 1, true},
		}},
		{"refill capped at burst", []step{
			{"k", 0, 10, 2, true}, {"k", 0, 10, 2, true}, {"k", time.Hour, 10, 2, true},
			{"k", time.Hour, 10, 2, true}, {"k", time.Hour, 10, 2, false},
		}},
		{"keys are independent", []step{
			{"a", 0, 1, 1, true}, {"a", 0, 1, 1, false}, {"b", 0, 1, 1, true}, {"b", 0, 1, 1, false},
			{"a\x00x", 0, 1, 1, true},
		}},
		{"clock going back adds nothing", []step{
			{"k", time.Minute, 1, 1, true}, {"k", 0, 1, 1, false}, {"k", time.Minute, 1, 1, false},
			{"k", time.Minute + time.Second, 1, 1, true},
		}},
		{"burst below one counts as one", []step{
			{"k", 0, 1, 0, true}, {"k", 0, 1, 0, false},
		}},
		{"non-positive rate denies", []step{
			{"k", 0, 0, 5, false}, {"k", 0, -1, 5, false}, {"k", 0, math.NaN(), 5, false},
		}},
		{"raised burst applies to an existing bucket", []step{
			{"k", 0, 1, 1, true}, {"k", 0, 1, 1, false},
			{"k", 3 * time.Second, 1, 5, true}, {"k", 3 * time.Second, 1, 5, true}, {"k", 3 * time.Second, 1, 5, true},
			{"k", 3 * time.Second, 1, 5, false},
		}},
		{"lowered burst caps saved tokens", []step{
			{"k", 0, 1, 10, true}, {"k", 0, 1, 2, true}, {"k", 0, 1, 2, true}, {"k", 0, 1, 2, false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewRateLimiter()
			for i, s := range tc.steps {
				if got := l.Allow(s.key, s.rate, s.burst, t0.Add(s.after)); got != s.want {
					t.Fatalf("step %d (%q at +%v, %v/s burst %d): Allow = %v, want %v", i, s.key, s.after, s.rate, s.burst, got, s.want)
				}
			}
		})
	}
}

func TestRateLimitEvictionBoundsMemory(t *testing.T) {
	l := NewRateLimiter()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One new key every 10 ms for 5 minutes (30000 keys). A bucket is full a
	// second after its only use and evicted about a minute later, so only
	// the keys of the last ~1.5 minutes (+ sweep slack) may be held.
	const step = 10 * time.Millisecond
	peak := 0
	for i := 0; i < 30000; i++ {
		if !l.Allow("k"+strconv.Itoa(i), 1, 1, now) {
			t.Fatalf("new key %d denied", i)
		}
		now = now.Add(step)
		if i%100 == 0 {
			peak = max(peak, l.bucketCount())
		}
	}
	if limit := 15000; peak > limit {
		t.Fatalf("peak of %d buckets for 30000 keys, want at most %d", peak, limit)
	}
	// Keep one key busy: it must survive sweeps while the idle ones go.
	for i := 0; i < 200; i++ {
		now = now.Add(time.Second)
		l.Allow("busy", 1, 1, now)
		l.Allow("busy", 1, 1, now) // denied: keeps the bucket below full
	}
	// Sweeps are lazy: a shard is swept when a call lands on it, so touch
	// every shard with a fresh key.
	const probes = 1000
	for i := 0; i < probes; i++ {
		l.Allow("probe"+strconv.Itoa(i), 1, 1, now)
	}
	if n := l.bucketCount(); n > probes+1 {
		t.Fatalf("%d buckets left after the first 30000 keys went idle, want at most %d", n, probes+1)
	}
	if l.Allow("busy", 1, 1, now) {
		t.Fatal("busy key's bucket was evicted: it got a fresh burst")
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	l := NewRateLimiter()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const goroutines, calls, burst = 16, 1000, 100
	var shared, own atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "own" + strconv.Itoa(g)
			for i := 0; i < calls; i++ {
				// The clock does not move, so exactly burst calls pass.
				if l.Allow("shared", 1e-9, burst, now) {
					shared.Add(1)
				}
				if l.Allow(key, 1e-9, burst, now) {
					own.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if shared.Load() != burst {
		t.Fatalf("shared key allowed %d calls, want %d", shared.Load(), burst)
	}
	if own.Load() != goroutines*burst {
		t.Fatalf("own keys allowed %d calls, want %d", own.Load(), goroutines*burst)
	}
}

func TestRateLimitAllowDoesNotAllocate(t *testing.T) {
	l := NewRateLimiter()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := "123456789012\x00ivs\x00GetChannel"
	l.Allow(key, 5, 5, now)
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		l.Allow(key, 5, 5, now)
	})
	if allocs != 0 {
		t.Fatalf("Allow allocates %.1f times per call in the steady state", allocs)
	}
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "123456789012\x00ivs\x00op" + strconv.Itoa(i)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.Run("serial", func(b *testing.B) {
		l := NewRateLimiter()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			l.Allow(keys[i&1023], 50, 50, start.Add(time.Duration(i)*time.Microsecond))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := NewRateLimiter()
		b.ReportAllocs()
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 7919
			for pb.Next() {
				i++
				l.Allow(keys[i&1023], 50, 50, start.Add(time.Duration(i)*time.Microsecond))
			}
		})
	})
}
