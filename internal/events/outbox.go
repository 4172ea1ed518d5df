package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/store"
)

// Sink is where events are delivered: a webhook, a NATS subject, the log.
type Sink interface {
	// Name identifies the sink across restarts; the outbox tracks what it
	// delivered under this name. It must not contain secrets.
	Name() string
	// Deliver sends one event; nil means the sink has it. It may be called
	// again for the same event (at-least-once): sinks pass e.ID on for
	// de-duplication.
	Deliver(ctx context.Context, e *Event, body []byte) error
}

// Route is a sink with the pattern that selects its events (nil: all).
type Route struct {
	Sink    Sink
	Pattern *Pattern
}

// OutboxConfig wires an Outbox.
type OutboxConfig struct {
	Store  store.Outbox
	Routes []Route
	// Holder names this node for sink leases: with several nodes on one
	// store, each sink is delivered from one node at a time. Keep it stable
	// across restarts so a restarted node resumes its leases at once.
	Holder string
	// MaxAge is how long an event is retried before it is dead-lettered
	// (IVS: "several hours"; default 24 h).
	MaxAge time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts on one partition (default 1 s and 1 min).
	MinBackoff, MaxBackoff time.Duration
	// Poll is how often the store is read without a wake-up, for events
	// other nodes appended (default 1 s).
	Poll time.Duration
	// Retention is how long delivered events stay in the outbox (default
	// 7 days, and never less than MaxAge).
	Retention time.Duration
	// OnAttempt, when set, sees every delivery attempt (metrics).
	OnAttempt func(sink string, err error)
	Logger    *slog.Logger
}

// Outbox is the durable event bus: events are appended to the store (with
// the state change that caused them, or alone through Publish) and every
// route's deliverer sends them at least once, in order per partition, with
// exponential backoff, until MaxAge, then dead-letters them.
type Outbox struct {
	cfg  OutboxConfig
	log  *slog.Logger
	wake []chan struct{} // one per route

	// failed holds events Publish could not append yet (store down); they
	// are retried in the background.
	mu     sync.Mutex
	failed []store.OutboxEvent
}

// Defaults of OutboxConfig.
const (
	DefaultMaxAge     = 24 * time.Hour
	DefaultRetention  = 7 * 24 * time.Hour
	defaultMinBackoff = time.Second
	defaultMaxBackoff = time.Minute
	defaultPoll       = time.Second
	leaseTTL          = 30 * time.Second
	// batchSize bounds the events read per pass and per partition handed
	// to one delivery worker.
	batchSize = 512
	// maxWorkers bounds partitions delivered at once per sink.
	maxWorkers = 32
)

