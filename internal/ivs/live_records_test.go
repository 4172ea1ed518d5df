package ivs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/store"
)

// Stream records carry their events into the outbox in the same write, and
// a stream a crash left live is ended at start with the events IVS sends
// when an encoder goes away.
func TestLiveRecordEventsAndAbandonedStreams(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := ivs.New(ivs.Config{Store: st, Region: testRegion, AccountID: testAccount,
		IngestEndpoint: "localhost:1936", SRTEndpoint: "localhost:9000", PlaybackBaseURL: "http://localhost:8080"})
	if err != nil {
		t.Fatal(err)
	}
	arn, key, err := svc.CreateChannel(ctx, testAccount, "", "BASIC", false)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := svc.ChannelByStreamKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	ev := func(name string) events.Event {
		return events.New(events.StreamStateChange, testAccount, testRegion, start,
			map[string]any{"event_name": name, "channel_name": ch.Name, "stream_id": "st-test"}, arn)
	}
	sess := ivs.StreamSession{StreamID: "st-test", StartTime: &start, Channel: ch.Snapshot,
		TruncatedEvents: []ivs.StreamEvent{{Name: "Session Created", Type: events.StreamStateChange, EventTime: start}}}
	if err := svc.BeginStream(ctx, ch, ivs.Stream{ChannelArn: arn, StreamID: "st-test", StartTime: start, State: "LIVE"},
		sess, []events.Event{ev("Session Created")}); err != nil {
		t.Fatal(err)
	}
	sess.TruncatedEvents = append([]ivs.StreamEvent{{Name: "Stream Start", Type: events.StreamStateChange, EventTime: start}},
		sess.TruncatedEvents...)
	if err := svc.SaveSession(ctx, testAccount, sess, []events.Event{ev("Stream Start")}); err != nil {
		t.Fatal(err)
	}
	// A second stream on the same channel is refused, and its events with it.
	if err := svc.BeginStream(ctx, ch, ivs.Stream{ChannelArn: arn, StreamID: "st-other"}, ivs.StreamSession{StreamID: "st-other"},
		[]events.Event{ev("must not be stored")}); err != ivs.ErrChannelLive {
		t.Fatalf("second stream: %v", err)
	}

	if n, err := svc.EndAbandonedStreams(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("EndAbandonedStreams: %d, %v", n, err)
	}
	pending, err := st.PendingEvents(ctx, "test", nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pending {
		var e events.Event
		if err := json.Unmarshal(p.Body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Resources[0] != arn || e.Detail["stream_id"] != "st-test" || e.Source != "aws.ivs" {
			t.Fatalf("event %+v", e)
		}
		names = append(names, e.Detail["event_name"].(string))
	}
	if got, want := fmt.Sprint(names), "[Session Created Stream Start Session Ended Stream End]"; got != want {
		t.Fatalf("outbox events %s, want %s", got, want)
	}
	r, err := st.Get(ctx, "arn:aws:ivs:"+testRegion+":"+testAccount+":stream-session/st-test")
	if err != nil {
		t.Fatal(err)
	}
	var ended ivs.StreamSession
	if err := json.Unmarshal(r.Doc, &ended); err != nil {
		t.Fatal(err)
	}
	if ended.EndTime == nil || len(ended.TruncatedEvents) != 4 || ended.TruncatedEvents[0].Name != "Stream End" {
		t.Fatalf("ended session %+v", ended)
	}
	// Nothing is live any more; a second run finds nothing to end.
	if n, err := svc.EndAbandonedStreams(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("second EndAbandonedStreams: %d, %v", n, err)
	}
}
