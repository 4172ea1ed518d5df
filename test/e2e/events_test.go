package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/nats-io/nats.go"

	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/testutil/natstest"
)

// ivsEvent is an event as a webhook receives it, with every top-level
// key kept to check nothing else is there.
type ivsEvent struct {
	events.Event
	raw map[string]any
}

// name is the event's event_name, limit_name or recording_status, with
// its code when it has one.
func (e ivsEvent) name() string {
	for _, k := range []string{"event_name", "limit_name", "recording_status"} {
		if n, ok := e.Detail[k].(string); ok {
			if c, _ := e.Detail["code"].(string); c != "" {
				return n + "/" + c
			}
			return n
		}
	}
	return ""
}

// eventReceiver is a webhook endpoint that checks each request's HMAC and
// keeps the events in arrival order, once per id.
type eventReceiver struct {
	srv    *httptest.Server
	secret string
	down   atomic.Bool // answer 503

	mu        sync.Mutex
	events    []ivsEvent
	bodies    []string // every request body, for secret scans
	seen      map[string]bool
	requests  int
	refused   int
	badSig    []string
	undecoded []string
}

func newEventReceiver(t *testing.T) *eventReceiver {
	r := &eventReceiver{secret: fmt.Sprintf("hook-secret-%d", time.Now().UnixNano()), seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *eventReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.bodies = append(r.bodies, string(body))
	if r.down.Load() {
		r.refused++
		http.Error(w, "sink down", http.StatusServiceUnavailable)
		return
	}
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write(body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(want), []byte(req.Header.Get("X-Openivs-Signature"))) {
		r.badSig = append(r.badSig, string(body))
	}
	var e ivsEvent
	if err := json.Unmarshal(body, &e); err != nil || json.Unmarshal(body, &e.raw) != nil {
		r.undecoded = append(r.undecoded, string(body))
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	if req.Header.Get("X-Openivs-Event-Id") != e.ID {
		r.badSig = append(r.badSig, "event id header "+req.Header.Get("X-Openivs-Event-Id")+" != "+e.ID)
	}
	if !r.seen[e.ID] { // at-least-once: a redelivery is fine, counted once
		r.seen[e.ID] = true
		r.events = append(r.events, e)
	}
	w.WriteHeader(http.StatusNoContent)
}

// sinkYAML is the event-sinks entry for this receiver.
func (r *eventReceiver) sinkYAML(name, pattern string) string {
	s := fmt.Sprintf("  - name: %s\n    url: %s\n    secret: %s\n", name, r.srv.URL, r.secret)
	if pattern != "" {
		s += "    pattern: " + pattern + "\n"
	}
	return s
}

// of returns the events of one channel ARN ("" = account-level), in
// arrival order.
func (r *eventReceiver) of(arn string) []ivsEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ivsEvent
	for _, e := range r.events {
		if (arn == "" && len(e.Resources) == 0) || slices.Contains(e.Resources, arn) {
			out = append(out, e)
		}
	}
	return out
}

func names(evs []ivsEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.name())
	}
	return out
}

// wait waits until the channel's events include want in that order and
// returns the event named last.
func (r *eventReceiver) wait(t *testing.T, arn string, within time.Duration, want ...string) ivsEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		evs := r.of(arn)
		if hasInOrder(names(evs), want...) {
			for i := len(evs) - 1; i >= 0; i-- {
				if evs[i].name() == want[len(want)-1] {
					return evs[i]
				}
			}
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("webhook events of %q: %v, want %v in order within %v (requests %d, refused %d)",
				arn, names(evs), want, within, r.requests, r.refused)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verified fails the test if a request was unsigned, wrongly signed or
// not an event.
func (r *eventReceiver) verified(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.badSig) > 0 || len(r.undecoded) > 0 {
		t.Errorf("webhook requests with a bad signature: %q; undecodable: %q", r.badSig, r.undecoded)
	}
}

var (
	uuidPattern     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	streamIDPattern = regexp.MustCompile(`^st-[A-Za-z0-9]{23}$`)
)

