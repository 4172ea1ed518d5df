package events

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

func TestEnvelope(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	e := New(StreamStateChange, "123456789012", "us-west-2", at, map[string]any{"event_name": "Stream Start"},
		"arn:aws:ivs:us-west-2:123456789012:channel/abc")
	raw, _ := json.Marshal(e)
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": "0", "detail-type": "IVS Stream State Change", "source": "aws.ivs",
		"account": "123456789012", "time": "2026-11-21T09:00:00Z", "region": "us-west-2"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(e.ID) {
		t.Errorf("id %q is not a UUIDv4", e.ID)
	}
	// Account-level limit breaches have no resources: [] in JSON, never null.
	none, _ := json.Marshal(New(LimitBreach, "1", "r", at, nil))
	if !regexp.MustCompile(`"resources":\[\]`).Match(none) {
		t.Errorf("resources not [] in %s", none)
	}
}
