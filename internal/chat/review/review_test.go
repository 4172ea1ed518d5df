package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/chat/messaging"
)

const (
	testARN  = "arn:aws:lambda:us-west-2:123456789012:function:chat-review"
	testRoom = "arn:aws:ivschat:us-west-2:123456789012:room/abcdEFGH1234"
)

// lambda is an httptest server standing in for the review Lambda; answer
// decides each response from the decoded request.
type lambda struct {
	hs *httptest.Server

	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method      string
	contentType string
	body        []byte
}

func newLambda(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, req map[string]any)) *lambda {
	t.Helper()
	l := &lambda{}
	l.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		l.requests = append(l.requests, recorded{method: r.Method, contentType: r.Header.Get("Content-Type"), body: body})
		l.mu.Unlock()
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		answer(w, r, req)
	}))
	t.Cleanup(l.hs.Close)
	return l
}

func (l *lambda) last(t *testing.T) recorded {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.requests) == 0 {
		t.Fatal("the handler was not invoked")
	}
	return l.requests[len(l.requests)-1]
}

// reply answers with v as JSON.
func reply(v any) func(http.ResponseWriter, *http.Request, map[string]any) {
	return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
}

// raw answers with status and body as they are.
func raw(status int, body string) func(http.ResponseWriter, *http.Request, map[string]any) {
	return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func testRoomWith(maxLen int) *chat.Room {
	return &chat.Room{
		ARN: testRoom, MaximumMessageLength: maxLen, MaximumMessageRatePerSecond: 10,
		ReviewHandler: &chat.ReviewHandler{URI: testARN, FallbackResult: "ALLOW"},
	}
}

func testMessage() *messaging.Message {
	return &messaging.Message{
		Type: messaging.TypeMessage, ID: "AbCdEfGh1234", RequestID: "1",
		Content: "hello world", Attributes: map[string]string{"lang": "en"},
		SendTime: "2024-01-02T03:04:05.678Z",
		Sender:   messaging.Sender{UserID: "alice", Attributes: map[string]string{"name": "Alice"}},
	}
}

func newReviewer(t *testing.T, url string, logger *slog.Logger) *Reviewer {
	t.Helper()
	r, err := New(Config{Handlers: map[string]string{testARN: url}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func review(t *testing.T, r *Reviewer, room *chat.Room, msg *messaging.Message) (messaging.ReviewResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.Review(ctx, room, msg, "203.0.113.7")
}

func TestReviewAllowUnchanged(t *testing.T) {
	l := newLambda(t, reply(map[string]any{"ReviewResult": "ALLOW"}))
	res, err := review(t, newReviewer(t, l.hs.URL, nil), testRoomWith(500), testMessage())
	if err != nil {
		t.Fatal(err)
	}
	if want := (messaging.ReviewResult{Allow: true}); !reflect.DeepEqual(res, want) {
		t.Fatalf("got %+v, want %+v (nothing replaced)", res, want)
	}
}

func TestReviewAllowModified(t *testing.T) {
	l := newLambda(t, reply(map[string]any{
		"ReviewResult": "ALLOW",
		"Content":      "hello *****",
		"Attributes":   map[string]string{"moderated": "true"},
	}))
	res, err := review(t, newReviewer(t, l.hs.URL, nil), testRoomWith(500), testMessage())
	if err != nil {
		t.Fatal(err)
	}
	want := messaging.ReviewResult{Allow: true, Content: "hello *****", Attributes: map[string]string{"moderated": "true"}}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("got %+v, want %+v", res, want)
	}
}

func TestReviewDeny(t *testing.T) {
	l := newLambda(t, reply(map[string]any{"ReviewResult": "DENY", "Attributes": map[string]string{"Reason": "profanity"}}))
	res, err := review(t, newReviewer(t, l.hs.URL, nil), testRoomWith(500), testMessage())
	if err != nil {
		t.Fatal(err)
	}
	if res.Allow {
		t.Fatalf("got %+v, want a denial", res)
	}
}

// TestReviewRequestShape checks the handler gets exactly IVS's Lambda
// payload: field names, nesting and values, nothing more.
func TestReviewRequestShape(t *testing.T) {
	l := newLambda(t, reply(map[string]any{"ReviewResult": "ALLOW"}))
	if _, err := review(t, newReviewer(t, l.hs.URL, nil), testRoomWith(500), testMessage()); err != nil {
		t.Fatal(err)
	}
	got := l.last(t)
	if got.method != http.MethodPost || got.contentType != "application/json" {
		t.Fatalf("got %s with Content-Type %q, want POST application/json", got.method, got.contentType)
	}
	var body map[string]any
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Content":    "hello world",
		"MessageId":  "AbCdEfGh1234",
		"RoomArn":    testRoom,
		"Attributes": map[string]any{"lang": "en"},
		"Sender": map[string]any{
			"Attributes": map[string]any{"name": "Alice"},
			"UserId":     "alice",
			"Ip":         "203.0.113.7",
		},
	}
	if !reflect.DeepEqual(body, want) {
		t.Fatalf("request body\n got %s\nwant %v", got.body, want)
	}
}

// TestReviewRequestEmptyAttributes: IVS's payload always has the
// attribute objects, so handlers may index them without checks.
func TestReviewRequestEmptyAttributes(t *testing.T) {
	l := newLambda(t, reply(map[string]any{"ReviewResult": "ALLOW"}))
	msg := testMessage()
	msg.Attributes, msg.Sender.Attributes = nil, nil
	if _, err := review(t, newReviewer(t, l.hs.URL, nil), testRoomWith(500), msg); err != nil {
		t.Fatal(err)
	}
	body := string(l.last(t).body)
	for _, want := range []string{`"Attributes":{},`, `"Sender":{"Attributes":{},`} {
		if !strings.Contains(body, want) {
			t.Fatalf("request body %s lacks %s", body, want)
		}
	}
}

func TestReviewTimeout(t *testing.T) {
	l := newLambda(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		reply(map[string]any{"ReviewResult": "ALLOW"})(w, r, nil)
	})
	rv := newReviewer(t, l.hs.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rv.Review(ctx, testRoomWith(500), testMessage(), "203.0.113.7")
	if err == nil {
		t.Fatal("a handler past the deadline must be an error")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want it to wrap context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Review returned after %v; it must honour the context's deadline", d)
	}
}

// TestReviewFailures: every answer that is not a valid review is an error
// (so the room's fallbackResult applies).
func TestReviewFailures(t *testing.T) {
	tooLong := strings.Repeat("é", 11) // 11 characters, 22 bytes
	bigAttrs := map[string]string{"k": strings.Repeat("v", 1024)}
	cases := []struct {
		name    string
		answer  func(http.ResponseWriter, *http.Request, map[string]any)
		invalid bool // wraps ErrInvalidResponse
	}{
		{"500", raw(http.StatusInternalServerError, `{"ReviewResult":"ALLOW"}`), false},
		{"404", raw(http.StatusNotFound, "no such function"), false},
		{"redirect", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, false},
		{"function error header", func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorMessage":"boom"}`)
		}, false},
		{"garbage", raw(http.StatusOK, "<html>oops</html>"), true},
		{"empty body", raw(http.StatusOK, ""), true},
		{"JSON array", raw(http.StatusOK, `["ALLOW"]`), true},
		{"not UTF-8", raw(http.StatusOK, "{\"ReviewResult\":\"ALLOW\",\"Content\":\"\xff\"}"), true},
		{"no ReviewResult", reply(map[string]any{"Content": "x"}), true},
		{"lower-case ReviewResult", reply(map[string]any{"ReviewResult": "allow"}), true},
		{"unknown ReviewResult", reply(map[string]any{"ReviewResult": "MAYBE"}), true},
		{"ReviewResult not a string", raw(http.StatusOK, `{"ReviewResult":true}`), true},
		{"Content too long for the room", reply(map[string]any{"ReviewResult": "ALLOW", "Content": tooLong}), true},
		{"Content empty", reply(map[string]any{"ReviewResult": "ALLOW", "Content": ""}), true},
		{"Content too long on DENY", reply(map[string]any{"ReviewResult": "DENY", "Content": tooLong}), true},
		{"Attributes over 1 KB", reply(map[string]any{"ReviewResult": "ALLOW", "Attributes": bigAttrs}), true},
		{"Attributes not strings", raw(http.StatusOK, `{"ReviewResult":"ALLOW","Attributes":{"n":1}}`), true},
		{"body over the cap", raw(http.StatusOK, `{"ReviewResult":"ALLOW","Pad":"`+strings.Repeat("x", maxResponseBody)+`"}`), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLambda(t, tc.answer)
			res, err := review(t, newReviewer(t, l.hs.URL, nil), testRoomWith(10), testMessage())
			if err == nil {
				t.Fatalf("got %+v, want an error", res)
			}
			if got := errors.Is(err, ErrInvalidResponse); got != tc.invalid {
				t.Fatalf("err %v: errors.Is(ErrInvalidResponse) = %v, want %v", err, got, tc.invalid)
			}
		})
	}
}