// checkEvent checks the EventBridge envelope and that detail holds exactly
// the fields IVS sends for the event (spec 05 §1.3–1.4).
func checkEvent(t *testing.T, e ivsEvent, channelARN string) {
	t.Helper()
	var topKeys []string
	for k := range e.raw {
		topKeys = append(topKeys, k)
	}
	sort.Strings(topKeys)
	eq(t, "envelope keys", strings.Join(topKeys, ","), "account,detail,detail-type,id,region,resources,source,time,version")
	eq(t, "version", e.Version, "0")
	eq(t, "source", e.Source, "aws.ivs")
	eq(t, "account", e.Account, testAccountID)
	eq(t, "region", e.Region, testRegion)
	if !uuidPattern.MatchString(e.ID) {
		t.Errorf("event id %q is not a UUID", e.ID)
	}
	if at, err := time.Parse(time.RFC3339, e.Time); err != nil || !strings.HasSuffix(e.Time, "Z") || strings.Contains(e.Time, ".") ||
		time.Since(at) > 10*time.Minute || time.Until(at) > 5*time.Second {
		t.Errorf("event time %q: want RFC 3339 UTC seconds, when it happened (%v)", e.Time, err)
	}
	want := map[string]bool{}
	switch e.DetailType {
	case "IVS Stream State Change", "IVS Stream Health Change":
		want = map[string]bool{"event_name": true, "channel_name": true, "stream_id": true}
		switch {
		case strings.HasPrefix(e.name(), "Stream Takeover Failure/"):
			want["code"] = true
		case e.name() == "Stream Failure":
			want["reason"] = true
		}
	case "IVS Limit Breach":
		want = map[string]bool{"limit_name": true, "limit_unit": true, "limit_value": true, "exceeded_by": true}
		if channelARN != "" {
			want["channel_name"], want["stream_id"] = true, true
		}
		for _, k := range []string{"limit_value", "exceeded_by"} {
			if n, ok := e.Detail[k].(float64); !ok || n <= 0 {
				t.Errorf("%s %s = %v, want a positive number", e.name(), k, e.Detail[k])
			}
		}
	default:
		t.Errorf("unexpected detail-type %q", e.DetailType)
	}
	var got, wanted []string
	for k := range e.Detail {
		got = append(got, k)
	}
	for k := range want {
		wanted = append(wanted, k)
	}
	sort.Strings(got)
	sort.Strings(wanted)
	eq(t, e.name()+" detail fields", strings.Join(got, ","), strings.Join(wanted, ","))
	if channelARN == "" {
		if len(e.Resources) != 0 {
			t.Errorf("%s: resources %v, want [] for an account-level event", e.name(), e.Resources)
		}
	} else {
		deepEq(t, e.name()+" resources", e.Resources, []string{channelARN})
		if id, _ := e.Detail["stream_id"].(string); !streamIDPattern.MatchString(id) {
			t.Errorf("%s: stream_id %q", e.name(), id)
		}
		if _, ok := e.Detail["channel_name"].(string); !ok {
			t.Errorf("%s: channel_name %v is not a string", e.name(), e.Detail["channel_name"])
		}
	}
}

