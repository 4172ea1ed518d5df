package media

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	avTracks = []Track{
		{ID: 0, Kind: Video, Codec: CodecH264},
		{ID: 1, Kind: Audio, Codec: CodecAAC},
		{ID: 2, Kind: Data},
	}
	audioTracks = []Track{{ID: 1, Kind: Audio, Codec: CodecAAC}}
	payload     = make([]byte, 100)
)

// mkFrames turns a pattern into frames: K video keyframe, v video, a audio,
// d data. A frame's index in the pattern is its PTS in milliseconds, which
// is how tests recognise it.
func mkFrames(t testing.TB, pattern string) []*Frame {
	t.Helper()
	frames := make([]*Frame, 0, len(pattern))
	for i, c := range pattern {
		f := &Frame{
			PTS:   time.Duration(i) * time.Millisecond,
			DTS:   time.Duration(i) * time.Millisecond,
			NALUs: [][]byte{payload},
		}
		switch c {
		case 'K':
			f.Key = true
		case 'v':
		case 'a':
			f.Track = 1
		case 'd':
			f.Track = 2
		default:
			t.Fatalf("bad pattern char %q", c)
		}
		frames = append(frames, f)
	}
	return frames
}

func seq(f *Frame) int { return int(f.PTS / time.Millisecond) }

func writeAll(h *Hub, frames []*Frame) {
	for _, f := range frames {
		h.Write(f)
	}
}

// drain reads until ErrHubClosed and returns the sequence numbers seen.
func drain(t *testing.T, s *Subscriber) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []int
	for {
		f, err := s.Next(ctx)
		if errors.Is(err, ErrHubClosed) {
			return got
		}
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(got), err)
		}
		got = append(got, seq(f))
	}
}

func span(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHubOrderPreserved(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tracks  []Track
		pattern string
		subs    int
	}{
		{"video and audio", avTracks, strings.Repeat("Kavavava", 50), 1},
		{"three subscribers", avTracks, strings.Repeat("Kavavdava", 50), 3},
		{"no keyframe yet", avTracks, strings.Repeat("va", 100), 2},
		{"audio only", audioTracks, strings.Repeat("a", 300), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := mkFrames(t, tc.pattern)
			h := NewHub(tc.tracks, HubOptions{MaxBufferedFrames: len(frames) + 1})
			subs := make([]*Subscriber, tc.subs)
			for i := range subs {
				subs[i] = h.Subscribe(fmt.Sprint("sub", i))
			}
			writeAll(h, frames)
			h.Close()
			for i, s := range subs {
				if got := drain(t, s); !equalInts(got, span(0, len(frames))) {
					t.Errorf("sub %d got %v, want 0..%d in order", i, got, len(frames)-1)
				}
				if s.Dropped() != 0 {
					t.Errorf("sub %d dropped %d", i, s.Dropped())
				}
			}
		})
	}
}

func TestHubLateSubscriberStartsAtGOP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tracks  []Track
		before  string // written before Subscribe
		after   string // written after
		want    int    // first frame the late subscriber gets
		wantGOP int
	}{
		{"empty hub", avTracks, "", "Kava", 0, 0},
		{"before any keyframe", avTracks, "vavav", "aKav", 5, 0},
		{"one keyframe", avTracks, "vavKavav", "Kav", 3, 5},
		{"keyframe is last frame", avTracks, "vavK", "av", 3, 1},
		{"second keyframe", avTracks, "KavavKava", "va", 5, 4},
		{"data frames kept", avTracks, "KavdKdadv", "a", 4, 5},
		{"audio key does not start a GOP", avTracks, "Kav", "a", 0, 3},
		{"audio only starts live", audioTracks, "aaaa", "aa", 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := mkFrames(t, tc.before+tc.after)
			if tc.name == "audio key does not start a GOP" {
				frames[1].Key = true
				frames[3].Key = true
			}
			h := NewHub(tc.tracks, HubOptions{})
			writeAll(h, frames[:len(tc.before)])
			if got := h.Stats().GOPFrames; got != tc.wantGOP {
				t.Errorf("GOPFrames = %d, want %d", got, tc.wantGOP)
			}
			s := h.Subscribe("late")
			writeAll(h, frames[len(tc.before):])
			h.Close()
			if got, want := drain(t, s), span(tc.want, len(frames)); !equalInts(got, want) {
				t.Errorf("late subscriber got %v, want %v", got, want)
			}
		})
	}
}