// TestReviewContentLimits: the room's limit counts characters, not bytes,
// and a room without one gets IVS's 500.
func TestReviewContentLimits(t *testing.T) {
	cases := []struct {
		maxLen  int
		content string
		ok      bool
	}{
		{10, strings.Repeat("é", 10), true},
		{10, strings.Repeat("é", 11), false},
		{0, strings.Repeat("a", 500), true},
		{0, strings.Repeat("a", 501), false},
	}
	for _, tc := range cases {
		body, _ := json.Marshal(map[string]string{"ReviewResult": "ALLOW", "Content": tc.content})
		_, err := parseResponse(body, tc.maxLen)
		if (err == nil) != tc.ok {
			t.Errorf("max %d, %d characters: err %v, want ok=%v", tc.maxLen, len([]rune(tc.content)), err, tc.ok)
		}
	}
}

// TestReviewUnmapped: a room whose handler ARN has no URL fails every
// review, and the operator hears of it once, not per message.
func TestReviewUnmapped(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rv := newReviewer(t, "http://127.0.0.1:1/never", logger)
	room := testRoomWith(500)
	room.ReviewHandler.URI = "arn:aws:lambda:us-west-2:123456789012:function:unmapped"
	for range 3 {
		if _, err := review(t, rv, room, testMessage()); !errors.Is(err, ErrNoHandler) {
			t.Fatalf("err %v, want ErrNoHandler", err)
		}
	}
	if n := strings.Count(logs.String(), `"level":"WARN"`); n != 1 {
		t.Fatalf("%d warnings, want exactly 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "function:unmapped") {
		t.Fatalf("the warning does not name the ARN:\n%s", logs.String())
	}
	if _, err := review(t, rv, &chat.Room{ARN: testRoom}, testMessage()); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("room without a handler: err %v, want ErrNoHandler", err)
	}
}

