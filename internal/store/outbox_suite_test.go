package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func outboxEvent(partition, body string) OutboxEvent {
	return OutboxEvent{Partition: partition, Body: []byte(body)}
}

func pendingBodies(t *testing.T, s Store, sink string, skip ...string) []string {
	t.Helper()
	evs, err := s.PendingEvents(t.Context(), sink, skip, 100)
	if err != nil {
		t.Fatalf("PendingEvents: %v", err)
	}
	var out []string
	for i, e := range evs {
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("pending events out of order: %v", evs)
		}
		out = append(out, string(e.Body))
	}
	return out
}

func wantBodies(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// Events ride with Insert and Update: committed with the write, gone with
// a write that fails.
func testOutboxWithWrites(t *testing.T, s Store) {
	ctx := t.Context()
	ch := &Resource{ARN: "arn:ch", Kind: "channel", Account: "a", Events: []OutboxEvent{outboxEvent("arn:ch", "created")}}
	if err := s.Insert(ctx, ch, Quota{}); err != nil {
		t.Fatal(err)
	}
	if ch.Events[0].Seq == 0 || ch.Events[0].CreatedAt.IsZero() {
		t.Fatalf("insert did not assign the event's seq and time: %+v", ch.Events[0])
	}
	if _, err := s.Update(ctx, "arn:ch", func(r *Resource) error {
		r.Doc = []byte(`{"v":2}`)
		r.Events = []OutboxEvent{outboxEvent("arn:ch", "updated-1"), outboxEvent("arn:ch", "updated-2")}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := s.Update(ctx, "arn:ch", func(r *Resource) error {
		r.Events = []OutboxEvent{outboxEvent("arn:ch", "rolled-back")}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("update: %v", err)
	}
	// An insert that fails its quota takes its events with it.
	if err := s.Insert(ctx, &Resource{ARN: "arn:ch2", Kind: "channel", Account: "a",
		Events: []OutboxEvent{outboxEvent("arn:ch2", "over-quota")}}, Quota{Max: 1}); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("insert over quota: %v", err)
	}
	if err := s.AppendEvents(ctx, []OutboxEvent{outboxEvent("acct", "standalone")}); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, pendingBodies(t, s, "webhook"), "created", "updated-1", "updated-2", "standalone")
	// Another sink has its own view.
	wantBodies(t, pendingBodies(t, s, "nats"), "created", "updated-1", "updated-2", "standalone")
}

func testOutboxSettle(t *testing.T, s Store) {
	ctx := t.Context()
	evs := []OutboxEvent{outboxEvent("p1", "a"), outboxEvent("p1", "b"), outboxEvent("p2", "c")}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PendingCount(ctx, "hook"); err != nil || n != 3 {
		t.Fatalf("pending count %d, %v", n, err)
	}
	if err := s.SettleEvents(ctx, "hook", []Settlement{{Seq: evs[0].Seq}, {Seq: evs[2].Seq, Dead: true, Error: "HTTP 500"}}); err != nil {
		t.Fatal(err)
	}
	// Settling twice is harmless (at-least-once deliverers may).
	if err := s.SettleEvents(ctx, "hook", []Settlement{{Seq: evs[0].Seq}}); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, pendingBodies(t, s, "hook"), "b")
	if n, err := s.PendingCount(ctx, "hook"); err != nil || n != 1 {
		t.Fatalf("pending count %d, %v", n, err)
	}
	dead, err := s.DeadLetters(ctx, "hook", 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters %v, %v", dead, err)
	}
	if d := dead[0]; d.Seq != evs[2].Seq || string(d.Body) != "c" || d.Partition != "p2" || d.Error != "HTTP 500" || d.DeadAt.IsZero() {
		t.Fatalf("dead letter %+v", d)
	}
	if other, _ := s.DeadLetters(ctx, "other", 10); len(other) != 0 {
		t.Fatalf("dead letters leak across sinks: %v", other)
	}
}

func testOutboxSkipAndCompact(t *testing.T, s Store) {
	ctx := t.Context()
	evs := []OutboxEvent{outboxEvent("p1", "a"), outboxEvent("p2", "b"), outboxEvent("p1", "c"), outboxEvent("p3", "d")}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, pendingBodies(t, s, "hook", "p1"), "b", "d")
	wantBodies(t, pendingBodies(t, s, "hook", "p1", "p2", "p3"))
	if err := s.SettleEvents(ctx, "hook", []Settlement{{Seq: evs[0].Seq}, {Seq: evs[1].Seq}, {Seq: evs[3].Seq}}); err != nil {
		t.Fatal(err)
	}
	// Compaction may only fold settled events below the first unsettled
	// one; what is pending must not change.
	future := time.Now().Add(time.Hour)
	if err := s.CompactOutbox(ctx, "hook", future); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, pendingBodies(t, s, "hook"), "c")
	if err := s.SettleEvents(ctx, "hook", []Settlement{{Seq: evs[2].Seq}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CompactOutbox(ctx, "hook", future); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, pendingBodies(t, s, "hook"))
	// Events appended after the compaction's horizon stay rows, so one
	// with a lower seq that commits late is still seen.
	late := []OutboxEvent{outboxEvent("p1", "e")}
	if err := s.AppendEvents(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := s.SettleEvents(ctx, "hook", []Settlement{{Seq: late[0].Seq}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CompactOutbox(ctx, "hook", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, pendingBodies(t, s, "hook"))
	more := []OutboxEvent{outboxEvent("p1", "f")}
	if err := s.AppendEvents(ctx, more); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, pendingBodies(t, s, "hook"), "f")
}

func testOutboxPrune(t *testing.T, s Store) {
	ctx := t.Context()
	if err := s.AppendEvents(ctx, []OutboxEvent{outboxEvent("p", "old1"), outboxEvent("p", "old2")}); err != nil {
		t.Fatal(err)
	}
	cut := time.Now().Add(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if err := s.AppendEvents(ctx, []OutboxEvent{outboxEvent("p", "new")}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneOutbox(ctx, cut)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	wantBodies(t, pendingBodies(t, s, "hook"), "new")
	if n, err := s.PruneOutbox(ctx, cut); err != nil || n != 0 {
		t.Fatalf("second prune %d, %v", n, err)
	}
}

func testSinkLease(t *testing.T, s Store) {
	ctx := context.Background()
	lease := func(holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.AcquireSinkLease(ctx, "hook", holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("node-a", time.Minute) {
		t.Fatal("a free sink was not leased")
	}
	if lease("node-b", time.Minute) {
		t.Fatal("a held lease was taken")
	}
	if !lease("node-a", 10*time.Millisecond) {
		t.Fatal("the holder could not renew")
	}
	time.Sleep(30 * time.Millisecond)
	if !lease("node-b", time.Minute) {
		t.Fatal("an expired lease was not taken over")
	}
	if _, err := s.AcquireSinkLease(ctx, "hook", "", time.Minute); err == nil {
		t.Fatal("empty holder accepted")
	}
}
