package media

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// benchStream is 10 s of 30 fps video with 2 s GOPs and interleaved AAC,
// roughly what one ingest connection writes.
func benchStream(b *testing.B) []*Frame {
	gop := "K" + strings.Repeat("a", 1) + strings.Repeat("vva", 29)
	return mkFrames(b, strings.Repeat(gop, 5))
}

// BenchmarkHubWrite measures the writer's cost per frame with subscribers
// that keep up (each drains in its own goroutine, as packagers do) and with
// subscribers that never read.
func BenchmarkHubWrite(b *testing.B) {
	frames := benchStream(b)
	for _, tc := range []struct {
		subs    int
		reading bool
	}{{0, false}, {1, true}, {8, true}, {1, false}, {8, false}} {
		mode := "reading"
		if !tc.reading {
			mode = "idle"
		}
		if tc.subs == 0 {
			mode = "none"
		}
		b.Run(fmt.Sprintf("subs=%d/%s", tc.subs, mode), func(b *testing.B) {
			h := NewHub(avTracks, HubOptions{})
			var wg sync.WaitGroup
			subs := make([]*Subscriber, tc.subs)
			for i := range subs {
				s := h.Subscribe(fmt.Sprint("sub", i))
				subs[i] = s
				if tc.reading {
					wg.Go(func() {
						for {
							if _, err := s.Next(context.Background()); err != nil {
								return
							}
						}
					})
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.Write(frames[i%len(frames)])
				i++
			}
			b.StopTimer()
			h.Close()
			wg.Wait()
			if tc.reading {
				// How often readers fell behind the writer and were cut:
				// context for the ns/op, not a cost of Write itself.
				var dropped int64
				for _, s := range subs {
					dropped += s.Dropped()
				}
				b.ReportMetric(float64(dropped)/float64(i*tc.subs), "dropped/delivery")
			}
		})
	}
}

// BenchmarkHubIdleSubscriberMemory reports the heap each idle subscriber
// costs on a live hub, including whatever the hub retains on its behalf
// while the stream keeps going (the frames themselves are allocated before
// measuring: they are ingest's, not the subscribers').
func BenchmarkHubIdleSubscriberMemory(b *testing.B) {
	const subs = 1000
	frames := benchStream(b)
	for b.Loop() {
		h := NewHub(avTracks, HubOptions{})
		writeAll(h, frames[:100]) // a GOP in progress
		held := make([]*Subscriber, subs)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range held {
			held[i] = h.Subscribe("idle")
		}
		for i := range 4 * DefaultMaxBufferedFrames {
			h.Write(frames[i%len(frames)])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/subs, "B/idle-sub")
		runtime.KeepAlive(held)
		runtime.KeepAlive(h)
	}
}

// BenchmarkHubFanOut measures the whole path, Write plus every subscriber's
// Next, per frame when nobody is cut: the writer pauses every batch until
// all readers have caught up, so ns/op is the end-to-end cost of delivering
// one frame to all subscribers.
func BenchmarkHubFanOut(b *testing.B) {
	const batch = 256
	frames := benchStream(b)
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h := NewHub(avTracks, HubOptions{MaxBufferedFrames: 4 * batch})
			read := make([]atomic.Int64, n)
			subs := make([]*Subscriber, n)
			var wg sync.WaitGroup
			for i := range subs {
				subs[i] = h.Subscribe(fmt.Sprint("sub", i))
				wg.Go(func() {
					for {
						if _, err := subs[i].Next(context.Background()); err != nil {
							return
						}
						read[i].Add(1)
					}
				})
			}
			b.ReportAllocs()
			var written int64
			for b.Loop() {
				h.Write(frames[written%int64(len(frames))])
				written++
				if written%batch == 0 {
					for i := range read {
						for read[i].Load()+subs[i].Dropped() < written {
							runtime.Gosched()
						}
					}
				}
			}
			h.Close()
			wg.Wait()
			b.StopTimer()
			for _, s := range subs {
				if s.Dropped() != 0 {
					b.Fatalf("%s dropped %d frames; the benchmark must be lossless", s.Name(), s.Dropped())
				}
			}
		})
	}
}
