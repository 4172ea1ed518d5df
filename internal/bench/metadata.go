package bench

// The metadata benchmark measures what an app's PutMetadata call costs a
// viewer: a player at the live edge (RunLatency's page and player) plays
// the channel while the benchmark calls PutMetadata at a steady rate; each
// payload names its call, and the delay is the call's start → the player's
// TEXT_METADATA_CUE for it (fired when the tagged frame is shown). Both
// times come from this machine's clock. The target (issue 6): delay ≤
// player latency + part duration + 100 ms.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MetadataOptions configures RunMetadata.
type MetadataOptions struct {
	// Player is how the viewer plays (URL, browser, warm-up, ...); its
	// Duration is a minimum, the run lasts until every call is made.
	Player LatencyOptions
	// Calls is how many PutMetadata calls to make (default 100).
	Calls int
	// Interval between calls (default 250 ms: 4 a second, within IVS's
	// 5 per second per channel).
	Interval time.Duration
	// Drain is how long to wait for cues after the last call (default 5 s).
	Drain time.Duration
	// Put makes one PutMetadata call with this payload.
	Put func(ctx context.Context, text string) error
}

// MetadataResult is what one run measured. Times are in seconds.
type MetadataResult struct {
	Player *LatencyResult `json:"player"`
	Calls  int            `json:"calls"`
	// Failed calls returned an error; Delivered cues matched a successful
	// call (once); Lost calls never fired a cue; Duplicates fired again;
	// OutOfOrder fired before an earlier call's cue.
	Failed     int      `json:"failed"`
	Delivered  int      `json:"delivered"`
	Lost       int      `json:"lost"`
	Duplicates int      `json:"duplicates"`
	OutOfOrder int      `json:"outOfOrder"`
	Errors     []string `json:"errors,omitempty"` // distinct call errors, at most 5
	// CallTime is PutMetadata's round trip; Delay the call's start → the
	// cue; Excess is Delay minus the player's latency at that moment.
	CallTime LatencyStats `json:"callTime"`
	Delay    LatencyStats `json:"delay"`
	Excess   LatencyStats `json:"excess"`
	// Bound is the target for Delay (player latency p50 + part target +
	// 0.1 s); WithinBound the share of delivered cues whose delay was
	// within their own bound (latency at that moment + part + 0.1 s).
	Bound       float64 `json:"bound"`
	WithinBound float64 `json:"withinBound"`
}

// OK reports whether the run measured anything.
func (r *MetadataResult) OK() bool { return r.Delivered > 0 }

// metadataPayload is what call i sends: small, JSON, and naming the call.
func metadataPayload(i int) string {
	return `{"openivsBench":` + strconv.Itoa(i) + `,"poll":"Who wins?","answers":["A","B"]}`
}

// metadataCall reads the call number back out of a payload.
func metadataCall(text string) (int, bool) {
	var p struct {
		N *int `json:"openivsBench"`
	}
	if json.Unmarshal([]byte(text), &p) != nil || p.N == nil {
		return 0, false
	}
	return *p.N, true
}

