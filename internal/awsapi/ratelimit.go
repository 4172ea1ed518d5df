package awsapi

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

const (
	// rateLimitShards spreads keys over independently locked maps so that
	// concurrent requests of different accounts rarely contend.
	rateLimitShards = 64
	// bucketIdleTTL is how long a bucket stays after it has refilled
	// completely. Dropping a full bucket changes nothing (a new one starts
	// full), so this only saves re-creating buckets of keys seen every few
	// seconds.
	bucketIdleTTL = time.Minute
	// sweepInterval paces the lazy sweeps of a shard by the request clock.
	sweepInterval = 30 * time.Second
	// minSweepLen is the shard size below which growth alone does not
	// trigger a sweep.
	minSweepLen = 64
)

// RateLimiter is a set of token buckets keyed by string (account and
// operation, account and channel, ...). It is safe for concurrent use and
// allocates nothing once a key's bucket exists. Buckets that have been full
// for a while are evicted by sweeps done lazily inside Allow, so memory
// follows the number of recently throttled keys, not every key ever seen.
type RateLimiter struct {
	seed   maphash.Seed
	shards [rateLimitShards]rateShard
}

type rateShard struct {
	mu      sync.Mutex
	buckets map[string]tokenBucket
	// nextSweep is when (request clock, Unix ns) the shard is next swept;
	// sweepLen is the size that triggers a sweep sooner, so that a burst of
	// new keys cannot grow the map without bound between two sweeps while
	// the amortised cost stays O(1) per call.
	nextSweep int64
	sweepLen  int
	_         [32]byte // one 64-byte cache line per shard: no false sharing
}

type tokenBucket struct {
	tokens float64
	last   int64   // Unix ns of the last refill
	rate   float64 // tokens per nanosecond
	burst  float64
}

// NewRateLimiter returns an empty limiter.
func NewRateLimiter() *RateLimiter {
	l := &RateLimiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]tokenBucket)
		l.shards[i].sweepLen = minSweepLen
	}
	return l
}

// Allow spends one token from key's bucket (capacity burst, refilled at perSecond) and reports whether one was available.
//
// A new key starts with a full bucket. The latest perSecond and burst apply
// to an existing bucket, so limits can change at run time. A non-positive
// (or NaN) perSecond denies every call; burst below 1 counts as 1. Time
// running backwards never adds tokens.
func (l *RateLimiter) Allow(key string, perSecond float64, burst int, now time.Time) bool {
	if !(perSecond > 0) {
		return false
	}
	capacity := float64(burst)
	if burst < 1 {
		capacity = 1
	}
	rate := perSecond / float64(time.Second)
	t := now.UnixNano()

	s := &l.shards[maphash.String(l.seed, key)%rateLimitShards]
	s.mu.Lock()
	defer s.mu.Unlock()

	if t >= s.nextSweep || len(s.buckets) >= s.sweepLen {
		s.sweep(t)
	}
	b, ok := s.buckets[key]
	if !ok {
		b = tokenBucket{tokens: capacity, last: t}
	} else if t > b.last {
		b.tokens = math.Min(capacity, b.tokens+float64(t-b.last)*rate)
		b.last = t
	}
	b.rate, b.burst = rate, capacity
	if b.tokens > capacity {
		b.tokens = capacity
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	s.buckets[key] = b
	return allowed
}

// sweep drops the buckets that have been full for at least bucketIdleTTL at
// time t. Called with s.mu held.
func (s *rateShard) sweep(t int64) {
	for k, b := range s.buckets {
		if t-b.fullAt() >= int64(bucketIdleTTL) {
			delete(s.buckets, k)
		}
	}
	s.nextSweep = t + int64(sweepInterval)
	s.sweepLen = max(minSweepLen, 2*len(s.buckets))
}

// fullAt is when (Unix ns) the bucket has refilled to capacity.
func (b tokenBucket) fullAt() int64 {
	missing := b.burst - b.tokens
	if missing <= 0 {
		return b.last
	}
	d := missing / b.rate
	if d > math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return b.last + int64(d)
}
