package messaging

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/chat"
)

// countingObserver records what the server tells its Observer.
type countingObserver struct {
	mu        sync.Mutex
	requests  map[string]int
	delivered map[string]int
	reviews   map[string][]error // by handler uri
}

func newCountingObserver() *countingObserver {
	return &countingObserver{requests: map[string]int{}, delivered: map[string]int{}, reviews: map[string][]error{}}
}

func (o *countingObserver) Request(action string) {
	o.mu.Lock()
	o.requests[action]++
	o.mu.Unlock()
}

func (o *countingObserver) Delivered(action string, n int) {
	o.mu.Lock()
	o.delivered[action] += n
	o.mu.Unlock()
}

func (o *countingObserver) ReviewFailed(uri string, err error) {
	o.mu.Lock()
	o.reviews[uri] = append(o.reviews[uri], err)
	o.mu.Unlock()
}

// waitCounts waits until requests and deliveries are as wanted:
// deliveries are counted once the fan-out is done, which may be just
// after a client read its frame.
func (o *countingObserver) waitCounts(t *testing.T, requests, delivered map[string]int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.mu.Lock()
		ok := maps.Equal(o.requests, requests) && maps.Equal(o.delivered, delivered)
		gotReq, gotDel := maps.Clone(o.requests), maps.Clone(o.delivered)
		o.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests %v, deliveries %v; want %v and %v", gotReq, gotDel, requests, delivered)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestObserverCountsRequestsAndDeliveries: every messaging request, from a
// client or the API, is counted once by action (IVS Chat's Requests), and
// each entity once per connection it is delivered to (Deliveries).
func TestObserverCountsRequestsAndDeliveries(t *testing.T) {
	obs := newCountingObserver()
	h := newHarness(t, func(c *Config) { c.Observer = obs })
	mod := h.connect("mod", chat.CapSendMessage, chat.CapDeleteMessage, chat.CapDisconnectUser)
	bob := h.connect("bob")
	carol := h.connect("carol")
	all := []*client{mod, bob, carol}
	expect := func(typ string) {
		t.Helper()
		for _, c := range all {
			if e := c.next(); e.Type != typ {
				t.Fatalf("got %+v, want a %s", e, typ)
			}
		}
	}

	mod.say("m1", "hello")
	expect(TypeMessage)
	mod.sendJSON(map[string]any{"Action": ActionDeleteMessage, "RequestId": "d1", "Id": "AbCdEfGh1234"})
	expect(TypeEvent)
	if _, err := h.srv.SendEvent(context.Background(), testRoom, "app:poll", nil); err != nil {
		t.Fatal(err)
	}
	expect(TypeEvent)
	if _, err := h.srv.DeleteMessage(context.Background(), testRoom, "AbCdEfGh1234", ""); err != nil {
		t.Fatal(err)
	}
	expect(TypeEvent)
	obs.waitCounts(t,
		map[string]int{MetricSendMessage: 1, MetricDeleteMessage: 2, MetricSendEvent: 1},
		map[string]int{MetricSendMessage: 3, MetricDeleteMessage: 6, MetricSendEvent: 3})

	// A refused request counts as a request and delivers nothing.
	bob.say("b1", "no capability")
	bob.expectError("b1", CodeForbidden)
	mod.sendJSON(map[string]any{"Action": ActionDisconnectUser, "RequestId": "x1", "UserId": "carol"})
	expect(TypeEvent)
	obs.waitCounts(t,
		map[string]int{MetricSendMessage: 2, MetricDeleteMessage: 2, MetricSendEvent: 1, MetricDisconnectUser: 1},
		map[string]int{MetricSendMessage: 3, MetricDeleteMessage: 6, MetricSendEvent: 3, MetricDisconnectUser: 3})
}

// TestObserverHearsReviewFailures: a review handler that fails, or that
// cannot be called at all, is reported with the room's handler uri.
func TestObserverHearsReviewFailures(t *testing.T) {
	const uri = "arn:aws:lambda:us-west-2:123456789012:function:review"
	room := chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10,
		ReviewHandler: &chat.ReviewHandler{URI: uri, FallbackResult: "ALLOW"}}
	boom := errors.New("lambda failed")
	obs := newCountingObserver()
	h := newHarness(t, func(c *Config) {
		c.Observer = obs
		c.ReviewTimeout = 50 * time.Millisecond
		c.Review = func(ctx context.Context, _ *chat.Room, msg *Message, _ string) (ReviewResult, error) {
			switch msg.Content {
			case "broken":
				return ReviewResult{}, boom
			case "slow":
				<-ctx.Done()
				return ReviewResult{Allow: true}, nil // too late to count
			}
			return ReviewResult{Allow: true}, nil
		}
	})
	h.ctl.setRoom(room)
	c := h.connect("alice", chat.CapSendMessage)
	for _, text := range []string{"fine", "broken", "slow"} {
		c.say(text, text)
		if e := c.next(); e.Type != TypeMessage || e.Content != text {
			t.Fatalf("got %+v, want %q delivered (fallback ALLOW)", e, text)
		}
	}
	obs.mu.Lock()
	got := obs.reviews[uri]
	obs.mu.Unlock()
	if len(obs.reviews) != 1 || len(got) != 2 || !errors.Is(got[0], boom) || !errors.Is(got[1], context.DeadlineExceeded) {
		t.Fatalf("review failures %v, want %q's error then its deadline", obs.reviews, uri)
	}

	// No review function at all: every review of the room fails.
	h2 := newHarness(t, func(c *Config) { c.Observer = obs })
	h2.ctl.setRoom(room)
	c2 := h2.connect("alice", chat.CapSendMessage)
	c2.say("1", "hi")
	if e := c2.next(); e.Type != TypeMessage {
		t.Fatalf("got %+v", e)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if got := obs.reviews[uri]; len(got) != 3 || !errors.Is(got[2], errNoReviewer) {
		t.Fatalf("review failures %v, want a third, errNoReviewer", got)
	}
}