// A stream's life reaches every sink: the webhook with every event in the
// exact IVS shape and a valid signature, a pattern-filtered webhook with
// only what its pattern selects, and NATS JetStream subjects.
func TestEventsLifecycleToSinks(t *testing.T) {
	t.Parallel()
	natsURL := natstest.URL(t)
	all, starts := newEventReceiver(t), newEventReceiver(t)
	srv := startServer(t, serverOpts{
		Config: "event-sinks:\n" + all.sinkYAML("all", "") +
			starts.sinkYAML("starts", `{"detail-type": ["IVS Stream State Change"], "detail": {"event_name": ["Stream Start", "Stream End"]}}`),
		Args: []string{"--nats-url", natsURL},
	})
	c := ivsClient(t, srv)
	ch := createChannel(t, c, &ivs.CreateChannelInput{Name: aws.String("events-lifecycle")})
	arn := aws.ToString(ch.Channel.Arn)

	nc, err := nats.Connect(natsURL)
	must(t, err, "NATS connect")
	defer nc.Close()
	natsMsgs := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("ivs.events.>", natsMsgs)
	must(t, err, "NATS subscribe")
	defer sub.Unsubscribe()
	must(t, nc.Flush(), "NATS flush")

	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{seconds: 8})
	live := waitLive(t, c, ch.Channel.Arn, enc)
	start := all.wait(t, arn, 20*time.Second, "Session Created", "Stream Start")
	eq(t, "stream_id", start.Detail["stream_id"], any(aws.ToString(live.StreamId)))
	eq(t, "channel_name", start.Detail["channel_name"], any("events-lifecycle"))
	all.wait(t, arn, 30*time.Second, "Session Created", "Stream Start", "Session Ended", "Stream End")
	for _, e := range all.of(arn) {
		checkEvent(t, e, arn)
	}
	all.verified(t)

	// A second session over SRT with the channel's passphrase, so the
	// secret scan below covers both ingest paths.
	waitOffline(t, c, ch.Channel.Arn, 10*time.Second)
	srtEnc := startEncoder(t, srtURL(srv, aws.ToString(ch.StreamKey.Value), aws.ToString(ch.Channel.Srt.Passphrase)), encodeOpts{seconds: 5})
	waitLive(t, c, ch.Channel.Arn, srtEnc)
	lifecycle := []string{"Session Created", "Stream Start", "Session Ended", "Stream End"}
	all.wait(t, arn, 30*time.Second, append(lifecycle, lifecycle...)...)

	// The filtered sink gets Stream Start and Stream End only.
	starts.wait(t, arn, 10*time.Second, "Stream Start", "Stream End", "Stream Start", "Stream End")
	time.Sleep(500 * time.Millisecond)
	deepEq(t, "filtered sink events", names(starts.of(arn)), []string{"Stream Start", "Stream End", "Stream Start", "Stream End"})
	starts.verified(t)

	// NATS: the same events on ivs.events.<detail-type>.
	var natsPayloads []string
	ids := map[string]bool{}
	for _, e := range all.of(arn) {
		ids[e.ID] = true
	}
	deadline := time.After(10 * time.Second)
	for len(ids) > 0 {
		select {
		case m := <-natsMsgs:
			var e ivsEvent
			must(t, json.Unmarshal(m.Data, &e), "NATS payload")
			natsPayloads = append(natsPayloads, string(m.Data))
			if !ids[e.ID] {
				continue
			}
			eq(t, "NATS subject", m.Subject, "ivs.events."+strings.ReplaceAll(e.DetailType, " ", "_"))
			delete(ids, e.ID)
		case <-deadline:
			t.Fatalf("%d events never reached NATS", len(ids))
		}
	}

	// No secret of the scenario — the stream key value, the SRT
	// passphrase — appears in the events, the log or the audit log.
	secrets := map[string]string{"stream key": aws.ToString(ch.StreamKey.Value), "SRT passphrase": aws.ToString(ch.Channel.Srt.Passphrase)}
	places := map[string]string{
		"server log":    srv.Stderr(),
		"webhook":       strings.Join(all.bodies, "\n") + strings.Join(starts.bodies, "\n"),
		"NATS payloads": strings.Join(natsPayloads, "\n"),
	}
	auditFiles, _ := filepath.Glob(filepath.Join(srv.DataDir, "audit", "*"))
	if len(auditFiles) == 0 {
		t.Error("no audit log files in the data dir")
	}
	for _, f := range auditFiles {
		raw, err := os.ReadFile(f)
		must(t, err, "read audit file")
		places["audit file "+filepath.Base(f)] += string(raw)
	}
	if !strings.Contains(places["server log"], "Stream Start") {
		t.Error("the server log has no events: the scan would prove nothing")
	}
	for what, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("%s %q is too short to scan for", what, secret)
		}
		for where, text := range places {
			if strings.Contains(text, secret) {
				t.Errorf("the %s appears in the %s", what, where)
			}
		}
	}
}