// checkDecodable asserts that got is strictly increasing, that every gap
// lands on a keyframe (or, when keyed is false, anywhere), and that the
// gaps add up to dropped.
func checkDecodable(t *testing.T, frames []*Frame, got []int, dropped int64, keyed bool) {
	t.Helper()
	var gaps int64
	prev := -1
	for i, n := range got {
		if n <= prev {
			t.Fatalf("frame %d: seq %d after %d", i, n, prev)
		}
		if n != prev+1 {
			gaps += int64(n - prev - 1)
			if keyed && !frames[n].Key {
				t.Fatalf("frame %d: resumed at seq %d which is not a keyframe", i, n)
			}
		}
		prev = n
	}
	if gaps != dropped {
		t.Fatalf("gaps add up to %d frames, Dropped() = %d", gaps, dropped)
	}
}

func TestHubSlowSubscriberIsCutForward(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tracks      []Track
		pattern     string
		max         int
		readFirst   int // frames read before falling behind
		want        int // first frame after the cut
		wantDropped int64
	}{
		// 40 frames, GOPs of 4, newest keyframe at 36.
		{"cut to newest keyframe", avTracks, strings.Repeat("Kava", 10), 8, 0, 36, 36},
		{"cut after reading some", avTracks, strings.Repeat("Kava", 10), 8, 5, 36, 31},
		// Backlog 11 > 8, but the cursor is inside the only GOP.
		{"inside the current GOP", avTracks, "K" + strings.Repeat("va", 5), 4, 0, 0, 0},
		{"keyframe not yet seen", avTracks, strings.Repeat("va", 10), 8, 0, 19, 19},
		{"audio only cut to newest", audioTracks, strings.Repeat("a", 40), 8, 0, 39, 39},
		{"within the bound", avTracks, strings.Repeat("Kava", 2), 8, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := mkFrames(t, tc.pattern)
			h := NewHub(tc.tracks, HubOptions{MaxBufferedFrames: tc.max})
			s := h.Subscribe("slow")
			writeAll(h, frames[:tc.readFirst])
			for i := 0; i < tc.readFirst; i++ {
				if _, err := s.Next(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			writeAll(h, frames[tc.readFirst:])
			h.Close()
			got := drain(t, s)
			if want := span(tc.want, len(frames)); !equalInts(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if s.Dropped() != tc.wantDropped {
				t.Errorf("Dropped() = %d, want %d", s.Dropped(), tc.wantDropped)
			}
		})
	}
}

// TestHubWriterNeverBlocks writes 100k frames while one subscriber never
// reads and another reads as fast as it can: the writer must finish
// promptly, memory must stay bounded, and both subscribers must only ever
// resume on keyframes.
func TestHubWriterNeverBlocks(t *testing.T) {
	const total = 100_000
	const maxBacklog = 64
	frames := mkFrames(t, strings.Repeat("Kvavavavavavavavavav", total/20)) // GOP of 20 frames
	h := NewHub(avTracks, HubOptions{MaxBufferedFrames: maxBacklog})
	idle := h.Subscribe("idle")
	busy := h.Subscribe("busy")

	var got []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := busy.Next(context.Background())
			if err != nil {
				return
			}
			got = append(got, seq(f))
		}
	}()

	start := time.Now()
	widest := uint64(0)
	for _, f := range frames {
		h.Write(f)
		h.mu.Lock()
		if w := h.head - h.tail; w > widest {
			widest = w
		}
		h.mu.Unlock()
	}
	elapsed := time.Since(start)
	if elapsed > 10*time.Second {
		t.Errorf("writing %d frames took %v", total, elapsed)
	}
	// The idle subscriber may pin at most its backlog bound plus a GOP.
	if widest > maxBacklog+20 {
		t.Errorf("hub retained up to %d frames, want <= %d", widest, maxBacklog+20)
	}
	h.Close()
	<-done

	checkDecodable(t, frames, got, busy.Dropped(), true)
	if got[len(got)-1] != total-1 {
		t.Errorf("busy subscriber ended at %d, want %d", got[len(got)-1], total-1)
	}
	idleGot := drain(t, idle)
	if len(idleGot) == 0 || idleGot[0] != total-20 {
		t.Fatalf("idle subscriber resumed at %v, want the newest keyframe %d", idleGot[:min(len(idleGot), 1)], total-20)
	}
	checkDecodable(t, frames, idleGot, idle.Dropped(), true)
	t.Logf("wrote %d frames in %v; busy dropped %d, idle dropped %d", total, elapsed, busy.Dropped(), idle.Dropped())
}

