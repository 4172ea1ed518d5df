package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/events"
)

// An event a webhook keeps refusing past --event-retry-max-age is dead-
// lettered and listed at /v1/events/dead-letters; the webhook secret the
// node generated signs what it sends.
func TestDeadLettersVisible(t *testing.T) {
	var refusals atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refusals.Add(1)
		http.Error(w, "no thanks", http.StatusTeapot)
	}))
	defer hook.Close()
	cfg := testConfig(t.TempDir())
	cfg.EventWebhooks = []string{hook.URL}
	cfg.EventRetryMaxAge, cfg.EventRetryMaxBackoff = 500*time.Millisecond, 100*time.Millisecond
	a := startApp(t, cfg)
	defer shutdown(t, a)
	secret, err := os.ReadFile(filepath.Join(cfg.DataDir, webhookSecretFile))
	if err != nil || len(strings.TrimSpace(string(secret))) < 32 {
		t.Fatalf("generated webhook secret: %q, %v", secret, err)
	}
	e := events.New(events.LimitBreach, cfg.AccountID, cfg.Region, time.Now(),
		map[string]any{"limit_name": "Concurrent Viewers", "limit_unit": "viewers", "limit_value": 1, "exceeded_by": 1})
	a.outbox.Publish(context.Background(), e)
	url := "http://" + a.httpLn.Addr().String() + "/v1/events/dead-letters"
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "?sink=webhook:" + hook.URL)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			DeadLetters []struct {
				Sink  string       `json:"sink"`
				Error string       `json:"error"`
				Event events.Event `json:"event"`
			} `json:"deadLetters"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(out.DeadLetters) == 1 {
			d := out.DeadLetters[0]
			if d.Event.ID != e.ID || !strings.Contains(d.Error, "418") || d.Sink != "webhook:"+hook.URL {
				t.Fatalf("dead letter %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter after %d refusals: %+v", refusals.Load(), out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