// The webhook is down for two minutes while streams start and end, and the
// server is killed with SIGKILL in between: once the webhook is back every
// event arrives, in order per channel. The restarted server also ends the
// stream the crash left live, with its Session Ended and Stream End.
func TestEventsSurviveSinkOutageAndCrash(t *testing.T) {
	t.Parallel()
	hook := newEventReceiver(t)
	hook.down.Store(true)
	downSince := time.Now()
	cfg := "event-sinks:\n" + hook.sinkYAML("hook", "")
	args := []string{"--event-retry-max-backoff", "5s"}
	srv := startServer(t, serverOpts{Config: cfg, Args: args})
	c := ivsClient(t, srv)
	first := createChannel(t, c, &ivs.CreateChannelInput{})
	second := createChannel(t, c, &ivs.CreateChannelInput{})

	// The first channel streams and ends while the sink is down.
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(first.StreamKey.Value)), encodeOpts{seconds: 6})
	waitLive(t, c, first.Channel.Arn, enc)
	waitEvent(t, c, first.Channel.Arn, "Stream Start", 20*time.Second)
	waitOffline(t, c, first.Channel.Arn, 20*time.Second)
	// The second is live when the server is killed.
	enc2 := startEncoder(t, rtmpsURL(srv, aws.ToString(second.StreamKey.Value)), encodeOpts{})
	waitLive(t, c, second.Channel.Arn, enc2)
	waitEvent(t, c, second.Channel.Arn, "Stream Start", 20*time.Second)
	srv.Kill()
	_ = enc2.cmd.Process.Kill()

	restarted := startServer(t, serverOpts{Config: cfg, Args: args, DataDir: srv.DataDir})
	c2 := ivsClient(t, restarted)
	if _, err := c2.GetStream(context.Background(), &ivs.GetStreamInput{ChannelArn: second.Channel.Arn}); err == nil {
		t.Fatal("the stream the crash left is still live after the restart")
	}
	hook.mu.Lock()
	early := len(hook.events)
	hook.mu.Unlock()
	if early > 0 {
		t.Fatalf("a down sink received %d events", early)
	}
	// /metrics shows the backlog and the failing sink.
	waitMetric(t, restarted, "openivs_event_outbox_depth", nil, 20*time.Second, "outbox depth while the sink is down",
		func(v float64, ok bool) bool { return ok && v >= 8 })
	waitMetric(t, restarted, "openivs_event_sink_failures_total", map[string]string{"sink": "hook"}, 20*time.Second,
		"sink failures while the sink is down", func(v float64, ok bool) bool { return ok && v >= 1 })
	// Two minutes down in all, then up.
	time.Sleep(time.Until(downSince.Add(2 * time.Minute)))
	hook.down.Store(false)
	lifecycle := []string{"Session Created", "Stream Start", "Session Ended", "Stream End"}
	for _, ch := range []*ivs.CreateChannelOutput{first, second} {
		arn := aws.ToString(ch.Channel.Arn)
		hook.wait(t, arn, 30*time.Second, lifecycle...)
		evs := hook.of(arn)
		deepEq(t, arn+" events", names(evs), lifecycle)
		for _, e := range evs {
			checkEvent(t, e, arn)
		}
	}
	hook.verified(t)
	waitMetric(t, restarted, "openivs_event_outbox_depth", nil, 10*time.Second, "outbox depth once delivered",
		func(v float64, ok bool) bool { return ok && v == 0 })
	hook.mu.Lock()
	refused := hook.refused
	hook.mu.Unlock()
	if refused < 2 {
		t.Errorf("the sink refused %d requests while down; the outbox did not retry", refused)
	}
	// GetStreamSession tells the same story for the crashed stream.
	deepEq(t, "crashed stream's session events", eventNames(latestSession(t, c2, second.Channel.Arn)), lifecycle)
	if s := latestSession(t, c2, second.Channel.Arn); s.EndTime == nil {
		t.Error("the crashed stream's session has no end time")
	}
}