func TestHubCloseDrainsThenErrHubClosed(t *testing.T) {
	frames := mkFrames(t, "Kavava")
	h := NewHub(avTracks, HubOptions{})
	s := h.Subscribe("drainer")
	waiting := h.Subscribe("waiting")
	writeAll(h, frames)
	for range frames {
		if _, err := waiting.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	woke := make(chan error, 1)
	go func() {
		_, err := waiting.Next(context.Background())
		woke <- err
	}()

	h.Close()
	h.Close() // idempotent
	h.Write(mkFrames(t, "K")[0])
	if st := h.Stats(); st.FramesWritten != int64(len(frames)) {
		t.Errorf("Write after Close counted: FramesWritten = %d", st.FramesWritten)
	}
	if got := drain(t, s); !equalInts(got, span(0, len(frames))) {
		t.Errorf("drained %v, want all %d frames", got, len(frames))
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Next after drain: %v, want ErrHubClosed", err)
	}
	select {
	case err := <-woke:
		if !errors.Is(err, ErrHubClosed) {
			t.Errorf("blocked Next returned %v, want ErrHubClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked Next")
	}
	if _, err := h.Subscribe("after").Next(context.Background()); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Subscribe after Close: Next = %v, want ErrHubClosed", err)
	}
}

func TestSubscriberCloseDuringWrites(t *testing.T) {
	frames := mkFrames(t, strings.Repeat("Kavavavava", 100))
	h := NewHub(avTracks, HubOptions{MaxBufferedFrames: 32})

	var wg sync.WaitGroup
	for i := range 16 {
		s := h.Subscribe(fmt.Sprint("sub", i))
		wg.Go(func() {
			for n := 0; n < i*50; n++ {
				if _, err := s.Next(context.Background()); err != nil {
					t.Errorf("sub %d: %v", i, err)
					return
				}
			}
			// Close twice, concurrently, while the writer is running.
			var cw sync.WaitGroup
			cw.Go(s.Close)
			cw.Go(s.Close)
			cw.Wait()
			if _, err := s.Next(context.Background()); !errors.Is(err, ErrHubClosed) {
				t.Errorf("sub %d: Next after Close = %v, want ErrHubClosed", i, err)
			}
		})
	}
	// A subscriber blocked in Next (on a hub nobody writes to) is released
	// by its own Close.
	blocked := NewHub(avTracks, HubOptions{}).Subscribe("blocked")
	wg.Go(func() {
		if _, err := blocked.Next(context.Background()); !errors.Is(err, ErrHubClosed) {
			t.Errorf("blocked Next = %v, want ErrHubClosed after Close", err)
		}
	})
	wg.Go(func() {
		time.Sleep(10 * time.Millisecond)
		blocked.Close()
	})

	// The writer keeps going until every subscriber has closed itself, so
	// each Close races with Write.
	stop := make(chan struct{})
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				h.Write(frames[i%len(frames)])
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-written
	if n := h.Stats().Subscribers; n != 0 {
		t.Errorf("Subscribers = %d after every subscriber closed, want 0", n)
	}
	// With nobody subscribed the hub holds only the current GOP.
	h.mu.Lock()
	held := h.head - h.tail
	h.mu.Unlock()
	if held > 10 {
		t.Errorf("hub holds %d frames with no subscribers, want <= 10 (one GOP)", held)
	}
}

func TestSubscriberNextContext(t *testing.T) {
	h := NewHub(avTracks, HubOptions{})
	s := h.Subscribe("ctx")

	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 10*time.Millisecond)
		}, context.DeadlineExceeded},
		{"already cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := s.Next(ctx)
				errc <- err
			}()
			select {
			case err := <-errc:
				if !errors.Is(err, tc.want) {
					t.Errorf("Next = %v, want %v", err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Next did not return after its context ended")
			}
		})
	}

	// The subscriber is still usable and lost nothing.
	writeAll(h, mkFrames(t, "Ka"))
	for want := range 2 {
		f, err := s.Next(context.Background())
		if err != nil || seq(f) != want {
			t.Fatalf("Next after cancellations = %v, %v; want frame %d", f, err, want)
		}
	}
}

