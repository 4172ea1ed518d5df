package messaging

import "time"

// bucket is a token bucket: rate tokens a second, at most burst saved up.
// It takes the time from its caller so that tests can freeze the clock.
// Not safe for concurrent use.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst int, now time.Time) bucket {
	return bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: now}
}

// allow takes a token if there is one.
func (b *bucket) allow(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// spend takes a token for something admitted elsewhere: down to none,
// never into debt.
func (b *bucket) spend(now time.Time) {
	b.refill(now)
	b.tokens = max(0, b.tokens-1)
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
}

// setRate follows a room's maximumMessageRatePerSecond when UpdateRoom
// changes it, keeping the tokens already saved up (capped by the new burst).
func (b *bucket) setRate(rate int) {
	if float64(rate) == b.rate {
		return
	}
	b.rate, b.burst = float64(rate), float64(rate)
	b.tokens = min(b.tokens, b.burst)
}