// TestReviewLogsNoContent: message content is user data and must not reach
// logs above debug level, whatever happens.
func TestReviewLogsNoContent(t *testing.T) {
	const secret = "my-secret-content"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	answers := []func(http.ResponseWriter, *http.Request, map[string]any){
		reply(map[string]any{"ReviewResult": "ALLOW"}),
		raw(http.StatusInternalServerError, "boom"),
		reply(map[string]any{"ReviewResult": "NOPE"}),
	}
	for _, answer := range answers {
		l := newLambda(t, answer)
		msg := testMessage()
		msg.Content = secret
		_, _ = review(t, newReviewer(t, l.hs.URL, logger), testRoomWith(500), msg)
	}
	if logs.Len() == 0 {
		t.Fatal("failures were not logged at all")
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("content leaked into logs:\n%s", logs.String())
	}
}

// TestReviewFailureWarningsThrottled: a broken handler fails for every
// message; one warning per interval is enough.
func TestReviewFailureWarningsThrottled(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	l := newLambda(t, raw(http.StatusBadGateway, ""))
	rv := newReviewer(t, l.hs.URL, logger)
	for range 5 {
		if _, err := review(t, rv, testRoomWith(500), testMessage()); err == nil {
			t.Fatal("want an error")
		}
	}
	if n := strings.Count(logs.String(), `"level":"WARN"`); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name     string
		handlers map[string]string
		wantErr  string
	}{
		{"ok", map[string]string{testARN: "https://review.example.com/hook?x=1"}, ""},
		{"ok with alias", map[string]string{testARN + ":live": "http://127.0.0.1:9000"}, ""},
		{"not lambda", map[string]string{"arn:aws:sqs:us-west-2:123456789012:q": "http://h"}, "not a Lambda function ARN"},
		{"short account", map[string]string{"arn:aws:lambda:us-west-2:1234:function:f": "http://h"}, "not a Lambda function ARN"},
		{"no function name", map[string]string{"arn:aws:lambda:us-west-2:123456789012:function:": "http://h"}, "not a Lambda function ARN"},
		{"too long", map[string]string{testARN + strings.Repeat("x", 170): "http://h"}, "not a Lambda function ARN"},
		{"ftp", map[string]string{testARN: "ftp://h/x"}, "scheme must be http or https"},
		{"relative", map[string]string{testARN: "/hook"}, "scheme must be http or https"},
		{"no host", map[string]string{testARN: "http:///hook"}, "has no host"},
		{"unparsable", map[string]string{testARN: "http://[::1"}, "invalid URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Handlers: tc.handlers})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

// The end-to-end tests below mount a real messaging.Server, with
// Reviewer.Review as its ReviewFunc, and talk to it as the chat SDK does.

const (
	allowRoom = "arn:aws:ivschat:us-west-2:123456789012:room/fallbackALLOW"
	denyRoom  = "arn:aws:ivschat:us-west-2:123456789012:room/fallbackDENY00"
)

// control is the chat control plane as messaging.Control asks for it:
// single-use tokens and room settings.
type control struct {
	mu     sync.Mutex
	tokens map[string]chat.Grant
	rooms  map[string]*chat.Room
	next   int
}

func (c *control) RedeemToken(_ context.Context, token string) (*chat.Grant, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.tokens[token]
	if !ok {
		return nil, chat.ErrTokenInvalid
	}
	delete(c.tokens, token)
	return &g, nil
}

func (c *control) Room(_ context.Context, arn string) (*chat.Room, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rooms[arn]
	if !ok {
		return nil, chat.ErrRoomNotFound
	}
	cp := *r
	return &cp, nil
}

func (c *control) issue(room, user string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	// Subprotocols must be HTTP tokens; these are.
	token := "token" + strings.Repeat("x", c.next)
	c.tokens[token] = chat.Grant{
		RoomARN: room, UserID: user, Attributes: map[string]string{"name": strings.ToUpper(user)},
		Capabilities: []string{chat.CapSendMessage}, SessionExpires: time.Now().Add(time.Hour),
	}
	return token
}

// chatEntity is any server entity, decoded loosely.
type chatEntity struct {
	Type       string
	ID         string `json:"Id"`
	RequestID  string `json:"RequestId"`
	Content    string
	Attributes map[string]string
	Sender     *messaging.Sender
	ErrorCode  int
}

// chatClient reads every entity into a channel from one goroutine: a read
// that times out would close a coder/websocket connection.
type chatClient struct {
	t  *testing.T
	ws *websocket.Conn
	in chan chatEntity
}

func dialChat(t *testing.T, url, token string) *chatClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{token}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	c := &chatClient{t: t, ws: ws, in: make(chan chatEntity, 64)}
	go func() {
		defer close(c.in)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var e chatEntity
			if err := json.Unmarshal(b, &e); err != nil {
				return
			}
			c.in <- e
		}
	}()
	return c
}