// NewOutbox checks the configuration; Run starts delivery.
func NewOutbox(cfg OutboxConfig) (*Outbox, error) {
	if cfg.Store == nil {
		return nil, errors.New("events: outbox without a store")
	}
	if cfg.Holder == "" {
		return nil, errors.New("events: outbox without a holder name")
	}
	seen := map[string]bool{}
	for _, r := range cfg.Routes {
		if r.Sink == nil {
			return nil, errors.New("events: route without a sink")
		}
		if seen[r.Sink.Name()] {
			return nil, fmt.Errorf("events: two sinks named %q", r.Sink.Name())
		}
		seen[r.Sink.Name()] = true
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(defaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = defaultPoll
	}
	if cfg.Retention < cfg.MaxAge {
		cfg.Retention = max(DefaultRetention, cfg.MaxAge)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	o := &Outbox{cfg: cfg, log: cfg.Logger}
	for range cfg.Routes {
		o.wake = append(o.wake, make(chan struct{}, 1))
	}
	return o, nil
}

// Record turns an event into its outbox row: ordered per channel (the
// first resource), or per account for account-level events.
func Record(e Event) (store.OutboxEvent, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return store.OutboxEvent{}, fmt.Errorf("events: encode %s: %w", e.DetailType, err)
	}
	partition := "account/" + e.Account
	if len(e.Resources) > 0 {
		partition = e.Resources[0]
	}
	return store.OutboxEvent{Partition: partition, Body: body}, nil
}

// Records converts events for a store write (Resource.Events).
func Records(evs []Event) ([]store.OutboxEvent, error) {
	out := make([]store.OutboxEvent, 0, len(evs))
	for _, e := range evs {
		r, err := Record(e)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Publish appends an event that no state change carries. If the store
// refuses it, it is kept and appended again in the background.
func (o *Outbox) Publish(ctx context.Context, e Event) {
	rec, err := Record(e)
	if err != nil {
		o.log.Error("event dropped: cannot encode", "detail-type", e.DetailType, "err", err)
		return
	}
	if err := o.cfg.Store.AppendEvents(context.WithoutCancel(ctx), []store.OutboxEvent{rec}); err != nil {
		o.log.Warn("event outbox unavailable; keeping the event to append later", "id", e.ID, "err", err)
		o.mu.Lock()
		o.failed = append(o.failed, rec)
		o.mu.Unlock()
		return
	}
	o.Wake()
}

// Wake tells the deliverers that events were committed.
func (o *Outbox) Wake() {
	for _, w := range o.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// SinkNames lists the sinks' names.
func (o *Outbox) SinkNames() []string {
	out := make([]string, 0, len(o.cfg.Routes))
	for _, r := range o.cfg.Routes {
		out = append(out, r.Sink.Name())
	}
	return out
}

// Pending reports how many events each sink has not settled yet.
func (o *Outbox) Pending(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64, len(o.cfg.Routes))
	for _, r := range o.cfg.Routes {
		n, err := o.cfg.Store.PendingCount(ctx, r.Sink.Name())
		if err != nil {
			return nil, err
		}
		out[r.Sink.Name()] = n
	}
	return out, nil
}

// Run delivers until ctx ends.
func (o *Outbox) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, r := range o.cfg.Routes {
		d := &deliverer{o: o, route: r, wake: o.wake[i]}
		wg.Add(1)
		go func() { defer wg.Done(); d.run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); o.housekeep(ctx) }()
	wg.Wait()
}

// housekeep appends events Publish could not, compacts each sink's
// settlements and prunes the outbox.
func (o *Outbox) housekeep(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastCompact time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			o.mu.Lock()
			failed := o.failed
			o.failed = nil
			o.mu.Unlock()
			if len(failed) > 0 {
				if err := o.cfg.Store.AppendEvents(ctx, failed); err != nil {
					o.mu.Lock()
					o.failed = append(failed, o.failed...)
					o.mu.Unlock()
				} else {
					o.Wake()
				}
			}
			if now.Sub(lastCompact) < time.Minute {
				continue
			}
			lastCompact = now
			// A transaction holding a lower seq commits within seconds; a
			// minute is a wide margin.
			for _, r := range o.cfg.Routes {
				if err := o.cfg.Store.CompactOutbox(ctx, r.Sink.Name(), now.Add(-time.Minute)); err != nil && ctx.Err() == nil {
					o.log.Warn("compacting the event outbox", "sink", r.Sink.Name(), "err", err)
				}
			}
			if n, err := o.cfg.Store.PruneOutbox(ctx, now.Add(-o.cfg.Retention)); err != nil && ctx.Err() == nil {
				o.log.Warn("pruning the event outbox", "err", err)
			} else if n > 0 {
				o.log.Info("pruned delivered events past retention", "events", n)
			}
		}
	}
}

// deliverer sends one route's events.
type deliverer struct {
	o     *Outbox
	route Route
	wake  chan struct{}
}

// batchResult is what a worker reports for one partition's batch.
type batchResult struct {
	partition string
	settled   []store.Settlement
	failedAt  *store.OutboxEvent // the event that failed, nil when all went
	err       error
}

type partitionRetry struct {
	attempts int
	until    time.Time
}

func (d *deliverer) run(ctx context.Context) {
	name := d.route.Sink.Name()
	results := make(chan batchResult, maxWorkers)
	inflight := map[string]bool{}
	retry := map[string]*partitionRetry{}
	var unsettled []store.Settlement
	var leased bool
	var leaseAt time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		if now.Sub(leaseAt) > leaseTTL/3 {
			ok, err := d.o.cfg.Store.AcquireSinkLease(ctx, name, d.o.cfg.Holder, leaseTTL)
			if err != nil && ctx.Err() == nil {
				d.o.log.Warn("event sink lease", "sink", name, "err", err)
			}
			leased, leaseAt = ok && err == nil, now
		}
		if len(unsettled) > 0 {
			if err := d.o.cfg.Store.SettleEvents(ctx, name, unsettled); err == nil {
				unsettled = nil
			} else if ctx.Err() == nil {
				d.o.log.Warn("recording event deliveries", "sink", name, "err", err)
			}
		}
		next := now.Add(d.o.cfg.Poll)
		if leased && len(unsettled) == 0 && len(inflight) < maxWorkers {
			skip := make([]string, 0, len(inflight)+len(retry))
			for p := range inflight {
				skip = append(skip, p)
			}
			for p, r := range retry {
				if now.Before(r.until) {
					skip = append(skip, p)
					if r.until.Before(next) {
						next = r.until
					}
				}
			}
			evs, err := d.o.cfg.Store.PendingEvents(ctx, name, skip, batchSize)
			if err != nil && ctx.Err() == nil {
				d.o.log.Warn("reading the event outbox", "sink", name, "err", err)
			}
			unsettled = append(unsettled, d.dispatch(ctx, evs, inflight, retry, results)...)
			if len(unsettled) > 0 {
				next = now // settle the filtered-out events and read on
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		case res := <-results:
			unsettled = append(unsettled, d.settle(res, retry)...)
			delete(inflight, res.partition)
		drain:
			for {
				select {
				case res := <-results:
					unsettled = append(unsettled, d.settle(res, retry)...)
					delete(inflight, res.partition)
				default:
					break drain
				}
			}
		}
	}
}

