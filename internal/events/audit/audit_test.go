package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func createChannelCall() awsapi.CallRecord {
	return awsapi.CallRecord{
		RequestID: "11111111-2222-3333-4444-555555555555", Service: "ivs", API: "ivs",
		Operation: "CreateChannel", Account: "123456789012", AccessKeyID: "AKIAEXAMPLE",
		SourceIP: "10.10.10.10:51234", UserAgent: "aws-sdk-go-v2/1.41.9",
		Time:   time.Date(2020, 4, 2, 20, 57, 46, 500e6, time.FixedZone("x", 3600)),
		Status: 200, Duration: time.Millisecond,
		Input: json.RawMessage(`{"name":"default"}`),
		Output: []byte(`{"channel":{"arn":"arn:aws:ivs:us-west-2:123456789012:channel/abc","name":"default","srt":{"endpoint":"h:9000","passphrase":"pp"}},` +
			`"streamKey":{"arn":"arn:aws:ivs:us-west-2:123456789012:stream-key/def","channelArn":"arn:aws:ivs:us-west-2:123456789012:channel/abc","value":"sk_us-west-2_x"}}`),
	}
}

// decode turns a record into its generic JSON form, as a reader sees it.
func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("record %q: %v", line, err)
	}
	return m
}

func TestRecordShape(t *testing.T) {
	red := mustRedactor(t)
	line, err := NewRecord(createChannelCall(), "us-west-2", red).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("not one JSON line: %q", line)
	}
	got := decode(t, line)
	if id, _ := got["eventID"].(string); !uuidPattern.MatchString(id) {
		t.Errorf("eventID %q is not a v4 UUID", id)
	}
	delete(got, "eventID")
	want := map[string]any{
		"eventVersion": "1.08",
		"userIdentity": map[string]any{
			"type": "Root", "principalId": "123456789012", "arn": "arn:aws:iam::123456789012:root",
			"accountId": "123456789012", "accessKeyId": "AKIAEXAMPLE",
		},
		"eventTime":         "2020-04-02T19:57:46Z",
		"eventSource":       "ivs.amazonaws.com",
		"eventName":         "CreateChannel",
		"awsRegion":         "us-west-2",
		"sourceIPAddress":   "10.10.10.10",
		"userAgent":         "aws-sdk-go-v2/1.41.9",
		"requestParameters": map[string]any{"name": "default"},
		"responseElements": map[string]any{
			"channel": map[string]any{
				"arn": "arn:aws:ivs:us-west-2:123456789012:channel/abc", "name": "default",
				"srt": map[string]any{"endpoint": "h:9000", "passphrase": Hidden},
			},
			"streamKey": map[string]any{
				"arn":        "arn:aws:ivs:us-west-2:123456789012:stream-key/def",
				"channelArn": "arn:aws:ivs:us-west-2:123456789012:channel/abc", "value": Hidden,
			},
		},
		"requestID":          "11111111-2222-3333-4444-555555555555",
		"readOnly":           false,
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": "123456789012",
		"eventCategory":      "Management",
	}
	if !reflect.DeepEqual(got, want) {
		gotJSON, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("record:\n%s", gotJSON)
	}
	// CloudTrail's field order.
	order := []string{"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
		"sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID", "eventID",
		"readOnly", "eventType", "managementEvent", "recipientAccountId", "eventCategory"}
	last := -1
	for _, k := range order {
		i := strings.Index(string(line), `"`+k+`":`)
		if i < last {
			t.Errorf("%s out of order", k)
		}
		last = i
	}
}