func (c *chatClient) say(requestID, content string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"Action": "SEND_MESSAGE", "RequestId": requestID, "Content": content})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *chatClient) next() chatEntity {
	c.t.Helper()
	select {
	case e, ok := <-c.in:
		if !ok {
			c.t.Fatal("connection ended")
		}
		return e
	case <-time.After(5 * time.Second):
		c.t.Fatal("no entity within 5 s")
	}
	return chatEntity{}
}

func (c *chatClient) expectMessage(requestID, content string, attrs map[string]string) {
	c.t.Helper()
	e := c.next()
	if e.Type != "MESSAGE" || e.Content != content || !reflect.DeepEqual(e.Attributes, attrs) {
		c.t.Fatalf("got %+v, want MESSAGE %q with attributes %v", e, content, attrs)
	}
	if requestID != "" && e.RequestID != requestID {
		c.t.Fatalf("got RequestId %q, want %q", e.RequestID, requestID)
	}
}

func (c *chatClient) expectDenied(requestID string) {
	c.t.Helper()
	e := c.next()
	if e.Type != "ERROR" || e.ErrorCode != 406 || e.RequestID != requestID {
		c.t.Fatalf("got %+v, want ERROR 406 for request %q", e, requestID)
	}
}

func (c *chatClient) silent(d time.Duration) {
	c.t.Helper()
	select {
	case e := <-c.in:
		c.t.Fatalf("unexpected entity %+v", e)
	case <-time.After(d):
	}
}

