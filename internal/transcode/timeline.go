package transcode

import (
	"sort"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/media"
)

// feedOrigin is where the first source frame sits on ffmpeg's timeline. It
// keeps every timestamp ffmpeg sees or makes positive (the AAC encoder
// dates its first frame 1024 samples early) and is a whole number of 1/30
// and 1/60 s, so a rate-halving rung keeps the source's exact frame times.
const feedOrigin = 10 * time.Second

// wallSamples bounds the feed-time → wall-clock samples kept: about 8 s
// of 60 fps video, far more than ffmpeg ever holds back.
const wallSamples = 512

// epoch is a stretch of the feed timeline with one offset from source
// media time; a source discontinuity (a takeover) starts a new one, so
// ffmpeg sees one continuous, increasing timeline however the source's
// media time jumps.
type epoch struct {
	feedStart time.Duration // feed time of the epoch's first frame
	shift     time.Duration // feed time = source time + shift
}

type wallSample struct {
	feed time.Duration
	wall time.Time
}

// timeline maps source frames onto ffmpeg's timeline (feed time) and
// ffmpeg's output back onto source media time and ingest wall clock, so
// every rung's frames carry the very timestamps and ingest times of the
// source frames they were made from. It outlives ffmpeg restarts: a
// restarted ffmpeg is fed the same GOP at the same feed times again.
type timeline struct {
	mu     sync.Mutex
	epochs []epoch
	// byFrame remembers which epoch a discontinuity frame opened, so a
	// replay of the same frame after a restart reuses it.
	byFrame map[*media.Frame]int
	last    time.Duration // newest feed DTS
	walls   []wallSample  // ascending feed time, at most wallSamples
}

func newTimeline() *timeline {
	return &timeline{byFrame: map[*media.Frame]int{}}
}

// feed returns the feed-timeline DTS and PTS of a source frame, recording
// the wall clock of video frames for the way back.
func (tl *timeline) feed(f *media.Frame, video bool) (dts, pts time.Duration) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	e := len(tl.epochs) - 1
	switch {
	case e < 0:
		tl.epochs = append(tl.epochs, epoch{feedStart: feedOrigin, shift: feedOrigin - f.DTS})
		e = 0
	case f.Discontinuity:
		if i, ok := tl.byFrame[f]; ok {
			e = i
			break
		}
		// Continue a frame after the newest fed frame.
		start := tl.last + time.Second/60
		tl.epochs = append(tl.epochs, epoch{feedStart: start, shift: start - f.DTS})
		e = len(tl.epochs) - 1
		tl.byFrame[f] = e
	}
	// Other frames belong to the newest epoch: a restarted ffmpeg is fed
	// from the hub's current GOP, which never starts before the newest
	// discontinuity (a takeover resumes on a keyframe).
	sh := tl.epochs[e].shift
	dts, pts = f.DTS+sh, f.PTS+sh
	if dts > tl.last {
		tl.last = dts
	}
	if video && !f.Wall.IsZero() && (len(tl.walls) == 0 || pts > tl.walls[len(tl.walls)-1].feed) {
		if len(tl.walls) == wallSamples {
			// Drop the older half at once: one copy per wallSamples/2 frames.
			tl.walls = tl.walls[:copy(tl.walls, tl.walls[wallSamples/2:])]
		}
		tl.walls = append(tl.walls, wallSample{feed: pts, wall: f.Wall})
	}
	return dts, pts
}

// source maps a feed time back: the source media time, the epoch it
// belongs to, and the ingest wall clock of the source frame at or just
// before it (extrapolated by the difference).
func (tl *timeline) source(feed time.Duration) (media time.Duration, epochIndex int, wall time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if len(tl.epochs) == 0 {
		return feed - feedOrigin, 0, time.Now()
	}
	e := sort.Search(len(tl.epochs), func(i int) bool { return tl.epochs[i].feedStart > feed }) - 1
	if e < 0 {
		e = 0
	}
	media = feed - tl.epochs[e].shift
	if len(tl.walls) == 0 {
		return media, e, time.Now()
	}
	i := sort.Search(len(tl.walls), func(i int) bool { return tl.walls[i].feed > feed }) - 1
	if i < 0 {
		i = 0
	}
	s := tl.walls[i]
	return media, e, s.wall.Add(feed - s.feed)
}

// feedTime maps a source media time onto the feed timeline with the
// newest epoch's offset; false before the first frame was fed.
func (tl *timeline) feedTime(media time.Duration) (time.Duration, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if len(tl.epochs) == 0 {
		return 0, false
	}
	return media + tl.epochs[len(tl.epochs)-1].shift, true
}