func TestRecordVariants(t *testing.T) {
	red := mustRedactor(t)
	cases := []struct {
		name   string
		modify func(*awsapi.CallRecord)
		check  func(t *testing.T, m map[string]any)
	}{
		{"read-only call has no response", func(r *awsapi.CallRecord) {
			r.Operation, r.Input, r.Output = "GetStreamKey", json.RawMessage(`{"arn":"arn:sk"}`), []byte(`{"streamKey":{"arn":"arn:sk","value":"sk"}}`)
		}, func(t *testing.T, m map[string]any) {
			if m["readOnly"] != true || m["responseElements"] != nil {
				t.Errorf("readOnly %v responseElements %v", m["readOnly"], m["responseElements"])
			}
			if !reflect.DeepEqual(m["requestParameters"], map[string]any{"arn": "arn:sk"}) {
				t.Errorf("requestParameters %v", m["requestParameters"])
			}
		}},
		{"failure has the error and no response", func(r *awsapi.CallRecord) {
			r.Operation, r.Input, r.Output = "DeleteChannel", json.RawMessage(`{"arn":"arn:ch"}`), nil
			r.Status, r.ErrorCode, r.ErrorMessage = 404, "ResourceNotFoundException", "Resource: arn:ch not found"
		}, func(t *testing.T, m map[string]any) {
			if m["errorCode"] != "ResourceNotFoundException" || m["errorMessage"] != "Resource: arn:ch not found" || m["responseElements"] != nil {
				t.Errorf("%v", m)
			}
		}},
		{"success has no error fields", func(r *awsapi.CallRecord) {}, func(t *testing.T, m map[string]any) {
			if _, ok := m["errorCode"]; ok {
				t.Error("errorCode on success")
			}
			if _, ok := m["errorMessage"]; ok {
				t.Error("errorMessage on success")
			}
		}},
		{"empty input and output are null", func(r *awsapi.CallRecord) {
			r.Operation, r.Input, r.Output = "StopStream", json.RawMessage(`{}`), []byte(`{}`)
		}, func(t *testing.T, m map[string]any) {
			for _, k := range []string{"requestParameters", "responseElements"} {
				if v, ok := m[k]; !ok || v != nil {
					t.Errorf("%s = %v, %v; want null", k, v, ok)
				}
			}
		}},
		{"IPv6 source without port", func(r *awsapi.CallRecord) { r.SourceIP = "[::1]:8080" }, func(t *testing.T, m map[string]any) {
			if m["sourceIPAddress"] != "::1" {
				t.Errorf("sourceIPAddress %v", m["sourceIPAddress"])
			}
		}},
		{"chat and real-time event sources", func(r *awsapi.CallRecord) {
			r.API, r.Operation, r.Input, r.Output = "ivschat", "CreateChatToken", nil, []byte(`{"token":"t"}`)
		}, func(t *testing.T, m map[string]any) {
			if m["eventSource"] != "ivschat.amazonaws.com" {
				t.Errorf("eventSource %v", m["eventSource"])
			}
			if !reflect.DeepEqual(m["responseElements"], map[string]any{"token": Hidden}) {
				t.Errorf("responseElements %v", m["responseElements"])
			}
		}},
		{"unrouted call takes the signing name", func(r *awsapi.CallRecord) {
			r.API, r.Operation, r.Input, r.Output = "", "", nil, nil
			r.ErrorCode, r.ErrorMessage = "UnknownOperationException", "Unknown operation /Nope."
		}, func(t *testing.T, m map[string]any) {
			if m["eventSource"] != "ivs.amazonaws.com" || m["errorCode"] != "UnknownOperationException" {
				t.Errorf("%v", m)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := createChannelCall()
			c.modify(&rec)
			line, err := NewRecord(rec, "us-west-2", red).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, decode(t, line))
		})
	}
	// Every record gets its own event ID.
	a, _ := NewRecord(createChannelCall(), "r", red).Marshal()
	b, _ := NewRecord(createChannelCall(), "r", red).Marshal()
	if decode(t, a)["eventID"] == decode(t, b)["eventID"] {
		t.Error("two records share an eventID")
	}
}

func TestReadOnly(t *testing.T) {
	for op, want := range map[string]bool{
		"GetChannel": true, "GetStreamKey": true, "ListChannels": true, "ListStreamKeys": true,
		"BatchGetChannel": true, "BatchGetStreamKey": true, "ListTagsForResource": true,
		"GetStreamSession": true, "GetParticipant": true, "ListRooms": true,
		"CreateChannel": false, "UpdateChannel": false, "DeleteChannel": false, "PutMetadata": false,
		"StopStream": false, "TagResource": false, "UntagResource": false, "ImportPlaybackKeyPair": false,
		"BatchStartViewerSessionRevocation": false, "StartViewerSessionRevocation": false,
		"CreateChatToken": false, "DisconnectUser": false, "SendEvent": false, "": false,
		"Get": false, "Listen": false, "Getaway": false,
	} {
		if got := ReadOnly(op); got != want {
			t.Errorf("ReadOnly(%q) = %v, want %v", op, got, want)
		}
	}
}

// readDir returns the audit files of dir, sorted, and their lines.
func readDir(t *testing.T, dir string) (files []string, lines []map[string]any) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		files = append(files, e.Name())
	}
	sort.Strings(files)
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, decode(t, sc.Bytes()))
		}
		f.Close()
	}
	return files, lines
}

func newTestLogger(t *testing.T, opts Options) *Logger {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "audit")
	}
	opts.Region = "us-west-2"
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func callN(i int) awsapi.CallRecord {
	rec := createChannelCall()
	rec.RequestID = fmt.Sprintf("req-%04d", i)
	rec.Time = time.Now()
	return rec
}