// chatLambda reviews by content, as a moderation Lambda would.
func chatLambda(w http.ResponseWriter, r *http.Request, req map[string]any) {
	content, _ := req["Content"].(string)
	switch {
	case strings.Contains(content, "darn"):
		reply(map[string]any{
			"ReviewResult": "ALLOW",
			"Content":      strings.ReplaceAll(content, "darn", "d**n"),
			"Attributes":   map[string]string{"moderated": "true"},
		})(w, r, req)
	case strings.Contains(content, "spam"):
		reply(map[string]any{"ReviewResult": "DENY", "Attributes": map[string]string{"Reason": "spam"}})(w, r, req)
	case strings.Contains(content, "slow"):
		select { // past the server's review timeout
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
		reply(map[string]any{"ReviewResult": "DENY"})(w, r, req)
	default:
		reply(map[string]any{"ReviewResult": "ALLOW"})(w, r, req)
	}
}

func TestMessagingEndToEnd(t *testing.T) {
	l := newLambda(t, chatLambda)
	allowARN := "arn:aws:lambda:us-west-2:123456789012:function:review-allow"
	denyARN := "arn:aws:lambda:us-west-2:123456789012:function:review-deny"
	rv, err := New(Config{Handlers: map[string]string{allowARN: l.hs.URL + "/a", denyARN: l.hs.URL + "/d"}})
	if err != nil {
		t.Fatal(err)
	}
	ctl := &control{tokens: map[string]chat.Grant{}, rooms: map[string]*chat.Room{
		allowRoom: {ARN: allowRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10,
			ReviewHandler: &chat.ReviewHandler{URI: allowARN, FallbackResult: "ALLOW"}},
		denyRoom: {ARN: denyRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10,
			ReviewHandler: &chat.ReviewHandler{URI: denyARN, FallbackResult: "DENY"}},
	}}
	// IVS's 200 ms is messaging's default; this test is about what happens
	// past the deadline, and 500 ms keeps a loaded -race run from timing
	// out the reviews that should succeed.
	srv, err := messaging.New(messaging.Config{Control: ctl, Review: rv.Review, PingInterval: -1, ReviewTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	// A connection joins its room just after the upgrade; its own message
	// coming back proves it has. Bob joins before Alice dials, so he hears
	// her warm-up and she does not hear his.
	bob := dialChat(t, url, ctl.issue(allowRoom, "bob"))
	bob.say("w", "warm-up")
	bob.expectMessage("w", "warm-up", nil)
	alice := dialChat(t, url, ctl.issue(allowRoom, "alice"))
	alice.say("w", "warm-up")
	alice.expectMessage("w", "warm-up", nil)
	bob.expectMessage("w", "warm-up", nil)
	carol := dialChat(t, url, ctl.issue(denyRoom, "carol"))

	t.Run("allowed", func(t *testing.T) {
		alice.say("1", "hi")
		alice.expectMessage("1", "hi", nil)
		bob.expectMessage("", "hi", nil)
		var req struct {
			Content, RoomArn string
			Sender           struct {
				UserId, Ip string
				Attributes map[string]string
			}
		}
		if err := json.Unmarshal(l.last(t).body, &req); err != nil {
			t.Fatal(err)
		}
		if req.Content != "hi" || req.RoomArn != allowRoom || req.Sender.UserId != "alice" ||
			req.Sender.Ip != "127.0.0.1" || req.Sender.Attributes["name"] != "ALICE" {
			t.Fatalf("the handler got %s", l.last(t).body)
		}
	})
	t.Run("modified", func(t *testing.T) {
		alice.say("2", "darn it")
		want := map[string]string{"moderated": "true"}
		alice.expectMessage("2", "d**n it", want)
		bob.expectMessage("", "d**n it", want)
	})
	t.Run("denied", func(t *testing.T) {
		alice.say("3", "buy spam")
		alice.expectDenied("3")
		bob.silent(300 * time.Millisecond)
	})
	t.Run("timeout falls back to ALLOW", func(t *testing.T) {
		start := time.Now()
		alice.say("4", "slow one")
		alice.expectMessage("4", "slow one", nil)
		bob.expectMessage("", "slow one", nil)
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("delivered after %v; the review should have timed out at 500 ms", d)
		}
	})
	t.Run("timeout falls back to DENY", func(t *testing.T) {
		carol.say("5", "slow two")
		carol.expectDenied("5")
	})
	t.Run("allowed in the DENY room", func(t *testing.T) {
		carol.say("6", "fine")
		carol.expectMessage("6", "fine", nil)
	})
}