func TestHubAudioOnly(t *testing.T) {
	h := NewHub(audioTracks, HubOptions{MaxBufferedFrames: 64})
	early := h.Subscribe("early")
	frames := mkFrames(t, strings.Repeat("a", 100))
	writeAll(h, frames[:50])
	if st := h.Stats(); st.GOPFrames != 0 {
		t.Errorf("audio-only hub buffers a GOP of %d frames", st.GOPFrames)
	}
	late := h.Subscribe("late")
	writeAll(h, frames[50:])
	h.Close()

	if got := drain(t, late); !equalInts(got, span(50, 100)) {
		t.Errorf("late subscriber got %v, want 50..99 (live only)", got)
	}
	got := drain(t, early)
	if !equalInts(got, []int{99}) || early.Dropped() != 99 {
		t.Errorf("slow audio subscriber got %v with %d dropped, want [99] with 99 dropped", got, early.Dropped())
	}
	// Without a GOP or a reader, nothing is pinned beyond the backlog bound.
	h.mu.Lock()
	held := h.head - h.tail
	h.mu.Unlock()
	if held > 64 {
		t.Errorf("audio-only hub holds %d frames, want <= 64", held)
	}
}

func TestHubManyConcurrentSubscribers(t *testing.T) {
	const subs = 64
	frames := mkFrames(t, strings.Repeat("Kavavdavav", 300))
	// A bound above the stream length makes delivery lossless, so every
	// subscriber must see exactly the whole stream.
	h := NewHub(avTracks, HubOptions{MaxBufferedFrames: len(frames) + 1})
	results := make([][]int, subs)
	var wg sync.WaitGroup
	for i := range subs {
		s := h.Subscribe(fmt.Sprint("sub", i))
		wg.Go(func() { results[i] = drain(t, s) })
	}
	writeAll(h, frames)
	if n := h.Stats().Subscribers; n != subs {
		t.Errorf("Subscribers = %d, want %d", n, subs)
	}
	h.Close()
	wg.Wait()
	for i, got := range results {
		if !equalInts(got, span(0, len(frames))) {
			t.Fatalf("sub %d got %d frames (first gap or reorder breaks order), want %d in order", i, len(got), len(frames))
		}
	}
}

