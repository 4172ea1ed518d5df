package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/events"
)

// Files in DATA_DIR that the event outbox keeps.
const (
	// nodeIDFile names this node for sink leases, stable across restarts
	// so that a restarted node resumes delivery at once.
	nodeIDFile = "node-id"
	// webhookSecretFile holds the secret that signs deliveries to the
	// --event-webhook URLs when OPENIVS_EVENT_WEBHOOK_SECRET is unset.
	webhookSecretFile = "event-webhook-secret"
)

// buildOutbox makes the event outbox and its sinks: the structured log
// always, every --event-webhook, every event-sinks: entry, and NATS when
// --nats-url is set.
func (a *App) buildOutbox() (*events.Outbox, error) {
	routes := []events.Route{{Sink: events.LogSink{Logger: a.log}}}
	if len(a.cfg.EventWebhooks) > 0 {
		secret, err := a.webhookSecret()
		if err != nil {
			return nil, err
		}
		for _, url := range a.cfg.EventWebhooks {
			routes = append(routes, events.Route{Sink: events.NewWebhook("", url, secret)})
		}
	}
	for i, s := range a.cfg.EventSinks {
		pattern, err := events.PatternFromValue(s.Pattern)
		if err != nil {
			return nil, fmt.Errorf("event-sinks[%d]: %w", i, err)
		}
		routes = append(routes, events.Route{Sink: events.NewWebhook(s.Name, s.URL, []byte(s.Secret)), Pattern: pattern})
	}
	if a.cfg.NATSURL != "" {
		a.natsSink = events.NewNATS(a.cfg.NATSURL, a.log)
		routes = append(routes, events.Route{Sink: a.natsSink})
	}
	holder, err := a.nodeID()
	if err != nil {
		return nil, err
	}
	outbox, err := events.NewOutbox(events.OutboxConfig{
		Store: a.store, Routes: routes, Holder: holder,
		MaxAge: a.cfg.EventRetryMaxAge, MaxBackoff: a.cfg.EventRetryMaxBackoff,
		OnAttempt: a.eventAttempt, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	if a.metrics != nil {
		a.metrics.ObserveOutboxDepth(func() int {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			pending, err := outbox.Pending(ctx)
			if err != nil {
				return 0
			}
			n := 0
			for _, p := range pending {
				n += int(p)
			}
			return n
		})
	}
	return outbox, nil
}

// eventAttempt counts failed deliveries per sink.
func (a *App) eventAttempt(sink string, err error) {
	if err != nil && a.metrics != nil {
		a.metrics.SinkFailure(sink)
	}
}

// runOutbox delivers events until stopOutbox.
func (a *App) runOutbox() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.outboxStop = func() { cancel(); <-done }
	go func() { defer close(done); a.outbox.Run(ctx) }()
}

// stopOutbox gives the deliverers a moment to send what the shutdown
// itself produced (Stream End of the streams it ended), then stops them;
// whatever is left goes out at the next start.
func (a *App) stopOutbox(grace time.Duration) {
	if a.outbox == nil || a.outboxStop == nil {
		return
	}
	a.outbox.Wake()
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		pending, err := a.outbox.Pending(context.Background())
		if err != nil {
			break
		}
		var n int64
		for _, p := range pending {
			n += p
		}
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.outboxStop()
	if a.natsSink != nil {
		a.natsSink.Close()
	}
}

// webhookSecret is OPENIVS_EVENT_WEBHOOK_SECRET, or the secret generated
// once into DATA_DIR.
func (a *App) webhookSecret() ([]byte, error) {
	if a.cfg.EventWebhookSecret != "" {
		return []byte(a.cfg.EventWebhookSecret), nil
	}
	path := filepath.Join(a.cfg.DataDir, webhookSecretFile)
	secret, created, err := readOrCreateToken(path)
	if err != nil {
		return nil, fmt.Errorf("event webhook secret: %w", err)
	}
	if created {
		a.log.Info("generated the event webhook signing secret", "file", path)
	}
	return []byte(secret), nil
}

func (a *App) nodeID() (string, error) {
	id, _, err := readOrCreateToken(filepath.Join(a.cfg.DataDir, nodeIDFile))
	if err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return id, nil
}

// readOrCreateToken reads a one-line random token from path, creating it
// (0600) when missing.
func readOrCreateToken(path string) (string, bool, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(raw)); tok != "" {
			return tok, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	if err := writeFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return tok, true, nil
}

// breachThrottle sends IVS's Concurrent Viewers limit breach at most once
// a minute per account: a crowd turned away would otherwise raise one per
// request.
type breachThrottle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// viewerBreachInterval is the least time between two breach events.
const viewerBreachInterval = time.Minute

func (b *breachThrottle) publish(a *App) func(account string, limit, attempted int) {
	return func(account string, limit, attempted int) {
		now := time.Now()
		b.mu.Lock()
		if b.last == nil {
			b.last = map[string]time.Time{}
		}
		if now.Sub(b.last[account]) < viewerBreachInterval {
			b.mu.Unlock()
			return
		}
		b.last[account] = now
		b.mu.Unlock()
		a.outbox.Publish(context.Background(), events.New(events.LimitBreach, account, a.cfg.Region, now, map[string]any{
			"limit_name": "Concurrent Viewers", "limit_unit": "viewers",
			"limit_value": limit, "exceeded_by": attempted - limit,
		}))
	}
}

// deadLetters serves GET /v1/events/dead-letters: the events each sink
// gave up on (newest first, at most 100 per sink, ?sink=NAME for one),
// with the last error, so an operator can see and replay them.
func (a *App) deadLetters(w http.ResponseWriter, r *http.Request) {
	type letter struct {
		Sink   string          `json:"sink"`
		Seq    int64           `json:"seq"`
		Error  string          `json:"error"`
		DeadAt time.Time       `json:"deadAt"`
		Event  json.RawMessage `json:"event"`
	}
	out := struct {
		DeadLetters []letter `json:"deadLetters"`
	}{DeadLetters: []letter{}}
	for _, sink := range a.outbox.SinkNames() {
		if want := r.URL.Query().Get("sink"); want != "" && want != sink {
			continue
		}
		dead, err := a.store.DeadLetters(r.Context(), sink, 100)
		if err != nil {
			http.Error(w, `{"message":"cannot read dead letters"}`, http.StatusInternalServerError)
			return
		}
		for _, d := range dead {
			out.DeadLetters = append(out.DeadLetters, letter{Sink: sink, Seq: d.Seq, Error: d.Error, DeadAt: d.DeadAt, Event: d.Body})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