// RunMetadata plays the channel and calls PutMetadata opts.Calls times.
func RunMetadata(ctx context.Context, opts MetadataOptions) (*MetadataResult, error) {
	if opts.Put == nil {
		return nil, fmt.Errorf("bench: RunMetadata needs a Put function")
	}
	if opts.Calls <= 0 {
		opts.Calls = 100
	}
	if opts.Interval <= 0 {
		opts.Interval = 250 * time.Millisecond
	}
	if opts.Drain <= 0 {
		opts.Drain = 5 * time.Second
	}
	progress := opts.Player.Progress
	if progress == nil {
		progress = io.Discard
	}
	type call struct {
		start time.Time
		took  time.Duration
		err   error
	}
	calls := make([]call, opts.Calls)
	var mu sync.Mutex
	player := opts.Player
	player.During = func(ctx context.Context) error {
		fmt.Fprintf(progress, "calling PutMetadata %d times, one every %s\n", opts.Calls, opts.Interval)
		began := time.Now()
		for i := range opts.Calls {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(began.Add(time.Duration(i) * opts.Interval))):
			}
			start := time.Now()
			err := opts.Put(ctx, metadataPayload(i))
			mu.Lock()
			calls[i] = call{start: start, took: time.Since(start), err: err}
			mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(opts.Drain):
		}
		return nil
	}
	pr, err := RunLatency(ctx, player)
	if err != nil {
		return nil, err
	}
	res := &MetadataResult{Player: pr, Calls: opts.Calls}
	if pr.DuringErr != nil {
		return nil, fmt.Errorf("bench: the calls were cut short: %w", pr.DuringErr)
	}
	bound := func(lat float64) float64 { return lat + pr.PartTarget + 0.1 }
	res.Bound = bound(pr.Latency.P50)

	seen := make([]bool, opts.Calls)
	var took, delay, excess []float64
	errs := map[string]bool{}
	for _, c := range calls {
		if c.err != nil {
			res.Failed++
			if msg := c.err.Error(); !errs[msg] && len(res.Errors) < 5 {
				errs[msg] = true
				res.Errors = append(res.Errors, msg)
			}
			continue
		}
		if !c.start.IsZero() {
			took = append(took, c.took.Seconds())
		}
	}
	last, within := -1, 0
	for _, cue := range pr.MetadataCues {
		i, ok := metadataCall(cue.Text)
		if !ok || i < 0 || i >= opts.Calls || calls[i].start.IsZero() || calls[i].err != nil {
			continue
		}
		if seen[i] {
			res.Duplicates++
			continue
		}
		seen[i] = true
		if i < last {
			res.OutOfOrder++
		}
		last = max(last, i)
		res.Delivered++
		d := cue.At.Sub(calls[i].start).Seconds()
		delay = append(delay, d)
		if lat, ok := pr.latencyAt(cue.At); ok {
			excess = append(excess, d-lat)
			if d <= bound(lat) {
				within++
			}
		}
	}
	res.Lost = opts.Calls - res.Failed - res.Delivered
	res.CallTime, res.Delay, res.Excess = latencyStatsOf(took), latencyStatsOf(delay), latencyStatsOf(excess)
	if len(excess) > 0 {
		res.WithinBound = float64(within) / float64(len(excess))
	}
	return res, nil
}

// Summary is the one-line result.
func (r *MetadataResult) Summary() string {
	return fmt.Sprintf("PutMetadata → cue p50 %.3f s  p95 %.3f s (bound %.3f s; %.0f%% within their bound); %d/%d delivered, %d lost, %d duplicated, %d out of order, %d failed",
		r.Delay.P50, r.Delay.P95, r.Bound, 100*r.WithinBound, r.Delivered, r.Calls, r.Lost, r.Duplicates, r.OutOfOrder, r.Failed)
}

// Report writes the result for a person.
func (r *MetadataResult) Report(w io.Writer) {
	st := func(x LatencyStats) string {
		return fmt.Sprintf("p50 %.3f s  p95 %.3f s  min %.3f s  max %.3f s  (n=%d)", x.P50, x.P95, x.Min, x.Max, x.N)
	}
	fmt.Fprintln(w, r.Summary())
	fmt.Fprintf(w, "  call → cue        %s\n", st(r.Delay))
	fmt.Fprintf(w, "  minus latency     %s\n", st(r.Excess))
	fmt.Fprintf(w, "  PutMetadata took  %s\n", st(r.CallTime))
	fmt.Fprintf(w, "  player latency    p50 %.3f s  p95 %.3f s; part target %.3f s\n", r.Player.Latency.P50, r.Player.Latency.P95, r.Player.PartTarget)
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "  call errors       %s\n", strings.Join(r.Errors, "; "))
	}
	fmt.Fprintln(w, "player:")
	r.Player.Report(w)
}

// JSON writes the result as one JSON object, with the summary.
func (r *MetadataResult) JSON(w io.Writer) error {
	type plain MetadataResult
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		OK      bool   `json:"ok"`
		Summary string `json:"summary"`
		*plain
	}{r.OK(), r.Summary(), (*plain)(r)})
}
