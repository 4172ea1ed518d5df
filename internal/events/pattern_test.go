package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/openivs/openivs/internal/testutil/natstest"
)

func TestPatternMatch(t *testing.T) {
	ev := `{"version":"0","id":"x","detail-type":"IVS Limit Breach","source":"aws.ivs","account":"123456789012",
		"time":"2026-11-21T10:00:00Z","region":"us-west-2","resources":["arn:aws:ivs:us-west-2:123456789012:channel/abc"],
		"detail":{"limit_name":"Ingest Bitrate","limit_value":8500000,"exceeded_by":3,"channel_name":"my/chan"}}`
	cases := []struct {
		pattern string
		match   bool
	}{
		{`{}`, false}, // an empty object is refused at parse time; see TestPatternRejects
		{`{"source":["aws.ivs"]}`, true},
		{`{"source":["aws.other"]}`, false},
		{`{"detail-type":["IVS Stream State Change","IVS Limit Breach"]}`, true},
		{`{"detail":{"limit_name":["Ingest Bitrate"]}}`, true},
		{`{"detail":{"limit_name":["Ingest Resolution"]}}`, false},
		{`{"detail":{"event_name":["Stream Start"]}}`, false},
		{`{"detail":{"limit_value":[8500000]}}`, true},
		{`{"detail":{"limit_value":[8.5e6]}}`, true},
		{`{"detail":{"exceeded_by":[{"numeric":[">",0,"<=",3]}]}}`, true},
		{`{"detail":{"exceeded_by":[{"numeric":[">",3]}]}}`, false},
		{`{"detail":{"limit_name":[{"prefix":"Ingest"}]}}`, true},
		{`{"detail":{"limit_name":[{"suffix":"Bitrate"}]}}`, true},
		{`{"detail":{"limit_name":[{"equals-ignore-case":"ingest BITRATE"}]}}`, true},
		{`{"detail":{"limit_name":[{"anything-but":"Ingest Bitrate"}]}}`, false},
		{`{"detail":{"limit_name":[{"anything-but":["Concurrent Viewers"]}]}}`, true},
		{`{"detail":{"limit_name":[{"anything-but":{"prefix":"Concurrent"}}]}}`, true},
		{`{"detail":{"stream_id":[{"exists":false}]}}`, true},
		{`{"detail":{"channel_name":[{"exists":true}]}}`, true},
		{`{"detail":{"channel_name":[{"wildcard":"my/*"}]}}`, true},
		{`{"detail":{"channel_name":[{"wildcard":"other*"}]}}`, false},
		{`{"resources":[{"suffix":"channel/abc"}]}`, true},
		{`{"resources":["arn:aws:ivs:us-west-2:123456789012:channel/zzz"]}`, false},
		{`{"detail":["not an object"]}`, false},
	}
	for _, c := range cases {
		p, err := ParsePattern([]byte(c.pattern))
		if c.pattern == `{}` {
			if err == nil {
				t.Errorf("empty pattern object accepted")
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.pattern, err)
			continue
		}
		if got := p.Match([]byte(ev)); got != c.match {
			t.Errorf("%s: match = %v, want %v", c.pattern, got, c.match)
		}
	}
	var none *Pattern
	if !none.Match([]byte(ev)) {
		t.Error("nil pattern must match everything")
	}
}

func TestPatternRejects(t *testing.T) {
	for _, bad := range []string{
		`[]`, `"x"`, `{"source":"aws.ivs"}`, `{"source":[]}`, `{"detail":{}}`,
		`{"a":[{"prefix":1}]}`, `{"a":[{"numeric":[">"]}]}`, `{"a":[{"numeric":["~",1]}]}`,
		`{"a":[{"bogus":1}]}`, `{"a":[{"prefix":"x","suffix":"y"}]}`, `{"a":[{"exists":"yes"}]}`,
		`{"a":[["nested"]]}`, `{"a":["x"]} trailing`, `{`,
	} {
		if _, err := ParsePattern([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if p, err := ParsePattern(nil); p != nil || err != nil {
		t.Errorf("empty pattern: %v, %v", p, err)
	}
}

func FuzzParsePattern(f *testing.F) {
	f.Add([]byte(`{"source":["aws.ivs"],"detail":{"event_name":[{"prefix":"Stream"}]}}`), []byte(`{"source":"aws.ivs","detail":{"event_name":"Stream Start"}}`))
	f.Add([]byte(`{"detail":{"n":[{"numeric":[">",1,"<",5]}]}}`), []byte(`{"detail":{"n":3}}`))
	f.Add([]byte(`{"a":[{"wildcard":"*x[*"}]}`), []byte(`{"a":["yx["]}`))
	f.Fuzz(func(t *testing.T, pattern, doc []byte) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		_ = p.Match(doc) // must not panic
	})
}

func TestSignature(t *testing.T) {
	body := []byte(`{"id":"1"}`)
	sig := Sign([]byte("k"), body)
	if !VerifySignature([]byte("k"), body, sig) || VerifySignature([]byte("other"), body, sig) ||
		VerifySignature([]byte("k"), []byte(`{"id":"2"}`), sig) {
		t.Fatal("signature check is wrong")
	}
}

// The NATS sink publishes to JetStream on the real server: one message per
// event on its detail-type subject, and a redelivery with the same id is
// dropped as a duplicate.
func TestNATSSink(t *testing.T) {
	url := natstest.URL(t)
	started := time.Now().Add(-time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sink := NewNATS(url, quiet)
	defer sink.Close()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe("ivs.events.>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	st := sqliteStore(t, t.TempDir())
	o := runOutbox(t, OutboxConfig{Store: st, Routes: []Route{{Sink: sink}}})
	e := channelEvent("nats-"+time.Now().Format("150405.000000"), 1)
	o.Publish(ctx, e)
	lb := New(LimitBreach, "123456789012", "us-west-2", time.Now(), map[string]any{"limit_name": "Concurrent Viewers", "n": 1})
	o.Publish(ctx, lb)
	want := map[string]string{e.ID: "ivs.events.IVS_Stream_State_Change", lb.ID: "ivs.events.IVS_Limit_Breach"}
	for len(want) > 0 {
		select {
		case m := <-msgs:
			var got Event
			if err := json.Unmarshal(m.Data, &got); err != nil {
				t.Fatalf("payload %q: %v", m.Data, err)
			}
			subj, ok := want[got.ID]
			if !ok {
				continue // another test's event on the shared server
			}
			if m.Subject != subj || got.Source != "aws.ivs" || got.DetailType == "" {
				t.Fatalf("message on %s: %+v", m.Subject, got)
			}
			delete(want, got.ID)
		case <-ctx.Done():
			t.Fatalf("events not received on NATS: %v", want)
		}
	}
	// At-least-once redelivery of the same event is de-duplicated by id in
	// the stream (core subscribers see every publish; stream consumers do not).
	body, _ := json.Marshal(e)
	if err := sink.Deliver(ctx, &e, body); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, NATSStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"ivs.events.IVS_Stream_State_Change"}, DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime: &started})
	if err != nil {
		t.Fatal(err)
	}
	copies := 0
	batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		var got Event
		_ = json.Unmarshal(m.Data(), &got)
		if got.ID == e.ID {
			copies++
		}
	}
	if copies != 1 {
		t.Fatalf("the stream holds the event %d times, want once", copies)
	}
}
