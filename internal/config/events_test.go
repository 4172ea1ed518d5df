package config

import (
	"strings"
	"testing"
	"time"
)

func TestEventSinksFromFile(t *testing.T) {
	file := writeFile(t, `
event-webhook: [http://a.example/hook]
event-retry-max-age: 6h
event-sinks:
  - url: https://b.example/ivs
    secret: b-secret
    pattern:
      detail-type: ["IVS Stream State Change"]
      detail:
        event_name: [{prefix: "Stream"}]
  - name: audit-bus
    url: http://c.example/
    secret: c-secret
`)
	c, err := Load([]string{"--config", file, "--event-retry-max-backoff", "5s"},
		envMap(map[string]string{EnvEventWebhookSecret: "flag-hooks-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EventWebhooks) != 1 || c.EventWebhooks[0] != "http://a.example/hook" {
		t.Errorf("webhooks %v", c.EventWebhooks)
	}
	if c.EventWebhookSecret != "flag-hooks-secret" {
		t.Errorf("webhook secret not read from %s", EnvEventWebhookSecret)
	}
	if c.EventRetryMaxAge != 6*time.Hour || c.EventRetryMaxBackoff != 5*time.Second {
		t.Errorf("retry settings %v %v", c.EventRetryMaxAge, c.EventRetryMaxBackoff)
	}
	if len(c.EventSinks) != 2 {
		t.Fatalf("sinks %+v", c.EventSinks)
	}
	s := c.EventSinks[0]
	p, ok := s.Pattern.(map[string]any)
	if s.URL != "https://b.example/ivs" || s.Secret != "b-secret" || !ok || p["detail"] == nil {
		t.Errorf("first sink %+v", s)
	}
	if c.EventSinks[1].Name != "audit-bus" || c.EventSinks[1].Pattern != nil {
		t.Errorf("second sink %+v", c.EventSinks[1])
	}
}

func TestEventSinksRejected(t *testing.T) {
	for name, body := range map[string]string{
		"not a list":     "event-sinks: {url: http://x}",
		"no secret":      "event-sinks: [{url: 'http://x/'}]",
		"bad url":        "event-sinks: [{url: 'ftp://x/', secret: s}]",
		"unknown field":  "event-sinks: [{url: 'http://x/', secret: s, colour: red}]",
		"zero max age":   "event-retry-max-age: 0s",
		"bad backoff":    "event-retry-max-backoff: soon",
		"sinks as value": "event-sinks: http://x",
	} {
		if _, err := Load([]string{"--config", writeFile(t, body)}, envMap(nil)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "event") {
			t.Errorf("%s: error does not name the setting: %v", name, err)
		}
	}
}