func TestHubGOPCap(t *testing.T) {
	long := mkFrames(t, "K"+strings.Repeat("va", maxGOPFrames/2+10))
	slow := mkFrames(t, "Kvvvvvvvvvvvv")
	for i, f := range slow {
		f.DTS = time.Duration(i) * time.Second // 1 fps: 10 s is crossed at frame 11
	}
	walled := mkFrames(t, "Kvvvvvvvvvvvv")
	t0 := time.Now()
	for i, f := range walled {
		f.DTS = 0 // media time stuck, wall clock must still count
		f.Wall = t0.Add(time.Duration(i) * time.Second)
	}
	for _, tc := range []struct {
		name    string
		frames  []*Frame
		keptAt  int // frames written when the GOP is still kept
		wantGOP int
	}{
		{"frame cap", long, maxGOPFrames, maxGOPFrames},
		{"duration cap by DTS", slow, 11, 11},
		{"duration cap by wall clock", walled, 11, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub(avTracks, HubOptions{})
			writeAll(h, tc.frames[:tc.keptAt])
			if got := h.Stats().GOPFrames; got != tc.wantGOP {
				t.Fatalf("GOPFrames at the cap = %d, want %d", got, tc.wantGOP)
			}
			h.Write(tc.frames[tc.keptAt])
			if got := h.Stats().GOPFrames; got != 0 {
				t.Fatalf("GOPFrames past the cap = %d, want 0", got)
			}
			h.mu.Lock()
			held := h.head - h.tail
			h.mu.Unlock()
			if held != 0 {
				t.Errorf("hub still holds %d frames past the cap with no subscriber", held)
			}
			// A late subscriber now starts live rather than on stale,
			// undecodable frames; a keyframe restores the GOP.
			s := h.Subscribe("late")
			writeAll(h, tc.frames[tc.keptAt+1:])
			key := &Frame{PTS: time.Duration(len(tc.frames)) * time.Millisecond, Key: true}
			h.Write(key)
			if got := h.Stats().GOPFrames; got != 1 {
				t.Errorf("GOPFrames after a new keyframe = %d, want 1", got)
			}
			h.Close()
			if got, want := drain(t, s), span(tc.keptAt+1, len(tc.frames)+1); !equalInts(got, want) {
				t.Errorf("late subscriber got %v, want %v", got, want)
			}
		})
	}
}

func TestHubStatsAndTracks(t *testing.T) {
	h := NewHub(avTracks, HubOptions{})
	frames := mkFrames(t, "vKava")
	frames[2].NALUs = [][]byte{payload, payload[:7]}
	writeAll(h, frames)
	s := h.Subscribe("a")
	h.Subscribe("b")
	want := HubStats{Subscribers: 2, FramesWritten: 5, BytesWritten: 5*100 + 7, GOPFrames: 4}
	if got := h.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	s.Close()
	if got := h.Stats().Subscribers; got != 1 {
		t.Errorf("Subscribers after Close = %d, want 1", got)
	}
	tr := h.Tracks()
	tr[0].Codec = "changed"
	if h.Tracks()[0].Codec != CodecH264 {
		t.Error("Tracks() exposes the hub's own slice")
	}
	if s.Name() != "a" {
		t.Errorf("Name() = %q", s.Name())
	}
}

// TestHubBurstIsNotCut: a burst of several short GOPs written before a
// subscriber is scheduled (RTMP track discovery replays ~2 s at once) is
// delivered whole, not cut forward to its last keyframe.
func TestHubBurstIsNotCut(t *testing.T) {
	frames := mkFrames(t, strings.Repeat("Kavavavav", 15)) // 135 frames, 15 GOPs
	h := NewHub(avTracks, HubOptions{})
	s := h.Subscribe("late")
	writeAll(h, frames)
	for i := range frames {
		f, err := s.Next(context.Background())
		if err != nil || f != frames[i] {
			t.Fatalf("frame %d: got %+v, %v", i, f, err)
		}
	}
	if s.Dropped() != 0 {
		t.Errorf("dropped %d frames of a burst", s.Dropped())
	}
}

// TestHubDefaultHoldsOneGOPBehind: with the default options a subscriber
// that stops reading pins at most the previous GOP, and is then cut
// forward to the current one.
func TestHubDefaultHoldsOneGOPBehind(t *testing.T) {
	frames := mkFrames(t, strings.Repeat("Kavavavav", 100)) // GOPs of 9 frames
	h := NewHub(avTracks, HubOptions{})
	stalled := h.Subscribe("stalled")
	writeAll(h, frames)
	h.mu.Lock()
	held := h.head - h.tail
	h.mu.Unlock()
	if held > burstFrames+9 {
		t.Fatalf("a stalled subscriber pins %d frames, want at most one burst and a GOP (%d)", held, burstFrames+9)
	}
	f, err := stalled.Next(context.Background())
	if err != nil || !f.Key || stalled.Dropped() == 0 {
		t.Fatalf("stalled subscriber resumed at %+v (dropped %d, %v), want a keyframe after a cut", f, stalled.Dropped(), err)
	}
}
