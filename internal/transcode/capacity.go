package transcode

import "sync"

// CapacityExceededReason is the reason of IVS's Stream Failure event when
// no transcoder is free.
const CapacityExceededReason = "Transcode capacity exceeded. Please try again."

// coresPerLadder is what one STANDARD 1080p30 ladder costs on the
// reference machine, in cores (docs/benchmarks.md, "Transcoding"): the
// node's default capacity is how many of them its cores hold.
const coresPerLadder = 0.75

// DefaultCapacity is the number of concurrent transcodes a node with
// numCPU cores runs by default: at least one.
func DefaultCapacity(numCPU int) int {
	return max(1, int(float64(numCPU)/coresPerLadder))
}

// Capacity bounds the concurrent transcodes of a node.
type Capacity struct {
	mu    sync.Mutex
	limit int
	used  int
}

// NewCapacity allows limit concurrent transcodes.
func NewCapacity(limit int) *Capacity { return &Capacity{limit: limit} }

// Acquire takes a slot, reporting false when all are taken. The release
// function returns it and may be called more than once.
func (c *Capacity) Acquire() (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used >= c.limit {
		return nil, false
	}
	c.used++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.used--
			c.mu.Unlock()
		})
	}, true
}

// InUse is how many slots are taken.
func (c *Capacity) InUse() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