func TestRotationBySize(t *testing.T) {
	one, _ := NewRecord(callN(0), "us-west-2", mustRedactor(t)).Marshal()
	max := int64(len(one)*3 + 10) // three records per file
	var closed []string
	var mu sync.Mutex
	l := newTestLogger(t, Options{MaxFileBytes: max, OnFileClosed: func(p string) {
		mu.Lock()
		closed = append(closed, filepath.Base(p))
		mu.Unlock()
	}})
	const n = 10
	for i := range n {
		l.Log(callN(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, lines := readDir(t, l.Dir())
	if len(files) != 4 {
		t.Fatalf("files %v, want 4 (3+3+3+1 records)", files)
	}
	if len(lines) != n {
		t.Fatalf("%d records, want %d", len(lines), n)
	}
	for i, m := range lines {
		if m["requestID"] != fmt.Sprintf("req-%04d", i) {
			t.Fatalf("record %d is %v", i, m["requestID"])
		}
	}
	namePattern := regexp.MustCompile(`^audit-\d{8}T\d{6}Z(_\d{3})?\.jsonl$`)
	for _, f := range files {
		if !namePattern.MatchString(f) {
			t.Errorf("file name %q", f)
		}
		st, _ := os.Stat(filepath.Join(l.Dir(), f))
		if st.Size() > max {
			t.Errorf("%s is %d bytes, over %d", f, st.Size(), max)
		}
	}
	mu.Lock()
	sort.Strings(closed)
	mu.Unlock()
	if !reflect.DeepEqual(closed, files) {
		t.Errorf("OnFileClosed saw %v, files %v", closed, files)
	}
}

func TestRotationOnTheHour(t *testing.T) {
	var now atomic.Pointer[time.Time]
	set := func(s string) {
		tm, _ := time.Parse(time.RFC3339, s)
		now.Store(&tm)
	}
	set("2026-11-21T14:59:58Z")
	closed := make(chan string, 10)
	l := newTestLogger(t, Options{
		Now: func() time.Time { return *now.Load() }, FlushInterval: 10 * time.Millisecond,
		OnFileClosed: func(p string) { closed <- filepath.Base(p) },
	})
	l.Log(callN(1))
	l.Log(callN(2))
	waitFor(t, func() bool { _, lines := readDir(t, l.Dir()); return len(lines) == 2 })
	set("2026-11-21T15:00:00Z")
	// With no new record the writer still closes the old hour's file.
	select {
	case name := <-closed:
		if name != "audit-20261121T145958Z.jsonl" {
			t.Fatalf("closed %s", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the file of the past hour was not closed")
	}
	l.Log(callN(3))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, lines := readDir(t, l.Dir())
	want := []string{"audit-20261121T145958Z.jsonl", "audit-20261121T150000Z.jsonl"}
	if !reflect.DeepEqual(files, want) || len(lines) != 3 {
		t.Fatalf("files %v with %d records, want %v with 3", files, len(lines), want)
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "audit")
	l := newTestLogger(t, Options{Dir: dir})
	l.Log(callN(0))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v; want 0700", st.Mode().Perm(), err)
	}
	files, _ := readDir(t, dir)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	if st, _ := os.Stat(filepath.Join(dir, files[0])); st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestFlushedPromptlyAndOnClose(t *testing.T) {
	l := newTestLogger(t, Options{})
	start := time.Now()
	l.Log(callN(1))
	waitFor(t, func() bool { _, lines := readDir(t, l.Dir()); return len(lines) == 1 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("record on disk after %v", d)
	}

	// Under a steady stream, nothing waits for the flush interval.
	slow := newTestLogger(t, Options{FlushInterval: time.Hour})
	for i := range 100 {
		slow.Log(callN(i))
	}
	waitFor(t, func() bool { _, lines := readDir(t, slow.Dir()); return len(lines) == 100 })

	// Close writes everything queued.
	l2 := newTestLogger(t, Options{FlushInterval: time.Hour, Queue: 10000})
	for i := range 2000 {
		l2.Log(callN(i))
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, lines := readDir(t, l2.Dir()); len(lines) != 2000 {
		t.Fatalf("%d records after Close, want 2000", len(lines))
	}
	// Log after Close neither panics nor writes.
	l2.Log(callN(9999))
	if _, lines := readDir(t, l2.Dir()); len(lines) != 2000 {
		t.Fatalf("%d records after a late Log", len(lines))
	}
	if err := l2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestFullQueueBlocks: when the writer cannot keep up, Log waits instead of
// dropping the record.
func TestFullQueueBlocks(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	one, _ := NewRecord(callN(0), "us-west-2", mustRedactor(t)).Marshal()
	l := newTestLogger(t, Options{
		Queue: 2, MaxFileBytes: int64(len(one)), // every record rotates the file
		OnFileClosed: func(string) { once.Do(func() { <-release }) }, // the writer stalls once
	})
	logged := make(chan int, 10)
	go func() {
		for i := range 6 {
			l.Log(callN(i))
			logged <- i
		}
	}()
	// Record 0 is written, record 1's rotation stalls the writer, 2 and 3
	// fill the queue: Log of record 4 must block.
	time.Sleep(300 * time.Millisecond)
	if n := len(logged); n > 4 {
		t.Fatalf("%d Log calls returned while the writer was stalled with a queue of 2", n)
	}
	close(release)
	for range 6 {
		select {
		case <-logged:
		case <-time.After(5 * time.Second):
			t.Fatal("Log still blocked after the writer resumed")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, lines := readDir(t, l.Dir()); len(lines) != 6 {
		t.Fatalf("%d records, want 6", len(lines))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
