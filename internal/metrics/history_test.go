package metrics

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func getSession(t *testing.T, h http.Handler, id string) (int, map[string]any) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /v1/sessions/{streamId}/metrics", h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/sessions/"+id+"/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, body
}

// TestSessionHistory: a live session's samples are served oldest first in
// the documented shape, without endTime; the ring keeps the newest
// Retain seconds; the ended session gets its endTime and stays until
// Retain after its last sample; an unknown stream is a JSON 404.
func TestSessionHistory(t *testing.T) {
	c := &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	h := NewHistory(HistoryOptions{Now: c.Now, Retain: 5 * time.Second})
	start := c.Now()
	for i := range 8 {
		s := sample(chA, "st-a", start.Add(time.Duration(i)*time.Second))
		s.StreamStart = start
		s.Video[0].Framerate = float64(20 + i)
		if i == 0 {
			s.Video[0].KeyframeInterval = 0 // not yet known
		}
		h.add(s)
	}
	code, body := getSession(t, h, "st-a")
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, body)
	}
	if body["streamId"] != "st-a" || body["channelArn"] != chA || body["startTime"] != "2026-11-21T12:00:00Z" {
		t.Errorf("header fields: %v", body)
	}
	if _, ok := body["endTime"]; ok {
		t.Errorf("endTime while live: %v", body["endTime"])
	}
	samples := body["samples"].([]any)
	if len(samples) != 5 {
		t.Fatalf("%d samples, want the newest 5", len(samples))
	}
	first := samples[0].(map[string]any)
	want := map[string]any{
		"time": "2026-11-21T12:00:03Z", "ingestBitrate": 1_629_000.0, "ingestVideoBitrate": 1_500_000.0,
		"ingestAudioBitrate": 128_000.0, "ingestFramerate": 23.0, "keyframeInterval": 2.0,
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("first sample %s = %v, want %v", k, first[k], v)
		}
	}
	if last := samples[4].(map[string]any); last["time"] != "2026-11-21T12:00:07Z" || last["ingestFramerate"] != 27.0 {
		t.Errorf("last sample %v", last)
	}

	end := start.Add(8 * time.Second)
	h.end("st-a", end)
	h.add(sample(chA, "st-a", end)) // late: ignored
	code, body = getSession(t, h, "st-a")
	if code != http.StatusOK || body["endTime"] != "2026-11-21T12:00:08Z" || len(body["samples"].([]any)) != 5 {
		t.Errorf("ended session: %d %v", code, body)
	}

	// Retain after the last sample (12:00:07) it is gone.
	c.Add(11 * time.Second)
	h.sweep()
	if code, body := getSession(t, h, "st-a"); code != http.StatusOK {
		t.Errorf("4 s after the last sample: %d %v", code, body)
	}
	c.Add(2 * time.Second)
	h.sweep()
	if code, body := getSession(t, h, "st-a"); code != http.StatusNotFound || body["message"] == nil {
		t.Errorf("past retention: %d %v, want a JSON 404", code, body)
	}
	if code, _ := getSession(t, h, "st-nope"); code != http.StatusNotFound {
		t.Errorf("unknown stream: %d, want 404", code)
	}
}

// TestSessionHistoryMaxEnded: past MaxEnded ended sessions, the ones that
// ended first go; live ones are never dropped.
func TestSessionHistoryMaxEnded(t *testing.T) {
	c := &clock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	h := NewHistory(HistoryOptions{Now: c.Now, MaxEnded: 2})
	h.add(sample(chB, "live", c.Now()))
	for _, id := range []string{"e1", "e2", "e3"} {
		h.add(sample(chA, id, c.Now()))
		c.Add(time.Second)
		h.end(id, c.Now())
	}
	for id, want := range map[string]bool{"live": true, "e1": false, "e2": true, "e3": true} {
		if _, ok := h.Session(id); ok != want {
			t.Errorf("session %s kept = %v, want %v", id, ok, want)
		}
	}
}

// TestHistoryMemory: a 3-hour ring holds 10800 samples of 32 bytes.
func TestHistoryMemory(t *testing.T) {
	h := NewHistory(HistoryOptions{})
	if h.capacity != 10800 {
		t.Fatalf("capacity %d, want 10800", h.capacity)
	}
	start := time.Now()
	for i := range 20000 {
		h.add(sample(chA, "st", start.Add(time.Duration(i)*time.Second)))
	}
	s := h.sessions["st"]
	if len(s.ring) != 10800 || cap(s.ring) > 16384 {
		t.Errorf("ring len %d cap %d", len(s.ring), cap(s.ring))
	}
	sm, _ := h.Session("st")
	if got := sm.Samples[0].Time; !got.Equal(start.Add(9200 * time.Second).Truncate(time.Millisecond)) {
		t.Errorf("oldest sample at %v, want 20000-10800 s in", got)
	}
}