// dispatch hands each partition's run of matching events to a worker, and
// returns the settlements of events the pattern leaves out that come
// before them.
func (d *deliverer) dispatch(ctx context.Context, evs []store.OutboxEvent, inflight map[string]bool,
	retry map[string]*partitionRetry, results chan<- batchResult) []store.Settlement {
	var filtered []store.Settlement
	batches := map[string][]store.OutboxEvent{}
	var order []string
	for _, e := range evs {
		if inflight[e.Partition] {
			continue
		}
		if _, started := batches[e.Partition]; !started && !d.route.Pattern.Match(e.Body) {
			filtered = append(filtered, store.Settlement{Seq: e.Seq})
			continue
		}
		if _, started := batches[e.Partition]; !started {
			if len(inflight)+len(order) >= maxWorkers {
				continue
			}
			order = append(order, e.Partition)
		}
		batches[e.Partition] = append(batches[e.Partition], e)
	}
	for _, p := range order {
		inflight[p] = true
		batch := batches[p]
		go func() { results <- d.deliver(ctx, p, batch) }()
	}
	return filtered
}

// deliver sends a partition's events in order and stops at the first
// failure.
func (d *deliverer) deliver(ctx context.Context, partition string, batch []store.OutboxEvent) batchResult {
	res := batchResult{partition: partition}
	for i := range batch {
		e := &batch[i]
		if !d.route.Pattern.Match(e.Body) {
			res.settled = append(res.settled, store.Settlement{Seq: e.Seq})
			continue
		}
		var ev Event
		err := json.Unmarshal(e.Body, &ev)
		if err == nil {
			err = d.route.Sink.Deliver(ctx, &ev, e.Body)
		} else {
			err = fmt.Errorf("undecodable event: %w", err)
		}
		if d.o.cfg.OnAttempt != nil {
			d.o.cfg.OnAttempt(d.route.Sink.Name(), err)
		}
		if err != nil {
			res.failedAt, res.err = e, err
			return res
		}
		res.settled = append(res.settled, store.Settlement{Seq: e.Seq})
	}
	return res
}

// settle turns a worker's result into settlements and the partition's
// retry state.
func (d *deliverer) settle(res batchResult, retry map[string]*partitionRetry) []store.Settlement {
	if res.failedAt == nil {
		delete(retry, res.partition)
		return res.settled
	}
	out := res.settled
	e := res.failedAt
	if time.Since(e.CreatedAt) > d.o.cfg.MaxAge {
		d.o.log.Error("event dead-lettered after retrying", "sink", d.route.Sink.Name(), "seq", e.Seq,
			"age", time.Since(e.CreatedAt).Round(time.Second), "err", res.err)
		delete(retry, res.partition)
		return append(out, store.Settlement{Seq: e.Seq, Dead: true, Error: truncate(res.err.Error(), 1024)})
	}
	r := retry[res.partition]
	if r == nil {
		r = &partitionRetry{}
		retry[res.partition] = r
	}
	r.attempts++
	wait := d.o.cfg.MinBackoff << min(r.attempts-1, 30)
	if wait > d.o.cfg.MaxBackoff || wait <= 0 {
		wait = d.o.cfg.MaxBackoff
	}
	// Jitter keeps many partitions from retrying in lockstep.
	wait = wait/2 + rand.N(wait/2+1)
	r.until = time.Now().Add(wait)
	if r.attempts == 1 || r.attempts%10 == 0 {
		d.o.log.Warn("event delivery failed; retrying", "sink", d.route.Sink.Name(), "partition", res.partition,
			"attempts", r.attempts, "retry_in", wait.Round(time.Millisecond), "err", res.err)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
