package e2e

// IVS Chat end to end: the ivschat SDK against `openivs serve`, raw
// WebSocket clients and the official amazon-ivs-chat-messaging SDK (Node)
// on GET /chat, message review handlers over HTTP, and chat logging to
// every kind of destination.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/testutil/awstest"
)

// ivschatClient is the real IVS Chat SDK client for srv with the test root
// credentials and retries only of broken connections (awstest.Retryer), so
// every error surfaces as it was answered.
func ivschatClient(t testing.TB, srv *server) *ivschat.Client {
	t.Helper()
	return ivschatClientWith(srv, testAccessKeyID, testSecretAccessKey)
}

func ivschatClientWith(srv *server, id, secret string) *ivschat.Client {
	return ivschat.New(ivschat.Options{
		BaseEndpoint: aws.String(srv.Endpoint),
		Region:       testRegion,
		Credentials:  staticCreds(id, secret),
		Retryer:      awstest.Retryer(),
		HTTPClient:   srv.client,
	})
}

// chatWSURL is the messaging WebSocket of srv: what an application passes
// to the chat SDK as regionOrUrl.
func chatWSURL(srv *server) string { return "ws://127.0.0.1:" + strconv.Itoa(srv.HTTP) + "/chat" }

var (
	roomARNRe    = regexp.MustCompile(`^arn:aws:ivschat:us-west-2:123456789012:room/([A-Za-z0-9]{12})$`)
	loggingARNRe = regexp.MustCompile(`^arn:aws:ivschat:us-west-2:123456789012:logging-configuration/([A-Za-z0-9]{12})$`)
	// chatIDRe: ids of messages and events (and of rooms).
	chatIDRe = regexp.MustCompile(`^[A-Za-z0-9]{12}$`)
)

const (
	unknownRoomARN    = "arn:aws:ivschat:us-west-2:123456789012:room/zzzzzzzzzzzz"
	unknownLoggingARN = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/zzzzzzzzzzzz"
	reviewLambdaARN   = "arn:aws:lambda:us-west-2:123456789012:function:review"
	// chatWait bounds every wait for a chat frame or a close.
	chatWait = 10 * time.Second
	// sendTimeLayout is SendTime's and event_timestamp's format.
	sendTimeLayout = "2006-01-02T15:04:05.000Z07:00"
)

var allCaps = []chattypes.ChatTokenCapability{
	chattypes.ChatTokenCapabilitySendMessage,
	chattypes.ChatTokenCapabilityDeleteMessage,
	chattypes.ChatTokenCapabilityDisconnectUser,
}

// wantChatValidation checks a ValidationException (400) whose message
// mentions field. Its reason and fieldList are checked when the server
// sets them, and logged as missing otherwise.
func wantChatValidation(t testing.TB, err error, what, field string) {
	t.Helper()
	ve := wantErr[*chattypes.ValidationException](t, err, stValidation, what, field)
	if ve == nil {
		return
	}
	if ve.Reason == "" {
		t.Logf("NOTE %s: ValidationException without reason/fieldList (the model has both): %q", what, errMessage(err))
		return
	}
	if !slices.Contains(ve.Reason.Values(), ve.Reason) {
		t.Errorf("%s: reason %q is not one of the model's %v", what, ve.Reason, ve.Reason.Values())
	}
	if len(ve.FieldList) == 0 {
		t.Logf("NOTE %s: ValidationException (reason %s) without fieldList: %q", what, ve.Reason, errMessage(err))
		return
	}
	named := false
	for _, f := range ve.FieldList {
		if strings.Contains(strings.ToLower(aws.ToString(f.Name)), strings.ToLower(field)) {
			named = true
		}
		if aws.ToString(f.Message) == "" {
			t.Errorf("%s: fieldList entry %q has no message", what, aws.ToString(f.Name))
		}
	}
	if !named {
		var names []string
		for _, f := range ve.FieldList {
			names = append(names, aws.ToString(f.Name))
		}
		t.Errorf("%s: fieldList %v does not name %q", what, names, field)
	}
}

// wantChatNotFound checks a ResourceNotFoundException (404) naming the
// resource id and type ("" skips a check); missing members are logged.
func wantChatNotFound(t testing.TB, err error, what, id string, rt chattypes.ResourceType) {
	t.Helper()
	nf := wantErr[*chattypes.ResourceNotFoundException](t, err, stNotFound, what)
	if nf == nil {
		return
	}
	switch got := aws.ToString(nf.ResourceId); {
	case got == "":
		t.Logf("NOTE %s: ResourceNotFoundException without resourceId", what)
	case id != "" && got != id:
		t.Errorf("%s: resourceId %q, want %q", what, got, id)
	}
	switch {
	case nf.ResourceType == "":
		t.Logf("NOTE %s: ResourceNotFoundException without resourceType", what)
	case rt != "" && nf.ResourceType != rt:
		t.Errorf("%s: resourceType %q, want %q", what, nf.ResourceType, rt)
	}
}

// nearNow fails unless ts is within a minute of now plus offset.
func nearNow(t testing.TB, what string, ts *time.Time, offset time.Duration) {
	t.Helper()
	if ts == nil {
		t.Errorf("%s: missing", what)
		return
	}
	if d := ts.Sub(time.Now().Add(offset)); d < -time.Minute || d > time.Minute {
		t.Errorf("%s = %s, want about now%+v (off by %s)", what, ts.UTC().Format(time.RFC3339Nano), offset, d)
	}
}

func createChatRoom(t testing.TB, c *ivschat.Client, in *ivschat.CreateRoomInput) *ivschat.CreateRoomOutput {
	t.Helper()
	if in == nil {
		in = &ivschat.CreateRoomInput{}
	}
	out, err := c.CreateRoom(ctx(t), in)
	must(t, err, "CreateRoom")
	if !roomARNRe.MatchString(aws.ToString(out.Arn)) {
		t.Fatalf("CreateRoom arn %q does not match %s", aws.ToString(out.Arn), roomARNRe)
	}
	return out
}

func createChatLogging(t testing.TB, c *ivschat.Client, name string, dest chattypes.DestinationConfiguration) *ivschat.CreateLoggingConfigurationOutput {
	t.Helper()
	out, err := c.CreateLoggingConfiguration(ctx(t), &ivschat.CreateLoggingConfigurationInput{Name: aws.String(name), DestinationConfiguration: dest})
	must(t, err, "CreateLoggingConfiguration "+name)
	return out
}

// mintChatToken is CreateChatToken for user in room.
func mintChatToken(t testing.TB, c *ivschat.Client, room, user string, attrs map[string]string, caps ...chattypes.ChatTokenCapability) string {
	t.Helper()
	out, err := c.CreateChatToken(ctx(t), &ivschat.CreateChatTokenInput{
		RoomIdentifier: aws.String(room), UserId: aws.String(user), Attributes: attrs, Capabilities: caps,
	})
	must(t, err, "CreateChatToken for "+user)
	if aws.ToString(out.Token) == "" {
		t.Fatalf("CreateChatToken for %s: empty token", user)
	}
	return aws.ToString(out.Token)
}

// chatFrame is one entity a chat client receives: a MESSAGE, EVENT or ERROR.
type chatFrame struct {
	Type       string
	Id         string
	RequestId  string
	Content    string
	Attributes map[string]string
	SendTime   string
	Sender     struct {
		UserId     string
		Attributes map[string]string
	}
	EventName    string
	ErrorCode    int
	ErrorMessage string

	raw []byte
}

func (f chatFrame) String() string { return string(f.raw) }

// chatConn is a raw messaging WebSocket client, as the SDK connects: the
// token as the only subprotocol. A goroutine records every frame.
type chatConn struct {
	name string
	ws   *websocket.Conn

	mu     sync.Mutex
	frames []chatFrame
	err    error // why reading ended
	done   chan struct{}
}

// dialChatWS opens the messaging WebSocket with token.
func dialChatWS(url, token string) (*websocket.Conn, *http.Response, error) {
	c, cancel := context.WithTimeout(context.Background(), chatWait)
	defer cancel()
	return websocket.Dial(c, url, &websocket.DialOptions{Subprotocols: []string{token}})
}

// dialChat connects name with token and fails the test if it cannot.
func dialChat(t testing.TB, url, token, name string) *chatConn {
	t.Helper()
	ws, resp, err := dialChatWS(url, token)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("%s: chat WebSocket %s: HTTP %d: %v", name, url, status, err)
	}
	if ws.Subprotocol() != token {
		t.Errorf("%s: the server echoed subprotocol %q, want the token (the SDK's WebSocket fails otherwise)", name, ws.Subprotocol())
	}
	c := &chatConn{name: name, ws: ws, done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

func (c *chatConn) read() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var f chatFrame
		if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil {
			f = chatFrame{Type: "!not-a-JSON-text-frame"}
		}
		f.raw = data
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
	}
}

func (c *chatConn) send(t testing.TB, req map[string]any) {
	t.Helper()
	b, err := json.Marshal(req)
	must(t, err, "encode request")
	wctx, cancel := context.WithTimeout(context.Background(), chatWait)
	defer cancel()
	if err := c.ws.Write(wctx, websocket.MessageText, b); err != nil {
		t.Fatalf("%s: write %s: %v", c.name, b, err)
	}
}

// sendMessage publishes a SEND_MESSAGE request.
func (c *chatConn) sendMessage(t testing.TB, requestID, content string, attrs map[string]string) {
	t.Helper()
	req := map[string]any{"Action": "SEND_MESSAGE", "RequestId": requestID, "Content": content}
	if attrs != nil {
		req["Attributes"] = attrs
	}
	c.send(t, req)
}

// find returns the first frame received so far that match accepts.
func (c *chatConn) find(match func(chatFrame) bool) (chatFrame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if match(f) {
			return f, true
		}
	}
	return chatFrame{}, false
}

func (c *chatConn) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, f := range c.frames {
		b.WriteString("\n    ")
		b.Write(f.raw)
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

// waitFor polls until a frame that match accepts arrives (chatWait at most).
func (c *chatConn) waitFor(t testing.TB, what string, match func(chatFrame) bool) chatFrame {
	t.Helper()
	deadline := time.Now().Add(chatWait)
	for {
		if f, ok := c.find(match); ok {
			return f
		}
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		if err != nil {
			t.Fatalf("%s: the connection ended (%v) before %s; frames received:%s", c.name, err, what, c.dump())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within %s; frames received:%s", c.name, what, chatWait, c.dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitClosed waits for the server to end the connection and returns the
// close code (-1 without a close frame).
func (c *chatConn) waitClosed(t testing.TB, what string) websocket.StatusCode {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(chatWait):
		t.Fatalf("%s: %s: still open after %s; frames received:%s", c.name, what, chatWait, c.dump())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return websocket.CloseStatus(c.err)
}

// open reports whether the connection is still being read.
func (c *chatConn) open() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

var readySeq atomic.Int64

// ready sends a message and waits for it to come back through the room's
// fan-out: from then on, the connection is in its room on its node (and
// that node subscribed to the room), so what others send reaches it.
func (c *chatConn) ready(t testing.TB) chatFrame {
	t.Helper()
	id := fmt.Sprintf("ready-%s-%d", c.name, readySeq.Add(1))
	c.sendMessage(t, id, id, nil)
	return c.waitFor(t, "its own readiness message "+id, func(f chatFrame) bool {
		if f.Type == "ERROR" && f.RequestId == id {
			t.Fatalf("%s: readiness message refused: %s", c.name, f)
		}
		return f.Type == "MESSAGE" && f.RequestId == id
	})
}

func messageWith(content string) func(chatFrame) bool {
	return func(f chatFrame) bool { return f.Type == "MESSAGE" && f.Content == content }
}

func messageOfRequest(requestID string) func(chatFrame) bool {
	return func(f chatFrame) bool { return f.Type == "MESSAGE" && f.RequestId == requestID }
}

func frameWithID(id string) func(chatFrame) bool {
	return func(f chatFrame) bool { return f.Id == id }
}

func errorOfRequest(requestID string) func(chatFrame) bool {
	return func(f chatFrame) bool { return f.Type == "ERROR" && f.RequestId == requestID }
}

func eventNamed(name string, attr, value string) func(chatFrame) bool {
	return func(f chatFrame) bool {
		return f.Type == "EVENT" && f.EventName == name && (attr == "" || f.Attributes[attr] == value)
	}
}

// checkSendTime fails unless a frame's SendTime is IVS's format and recent.
func checkSendTime(t testing.TB, what, s string) {
	t.Helper()
	ts, err := time.Parse(sendTimeLayout, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		t.Errorf("%s: SendTime %q is not UTC RFC 3339 with milliseconds (%v)", what, s, err)
		return
	}
	nearNow(t, what+" SendTime", &ts, 0)
}

// TestChatAPI drives every IVS Chat operation through the ivschat SDK
// against a real server: happy paths, bounds and the typical errors with
// their members, tags, the moderation operations as WebSocket clients
// see them, bad credentials, and the chat quotas.
func TestChatAPI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivschatClient(t, srv)

	t.Run("rooms", func(t *testing.T) { testChatRooms(t, c) })
	t.Run("list rooms", func(t *testing.T) { testChatListRooms(t, c) })
	t.Run("logging configurations", func(t *testing.T) { testChatLoggingConfigurations(t, c) })
	t.Run("chat tokens", func(t *testing.T) { testChatTokens(t, srv, c) })
	t.Run("send event, delete message, disconnect user", func(t *testing.T) { testChatModeration(t, srv, c) })
	t.Run("tags", func(t *testing.T) { testChatTags(t, c) })
	t.Run("credentials", func(t *testing.T) { testChatCredentials(t, srv) })
	t.Run("quotas", testChatQuotas)
}

func testChatRooms(t *testing.T, c *ivschat.Client) {
	cx := ctx(t)
	room := createChatRoom(t, c, &ivschat.CreateRoomInput{Name: aws.String("lobby"), Tags: map[string]string{"team": "chat", "env": "e2e"}})
	arn := aws.ToString(room.Arn)
	id := roomARNRe.FindStringSubmatch(arn)[1]
	eq(t, "id", aws.ToString(room.Id), id)
	eq(t, "name", aws.ToString(room.Name), "lobby")
	eq(t, "default maximumMessageLength", aws.ToInt32(room.MaximumMessageLength), 500)
	eq(t, "default maximumMessageRatePerSecond", aws.ToInt32(room.MaximumMessageRatePerSecond), 10)
	if room.MessageReviewHandler != nil {
		t.Errorf("messageReviewHandler = %+v, want none", room.MessageReviewHandler)
	}
	eq(t, "loggingConfigurationIdentifiers", len(room.LoggingConfigurationIdentifiers), 0)
	deepEq(t, "tags", room.Tags, map[string]string{"team": "chat", "env": "e2e"})
	nearNow(t, "createTime", room.CreateTime, 0)
	nearNow(t, "updateTime", room.UpdateTime, 0)
	if room.CreateTime != nil && room.UpdateTime != nil && room.UpdateTime.Before(*room.CreateTime) {
		t.Errorf("updateTime %s before createTime %s", room.UpdateTime, room.CreateTime)
	}
	if rid, ok := awsmiddleware.GetRequestIDMetadata(room.ResultMetadata); !ok || rid == "" {
		t.Errorf("CreateRoom response without x-amzn-RequestId")
	}
	unnamed := createChatRoom(t, c, nil)
	eq(t, "unnamed room name", aws.ToString(unnamed.Name), "")
	if unnamed.Tags == nil {
		t.Errorf("untagged room: tags missing, want {}")
	}
	if aws.ToString(unnamed.Id) == id {
		t.Errorf("two rooms share the id %s", id)
	}

	// Bounds: maximumMessageLength 1..500, maximumMessageRatePerSecond 1..100.
	for _, v := range []int32{1, 500} {
		r := createChatRoom(t, c, &ivschat.CreateRoomInput{MaximumMessageLength: aws.Int32(v)})
		eq(t, fmt.Sprintf("maximumMessageLength %d", v), aws.ToInt32(r.MaximumMessageLength), v)
	}
	for _, v := range []int32{1, 100} {
		r := createChatRoom(t, c, &ivschat.CreateRoomInput{MaximumMessageRatePerSecond: aws.Int32(v)})
		eq(t, fmt.Sprintf("maximumMessageRatePerSecond %d", v), aws.ToInt32(r.MaximumMessageRatePerSecond), v)
	}
	for _, v := range []int32{0, 501, -1} {
		_, err := c.CreateRoom(cx, &ivschat.CreateRoomInput{MaximumMessageLength: aws.Int32(v)})
		wantChatValidation(t, err, fmt.Sprintf("CreateRoom maximumMessageLength %d", v), "maximumMessageLength")
	}
	for _, v := range []int32{0, 101} {
		_, err := c.CreateRoom(cx, &ivschat.CreateRoomInput{MaximumMessageRatePerSecond: aws.Int32(v)})
		wantChatValidation(t, err, fmt.Sprintf("CreateRoom maximumMessageRatePerSecond %d", v), "maximumMessageRatePerSecond")
	}
	for _, name := range []string{"bad name!", strings.Repeat("n", 129)} {
		_, err := c.CreateRoom(cx, &ivschat.CreateRoomInput{Name: aws.String(name)})
		wantChatValidation(t, err, "CreateRoom name "+name[:min(len(name), 12)], "name")
	}
	_, err := c.CreateRoom(cx, &ivschat.CreateRoomInput{MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String("https://example.com/review")}})
	wantChatValidation(t, err, "CreateRoom messageReviewHandler uri not a Lambda ARN", "uri")
	_, err = c.CreateRoom(cx, &ivschat.CreateRoomInput{MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String(reviewLambdaARN), FallbackResult: "MAYBE"}})
	wantChatValidation(t, err, "CreateRoom fallbackResult MAYBE", "fallbackResult")
	_, err = c.CreateRoom(cx, &ivschat.CreateRoomInput{Tags: map[string]string{"aws:reserved": "x"}})
	wantChatValidation(t, err, "CreateRoom aws: tag", "tags")
	_, err = c.CreateRoom(cx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{unknownLoggingARN}})
	wantChatNotFound(t, err, "CreateRoom with an unknown logging configuration", "zzzzzzzzzzzz", "LOGGING_CONFIGURATION")

	// GetRoom returns what CreateRoom did.
	got, err := c.GetRoom(cx, &ivschat.GetRoomInput{Identifier: room.Arn})
	must(t, err, "GetRoom")
	eq(t, "get arn", aws.ToString(got.Arn), arn)
	eq(t, "get id", aws.ToString(got.Id), id)
	eq(t, "get name", aws.ToString(got.Name), "lobby")
	eq(t, "get maximumMessageLength", aws.ToInt32(got.MaximumMessageLength), 500)
	eq(t, "get maximumMessageRatePerSecond", aws.ToInt32(got.MaximumMessageRatePerSecond), 10)
	deepEq(t, "get tags", got.Tags, room.Tags)
	if got.CreateTime == nil || room.CreateTime == nil || !got.CreateTime.Equal(*room.CreateTime) {
		t.Errorf("get createTime %v, want %v", got.CreateTime, room.CreateTime)
	}
	for _, unknown := range []string{unknownRoomARN, otherAccount(arn)} {
		_, err = c.GetRoom(cx, &ivschat.GetRoomInput{Identifier: aws.String(unknown)})
		wantChatNotFound(t, err, "GetRoom "+unknown, unknown[strings.LastIndex(unknown, "/")+1:], chattypes.ResourceTypeRoom)
	}
	_, err = c.GetRoom(cx, &ivschat.GetRoomInput{Identifier: aws.String(id)})
	wantChatValidation(t, err, "GetRoom by id instead of ARN", "identifier")
	_, err = c.GetRoom(cx, &ivschat.GetRoomInput{Identifier: aws.String("arn:aws:ivs:us-west-2:123456789012:channel/abcdABCD1234")})
	wantChatValidation(t, err, "GetRoom with an IVS channel ARN", "identifier")

	// UpdateRoom changes what it is given and keeps the rest.
	up, err := c.UpdateRoom(cx, &ivschat.UpdateRoomInput{
		Identifier: room.Arn, Name: aws.String("lobby-2"), MaximumMessageLength: aws.Int32(200),
		MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String(reviewLambdaARN), FallbackResult: chattypes.FallbackResultDeny},
	})
	must(t, err, "UpdateRoom")
	eq(t, "updated name", aws.ToString(up.Name), "lobby-2")
	eq(t, "updated maximumMessageLength", aws.ToInt32(up.MaximumMessageLength), 200)
	eq(t, "kept maximumMessageRatePerSecond", aws.ToInt32(up.MaximumMessageRatePerSecond), 10)
	deepEq(t, "kept tags", up.Tags, room.Tags)
	if h := up.MessageReviewHandler; h == nil || aws.ToString(h.Uri) != reviewLambdaARN || h.FallbackResult != chattypes.FallbackResultDeny {
		t.Errorf("updated messageReviewHandler = %+v", h)
	}
	if up.UpdateTime == nil || up.CreateTime == nil || up.UpdateTime.Before(*up.CreateTime) {
		t.Errorf("updateTime %v, createTime %v", up.UpdateTime, up.CreateTime)
	}
	// fallbackResult defaults to ALLOW; an empty uri removes the handler.
	up, err = c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: room.Arn, MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String(reviewLambdaARN)}})
	must(t, err, "UpdateRoom handler without fallbackResult")
	if h := up.MessageReviewHandler; h == nil || h.FallbackResult != chattypes.FallbackResultAllow {
		t.Errorf("messageReviewHandler without fallbackResult = %+v, want ALLOW", h)
	}
	up, err = c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: room.Arn, MessageReviewHandler: &chattypes.MessageReviewHandler{Uri: aws.String("")}})
	must(t, err, "UpdateRoom remove handler")
	if up.MessageReviewHandler != nil && aws.ToString(up.MessageReviewHandler.Uri) != "" {
		t.Errorf("messageReviewHandler after an empty uri = %+v, want none", up.MessageReviewHandler)
	}
	eq(t, "name kept", aws.ToString(up.Name), "lobby-2")
	got, err = c.GetRoom(cx, &ivschat.GetRoomInput{Identifier: room.Arn})
	must(t, err, "GetRoom after update")
	eq(t, "persisted name", aws.ToString(got.Name), "lobby-2")
	eq(t, "persisted maximumMessageLength", aws.ToInt32(got.MaximumMessageLength), 200)
	_, err = c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: room.Arn, MaximumMessageLength: aws.Int32(501)})
	wantChatValidation(t, err, "UpdateRoom maximumMessageLength 501", "maximumMessageLength")
	_, err = c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: room.Arn, MaximumMessageRatePerSecond: aws.Int32(101)})
	wantChatValidation(t, err, "UpdateRoom maximumMessageRatePerSecond 101", "maximumMessageRatePerSecond")
	_, err = c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: aws.String(unknownRoomARN), Name: aws.String("x")})
	wantChatNotFound(t, err, "UpdateRoom unknown", "zzzzzzzzzzzz", chattypes.ResourceTypeRoom)
	_, err = c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: room.Arn, LoggingConfigurationIdentifiers: []string{unknownLoggingARN}})
	wantChatNotFound(t, err, "UpdateRoom with an unknown logging configuration", "zzzzzzzzzzzz", "LOGGING_CONFIGURATION")

	// DeleteRoom: gone for every operation afterwards.
	_, err = c.DeleteRoom(cx, &ivschat.DeleteRoomInput{Identifier: room.Arn})
	must(t, err, "DeleteRoom")
	_, err = c.GetRoom(cx, &ivschat.GetRoomInput{Identifier: room.Arn})
	wantChatNotFound(t, err, "GetRoom after DeleteRoom", id, chattypes.ResourceTypeRoom)
	_, err = c.DeleteRoom(cx, &ivschat.DeleteRoomInput{Identifier: room.Arn})
	wantChatNotFound(t, err, "DeleteRoom twice", id, chattypes.ResourceTypeRoom)
	_, err = c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: room.Arn, Name: aws.String("x")})
	wantChatNotFound(t, err, "UpdateRoom after DeleteRoom", id, chattypes.ResourceTypeRoom)
	_, err = c.DeleteRoom(cx, &ivschat.DeleteRoomInput{Identifier: aws.String(otherAccount(aws.ToString(unnamed.Arn)))})
	wantChatNotFound(t, err, "DeleteRoom of another account", aws.ToString(unnamed.Id), chattypes.ResourceTypeRoom)
}

func testChatListRooms(t *testing.T, c *ivschat.Client) {
	cx := ctx(t)
	const lambda = "arn:aws:lambda:us-west-2:123456789012:function:list-filter"
	lc := createChatLogging(t, c, "list-filter", &chattypes.DestinationConfigurationMemberFirehose{
		Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("list-filter")}})
	var paged, reviewed, logged []string
	for i := 0; i < 5; i++ {
		in := &ivschat.CreateRoomInput{Name: aws.String("paged"), Tags: map[string]string{"i": strconv.Itoa(i)}}
		if i%3 == 0 {
			in.MessageReviewHandler = &chattypes.MessageReviewHandler{Uri: aws.String(lambda)}
		}
		if i%2 == 1 {
			in.LoggingConfigurationIdentifiers = []string{aws.ToString(lc.Arn)}
		}
		arn := aws.ToString(createChatRoom(t, c, in).Arn)
		paged = append(paged, arn)
		if i%3 == 0 {
			reviewed = append(reviewed, arn)
		}
		if i%2 == 1 {
			logged = append(logged, arn)
		}
	}
	other := aws.ToString(createChatRoom(t, c, &ivschat.CreateRoomInput{Name: aws.String("unpaged")}).Arn)

	// list pages through a listing with the SDK's paginator.
	list := func(what string, in *ivschat.ListRoomsInput) (arns []string, pages int, summaries []chattypes.RoomSummary) {
		t.Helper()
		p := ivschat.NewListRoomsPaginator(c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(cx)
			must(t, err, "ListRooms "+what)
			pages++
			if pages > 20 {
				t.Fatalf("ListRooms %s: more than 20 pages", what)
			}
			if in.MaxResults != nil && len(out.Rooms) > int(*in.MaxResults) {
				t.Errorf("ListRooms %s: page of %d rooms, maxResults %d", what, len(out.Rooms), *in.MaxResults)
			}
			for _, r := range out.Rooms {
				arns = append(arns, aws.ToString(r.Arn))
			}
			summaries = append(summaries, out.Rooms...)
		}
		return arns, pages, summaries
	}
	got, pages, summaries := list("name=paged, 2 per page", &ivschat.ListRoomsInput{Name: aws.String("paged"), MaxResults: aws.Int32(2)})
	if !sameSet(got, paged) {
		t.Errorf("ListRooms name=paged = %v, want %v", got, paged)
	}
	eq(t, "pages of 2 for 5 rooms", pages, 3)
	for _, s := range summaries {
		if !roomARNRe.MatchString(aws.ToString(s.Arn)) || aws.ToString(s.Id) != roomARNRe.FindStringSubmatch(aws.ToString(s.Arn))[1] {
			t.Errorf("summary arn %q id %q", aws.ToString(s.Arn), aws.ToString(s.Id))
		}
		eq(t, "summary name", aws.ToString(s.Name), "paged")
		if s.CreateTime == nil || s.UpdateTime == nil || s.Tags["i"] == "" {
			t.Errorf("summary %s: createTime %v updateTime %v tags %v", aws.ToString(s.Arn), s.CreateTime, s.UpdateTime, s.Tags)
		}
		want := slices.Contains(reviewed, aws.ToString(s.Arn))
		if have := s.MessageReviewHandler != nil && aws.ToString(s.MessageReviewHandler.Uri) == lambda; have != want {
			t.Errorf("summary %s: messageReviewHandler %+v", aws.ToString(s.Arn), s.MessageReviewHandler)
		}
		if slices.Contains(logged, aws.ToString(s.Arn)) != slices.Contains(s.LoggingConfigurationIdentifiers, aws.ToString(lc.Arn)) {
			t.Errorf("summary %s: loggingConfigurationIdentifiers %v", aws.ToString(s.Arn), s.LoggingConfigurationIdentifiers)
		}
	}
	all, _, _ := list("all", &ivschat.ListRoomsInput{})
	for _, arn := range append(slices.Clone(paged), other) {
		if !slices.Contains(all, arn) {
			t.Errorf("ListRooms without filters misses %s", arn)
		}
	}
	if n := len(all); n != len(slices.Compact(slices.Sorted(slices.Values(all)))) {
		t.Errorf("ListRooms lists a room twice: %v", all)
	}
	got, _, _ = list("messageReviewHandlerUri", &ivschat.ListRoomsInput{MessageReviewHandlerUri: aws.String(lambda), MaxResults: aws.Int32(1)})
	if !sameSet(got, reviewed) {
		t.Errorf("ListRooms messageReviewHandlerUri = %v, want %v", got, reviewed)
	}
	got, _, _ = list("loggingConfigurationIdentifier", &ivschat.ListRoomsInput{LoggingConfigurationIdentifier: lc.Arn, MaxResults: aws.Int32(1)})
	if !sameSet(got, logged) {
		t.Errorf("ListRooms loggingConfigurationIdentifier = %v, want %v", got, logged)
	}
	got, _, _ = list("no match", &ivschat.ListRoomsInput{Name: aws.String("nothing-is-called-this")})
	eq(t, "rooms named nothing-is-called-this", len(got), 0)

	for _, n := range []int32{0, 51} {
		_, err := c.ListRooms(cx, &ivschat.ListRoomsInput{MaxResults: aws.Int32(n)})
		wantChatValidation(t, err, fmt.Sprintf("ListRooms maxResults %d", n), "maxResults")
	}
	_, err := c.ListRooms(cx, &ivschat.ListRoomsInput{NextToken: aws.String("not-a-next-token")})
	wantChatValidation(t, err, "ListRooms with a made-up nextToken", "nextToken")
	first, err := c.ListRooms(cx, &ivschat.ListRoomsInput{Name: aws.String("paged"), MaxResults: aws.Int32(1)})
	must(t, err, "ListRooms first page")
	if first.NextToken == nil {
		t.Fatal("ListRooms first page of 1: no nextToken")
	}
	_, err = c.ListRooms(cx, &ivschat.ListRoomsInput{Name: aws.String("unpaged"), NextToken: first.NextToken})
	wantChatValidation(t, err, "ListRooms nextToken of another listing", "nextToken")
	_, err = c.ListRooms(cx, &ivschat.ListRoomsInput{LoggingConfigurationIdentifier: aws.String(unknownLoggingARN)})
	wantChatNotFound(t, err, "ListRooms by an unknown logging configuration", "zzzzzzzzzzzz", "LOGGING_CONFIGURATION")
}

func testChatLoggingConfigurations(t *testing.T, c *ivschat.Client) {
	cx := ctx(t)
	cwOut, err := c.CreateLoggingConfiguration(cx, &ivschat.CreateLoggingConfigurationInput{
		Name: aws.String("cw"),
		DestinationConfiguration: &chattypes.DestinationConfigurationMemberCloudWatchLogs{
			Value: chattypes.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("/aws/ivschat/e2e")}},
		Tags: map[string]string{"kind": "cloudwatch"},
	})
	must(t, err, "CreateLoggingConfiguration cloudWatchLogs")
	cw := aws.ToString(cwOut.Arn)
	m := loggingARNRe.FindStringSubmatch(cw)
	if m == nil {
		t.Fatalf("logging configuration arn %q does not match %s", cw, loggingARNRe)
	}
	eq(t, "id", aws.ToString(cwOut.Id), m[1])
	eq(t, "name", aws.ToString(cwOut.Name), "cw")
	eq(t, "state", cwOut.State, chattypes.CreateLoggingConfigurationStateActive)
	deepEq(t, "tags", cwOut.Tags, map[string]string{"kind": "cloudwatch"})
	nearNow(t, "createTime", cwOut.CreateTime, 0)
	nearNow(t, "updateTime", cwOut.UpdateTime, 0)
	if d, ok := cwOut.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberCloudWatchLogs); !ok || aws.ToString(d.Value.LogGroupName) != "/aws/ivschat/e2e" {
		t.Errorf("cloudWatchLogs destination = %#v", cwOut.DestinationConfiguration)
	}
	fhOut := createChatLogging(t, c, "fh", &chattypes.DestinationConfigurationMemberFirehose{
		Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("e2e-stream")}})
	if d, ok := fhOut.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberFirehose); !ok || aws.ToString(d.Value.DeliveryStreamName) != "e2e-stream" {
		t.Errorf("firehose destination = %#v", fhOut.DestinationConfiguration)
	}
	if fhOut.Tags == nil {
		t.Errorf("untagged logging configuration: tags missing, want {}")
	}
	s3Out := createChatLogging(t, c, "s3", &chattypes.DestinationConfigurationMemberS3{
		Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("e2e-chat-logs")}})
	if d, ok := s3Out.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberS3); !ok || aws.ToString(d.Value.BucketName) != "e2e-chat-logs" {
		t.Errorf("s3 destination = %#v", s3Out.DestinationConfiguration)
	}
	fh, s3 := aws.ToString(fhOut.Arn), aws.ToString(s3Out.Arn)

	bad := []struct {
		what, field string
		in          *ivschat.CreateLoggingConfigurationInput
	}{
		{"bucket with capitals", "bucketName", &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &chattypes.DestinationConfigurationMemberS3{
			Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("Bad_Bucket")}}}},
		{"2-character bucket", "bucketName", &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &chattypes.DestinationConfigurationMemberS3{
			Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("ab")}}}},
		{"delivery stream with a space", "deliveryStreamName", &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &chattypes.DestinationConfigurationMemberFirehose{
			Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("bad stream")}}}},
		{"log group with !", "logGroupName", &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &chattypes.DestinationConfigurationMemberCloudWatchLogs{
			Value: chattypes.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("bad group!")}}}},
		{"bad name", "name", &ivschat.CreateLoggingConfigurationInput{Name: aws.String("bad name!"), DestinationConfiguration: &chattypes.DestinationConfigurationMemberS3{
			Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("good-bucket")}}}},
		{"aws: tag", "tags", &ivschat.CreateLoggingConfigurationInput{Tags: map[string]string{"aws:x": "y"}, DestinationConfiguration: &chattypes.DestinationConfigurationMemberS3{
			Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("good-bucket")}}}},
	}
	for _, b := range bad {
		_, err := c.CreateLoggingConfiguration(cx, b.in)
		wantChatValidation(t, err, "CreateLoggingConfiguration "+b.what, b.field)
	}

	got, err := c.GetLoggingConfiguration(cx, &ivschat.GetLoggingConfigurationInput{Identifier: aws.String(cw)})
	must(t, err, "GetLoggingConfiguration")
	eq(t, "get arn", aws.ToString(got.Arn), cw)
	eq(t, "get name", aws.ToString(got.Name), "cw")
	eq(t, "get state", got.State, chattypes.LoggingConfigurationStateActive)
	deepEq(t, "get tags", got.Tags, map[string]string{"kind": "cloudwatch"})
	if d, ok := got.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberCloudWatchLogs); !ok || aws.ToString(d.Value.LogGroupName) != "/aws/ivschat/e2e" {
		t.Errorf("get destination = %#v", got.DestinationConfiguration)
	}
	_, err = c.GetLoggingConfiguration(cx, &ivschat.GetLoggingConfigurationInput{Identifier: aws.String(unknownLoggingARN)})
	wantChatNotFound(t, err, "GetLoggingConfiguration unknown", "zzzzzzzzzzzz", "LOGGING_CONFIGURATION")
	_, err = c.GetLoggingConfiguration(cx, &ivschat.GetLoggingConfigurationInput{Identifier: aws.String(otherAccount(cw))})
	wantChatNotFound(t, err, "GetLoggingConfiguration of another account", m[1], "LOGGING_CONFIGURATION")
	_, err = c.GetLoggingConfiguration(cx, &ivschat.GetLoggingConfigurationInput{Identifier: aws.String(unknownRoomARN)})
	wantChatValidation(t, err, "GetLoggingConfiguration with a room ARN", "identifier")

	// UpdateLoggingConfiguration: the name alone, then the destination.
	up, err := c.UpdateLoggingConfiguration(cx, &ivschat.UpdateLoggingConfigurationInput{Identifier: aws.String(cw), Name: aws.String("cw-renamed")})
	must(t, err, "UpdateLoggingConfiguration name")
	eq(t, "updated name", aws.ToString(up.Name), "cw-renamed")
	eq(t, "updated state", up.State, chattypes.UpdateLoggingConfigurationStateActive)
	if _, ok := up.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberCloudWatchLogs); !ok {
		t.Errorf("destination after a rename = %#v, want cloudWatchLogs kept", up.DestinationConfiguration)
	}
	deepEq(t, "tags kept", up.Tags, map[string]string{"kind": "cloudwatch"})
	up, err = c.UpdateLoggingConfiguration(cx, &ivschat.UpdateLoggingConfigurationInput{Identifier: aws.String(cw),
		DestinationConfiguration: &chattypes.DestinationConfigurationMemberS3{Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("moved-bucket")}}})
	must(t, err, "UpdateLoggingConfiguration destination")
	if d, ok := up.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberS3); !ok || aws.ToString(d.Value.BucketName) != "moved-bucket" {
		t.Errorf("updated destination = %#v", up.DestinationConfiguration)
	}
	eq(t, "name kept", aws.ToString(up.Name), "cw-renamed")
	_, err = c.UpdateLoggingConfiguration(cx, &ivschat.UpdateLoggingConfigurationInput{Identifier: aws.String(cw),
		DestinationConfiguration: &chattypes.DestinationConfigurationMemberS3{Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("Bad_Bucket")}}})
	wantChatValidation(t, err, "UpdateLoggingConfiguration bad bucket", "bucketName")
	_, err = c.UpdateLoggingConfiguration(cx, &ivschat.UpdateLoggingConfigurationInput{Identifier: aws.String(unknownLoggingARN), Name: aws.String("x")})
	wantChatNotFound(t, err, "UpdateLoggingConfiguration unknown", "zzzzzzzzzzzz", "LOGGING_CONFIGURATION")

	// ListLoggingConfigurations pages.
	var listed []string
	p := ivschat.NewListLoggingConfigurationsPaginator(c, &ivschat.ListLoggingConfigurationsInput{MaxResults: aws.Int32(1)})
	for pages := 0; p.HasMorePages(); pages++ {
		if pages > 50 {
			t.Fatal("ListLoggingConfigurations: more than 50 pages")
		}
		out, err := p.NextPage(cx)
		must(t, err, "ListLoggingConfigurations")
		if len(out.LoggingConfigurations) > 1 {
			t.Errorf("ListLoggingConfigurations page of %d, maxResults 1", len(out.LoggingConfigurations))
		}
		for _, s := range out.LoggingConfigurations {
			listed = append(listed, aws.ToString(s.Arn))
			if aws.ToString(s.Arn) == cw {
				eq(t, "summary name", aws.ToString(s.Name), "cw-renamed")
				eq(t, "summary state", s.State, chattypes.LoggingConfigurationStateActive)
				deepEq(t, "summary tags", s.Tags, map[string]string{"kind": "cloudwatch"})
				if _, ok := s.DestinationConfiguration.(*chattypes.DestinationConfigurationMemberS3); !ok {
					t.Errorf("summary destination = %#v", s.DestinationConfiguration)
				}
			}
		}
	}
	for _, arn := range []string{cw, fh, s3} {
		if !slices.Contains(listed, arn) {
			t.Errorf("ListLoggingConfigurations misses %s (listed %v)", arn, listed)
		}
	}
	_, err = c.ListLoggingConfigurations(cx, &ivschat.ListLoggingConfigurationsInput{MaxResults: aws.Int32(51)})
	wantChatValidation(t, err, "ListLoggingConfigurations maxResults 51", "maxResults")

	// A configuration a room uses cannot be deleted: ConflictException.
	room := createChatRoom(t, c, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{fh, s3, fh}})
	if !sameSet(room.LoggingConfigurationIdentifiers, []string{fh, s3}) {
		t.Errorf("room loggingConfigurationIdentifiers = %v, want [%s %s]", room.LoggingConfigurationIdentifiers, fh, s3)
	}
	_, err = c.DeleteLoggingConfiguration(cx, &ivschat.DeleteLoggingConfigurationInput{Identifier: aws.String(fh)})
	if ce := wantErr[*chattypes.ConflictException](t, err, stConflict, "DeleteLoggingConfiguration in use"); ce != nil {
		switch {
		case aws.ToString(ce.ResourceId) == "":
			t.Logf("NOTE ConflictException without resourceId")
		case aws.ToString(ce.ResourceId) != aws.ToString(room.Id):
			t.Errorf("ConflictException resourceId %q, want the room %q", aws.ToString(ce.ResourceId), aws.ToString(room.Id))
		}
		if ce.ResourceType == "" {
			t.Logf("NOTE ConflictException without resourceType")
		} else {
			eq(t, "ConflictException resourceType", ce.ResourceType, chattypes.ResourceTypeRoom)
		}
	}
	_, err = c.CreateRoom(cx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{cw, fh, s3, unknownLoggingARN}})
	wantChatValidation(t, err, "CreateRoom with 4 logging configurations", "loggingConfigurationIdentifiers")
	detached, err := c.UpdateRoom(cx, &ivschat.UpdateRoomInput{Identifier: room.Arn, LoggingConfigurationIdentifiers: []string{}})
	must(t, err, "UpdateRoom detach logging")
	eq(t, "loggingConfigurationIdentifiers after detaching", len(detached.LoggingConfigurationIdentifiers), 0)

	for _, arn := range []string{cw, fh, s3} {
		_, err = c.DeleteLoggingConfiguration(cx, &ivschat.DeleteLoggingConfigurationInput{Identifier: aws.String(arn)})
		must(t, err, "DeleteLoggingConfiguration "+arn)
	}
	_, err = c.GetLoggingConfiguration(cx, &ivschat.GetLoggingConfigurationInput{Identifier: aws.String(fh)})
	wantChatNotFound(t, err, "GetLoggingConfiguration after delete", aws.ToString(fhOut.Id), "LOGGING_CONFIGURATION")
	_, err = c.DeleteLoggingConfiguration(cx, &ivschat.DeleteLoggingConfigurationInput{Identifier: aws.String(fh)})
	wantChatNotFound(t, err, "DeleteLoggingConfiguration twice", aws.ToString(fhOut.Id), "LOGGING_CONFIGURATION")
}

func testChatTokens(t *testing.T, srv *server, c *ivschat.Client) {
	cx := ctx(t)
	room := createChatRoom(t, c, &ivschat.CreateRoomInput{Name: aws.String("tokens")})
	out, err := c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{
		RoomIdentifier: room.Arn, UserId: aws.String("alice"), Capabilities: allCaps,
		Attributes: map[string]string{"displayName": "Alice"}, SessionDurationInMinutes: aws.Int32(180),
	})
	must(t, err, "CreateChatToken")
	if aws.ToString(out.Token) == "" {
		t.Fatal("CreateChatToken: empty token")
	}
	// "The token is valid for one minute"; the session for the duration given.
	nearNow(t, "tokenExpirationTime", out.TokenExpirationTime, time.Minute)
	nearNow(t, "sessionExpirationTime (180 min)", out.SessionExpirationTime, 180*time.Minute)
	def, err := c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("bob")})
	must(t, err, "CreateChatToken with defaults")
	nearNow(t, "default sessionExpirationTime (60 min)", def.SessionExpirationTime, 60*time.Minute)
	if aws.ToString(def.Token) == aws.ToString(out.Token) {
		t.Error("two CreateChatToken calls returned the same token")
	}
	one, err := c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("carol"), SessionDurationInMinutes: aws.Int32(1)})
	must(t, err, "CreateChatToken sessionDurationInMinutes 1")
	nearNow(t, "sessionExpirationTime (1 min)", one.SessionExpirationTime, time.Minute)
	full, err := c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String(strings.Repeat("u", 128)),
		Attributes: map[string]string{"a": strings.Repeat("x", 1023)}})
	must(t, err, "CreateChatToken with a 128-character userId and 1 KB of attributes")

	for _, v := range []int32{0, 181} {
		_, err = c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"), SessionDurationInMinutes: aws.Int32(v)})
		wantChatValidation(t, err, fmt.Sprintf("CreateChatToken sessionDurationInMinutes %d", v), "sessionDurationInMinutes")
	}
	_, err = c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"), Capabilities: []chattypes.ChatTokenCapability{"FLY"}})
	wantChatValidation(t, err, "CreateChatToken capability FLY", "capabilities")
	_, err = c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"), Attributes: map[string]string{"a": strings.Repeat("x", 1024)}})
	wantChatValidation(t, err, "CreateChatToken attributes over 1 KB", "attributes")
	for _, user := range []string{"", strings.Repeat("u", 129)} {
		_, err = c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String(user)})
		wantChatValidation(t, err, fmt.Sprintf("CreateChatToken userId of %d characters", len(user)), "userId")
	}
	_, err = c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(unknownRoomARN), UserId: aws.String("u")})
	wantChatNotFound(t, err, "CreateChatToken for an unknown room", "zzzzzzzzzzzz", chattypes.ResourceTypeRoom)
	_, err = c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(otherAccount(aws.ToString(room.Arn))), UserId: aws.String("u")})
	wantChatNotFound(t, err, "CreateChatToken for another account's room", aws.ToString(room.Id), chattypes.ResourceTypeRoom)
	_, err = c.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Id, UserId: aws.String("u")})
	wantChatValidation(t, err, "CreateChatToken with a room id instead of its ARN", "roomIdentifier")

	// A token opens the WebSocket once.
	alice := dialChat(t, chatWSURL(srv), aws.ToString(out.Token), "alice")
	f := alice.ready(t)
	eq(t, "sender userId", f.Sender.UserId, "alice")
	deepEq(t, "sender attributes", f.Sender.Attributes, map[string]string{"displayName": "Alice"})
	_, resp, err := dialChatWS(chatWSURL(srv), aws.ToString(out.Token))
	if err == nil {
		t.Error("a used token opened a second WebSocket")
	} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a used token: %v (response %v), want HTTP 401", err, resp)
	}
	dialChat(t, chatWSURL(srv), aws.ToString(full.Token), "long-user")
	// A token of a room deleted since is refused.
	orphan := mintChatToken(t, c, aws.ToString(room.Arn), "dave", nil)
	_, err = c.DeleteRoom(cx, &ivschat.DeleteRoomInput{Identifier: room.Arn})
	must(t, err, "DeleteRoom")
	_, resp, err = dialChatWS(chatWSURL(srv), orphan)
	if err == nil {
		t.Error("a token of a deleted room opened a WebSocket")
	} else if resp == nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound) {
		t.Errorf("a token of a deleted room: %v (response %v), want HTTP 401 or 404", err, resp)
	}
	if code := alice.waitClosed(t, "DeleteRoom"); code != websocket.StatusNormalClosure {
		t.Errorf("DeleteRoom closed alice with %d, want 1000", code)
	}
}

func testChatModeration(t *testing.T, srv *server, c *ivschat.Client) {
	cx := ctx(t)
	room := createChatRoom(t, c, &ivschat.CreateRoomInput{Name: aws.String("moderated")})
	arn := aws.ToString(room.Arn)
	alice := dialChat(t, chatWSURL(srv), mintChatToken(t, c, arn, "alice", nil, chattypes.ChatTokenCapabilitySendMessage), "alice")
	bob := dialChat(t, chatWSURL(srv), mintChatToken(t, c, arn, "bob", nil, chattypes.ChatTokenCapabilitySendMessage), "bob")
	bob2 := dialChat(t, chatWSURL(srv), mintChatToken(t, c, arn, "bob", nil, chattypes.ChatTokenCapabilitySendMessage), "bob-second-tab")
	alice.ready(t)
	bob.ready(t)
	bob2.ready(t)

	// SendEvent reaches every connection as an EVENT with the returned id.
	ev, err := c.SendEvent(cx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:poll"), Attributes: map[string]string{"question": "tea?"}})
	must(t, err, "SendEvent")
	if !chatIDRe.MatchString(aws.ToString(ev.Id)) {
		t.Errorf("SendEvent id %q", aws.ToString(ev.Id))
	}
	for _, cc := range []*chatConn{alice, bob} {
		f := cc.waitFor(t, "the SendEvent event", frameWithID(aws.ToString(ev.Id)))
		eq(t, cc.name+" event Type", f.Type, "EVENT")
		eq(t, cc.name+" EventName", f.EventName, "app:poll")
		deepEq(t, cc.name+" event Attributes", f.Attributes, map[string]string{"question": "tea?"})
		checkSendTime(t, cc.name+" event", f.SendTime)
	}
	bare, err := c.SendEvent(cx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:ping")})
	must(t, err, "SendEvent without attributes")
	alice.waitFor(t, "the SendEvent without attributes", frameWithID(aws.ToString(bare.Id)))
	for _, name := range []string{"", strings.Repeat("e", 101)} {
		_, err = c.SendEvent(cx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String(name)})
		wantChatValidation(t, err, fmt.Sprintf("SendEvent eventName of %d characters", len(name)), "eventName")
	}
	_, err = c.SendEvent(cx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("big"), Attributes: map[string]string{"a": strings.Repeat("x", 1024)}})
	wantChatValidation(t, err, "SendEvent attributes over 1 KB", "attributes")
	_, err = c.SendEvent(cx, &ivschat.SendEventInput{RoomIdentifier: aws.String(unknownRoomARN), EventName: aws.String("x")})
	wantChatNotFound(t, err, "SendEvent to an unknown room", "zzzzzzzzzzzz", chattypes.ResourceTypeRoom)

	// DeleteMessage: every connection gets aws:DELETE_MESSAGE.
	alice.sendMessage(t, "to-delete", "a message to delete", map[string]string{"k": "v"})
	msg := bob.waitFor(t, "alice's message", messageOfRequest("to-delete"))
	del, err := c.DeleteMessage(cx, &ivschat.DeleteMessageInput{RoomIdentifier: room.Arn, Id: aws.String(msg.Id), Reason: aws.String("spam")})
	must(t, err, "DeleteMessage")
	if !chatIDRe.MatchString(aws.ToString(del.Id)) || aws.ToString(del.Id) == msg.Id {
		t.Errorf("DeleteMessage id %q (message %s): want the id of the delete event", aws.ToString(del.Id), msg.Id)
	}
	for _, cc := range []*chatConn{alice, bob} {
		f := cc.waitFor(t, "aws:DELETE_MESSAGE", eventNamed("aws:DELETE_MESSAGE", "MessageID", msg.Id))
		eq(t, cc.name+" delete event id", f.Id, aws.ToString(del.Id))
		deepEq(t, cc.name+" delete event attributes", f.Attributes, map[string]string{"MessageID": msg.Id, "Reason": "spam"})
		checkSendTime(t, cc.name+" delete event", f.SendTime)
	}
	for _, bad := range []struct{ what, id, reason, field string }{
		{"id of 5 characters", "short", "", "id"},
		{"id with a dash", "abc-def-ghij", "", "id"},
		{"reason of 257 characters", msg.Id, strings.Repeat("r", 257), "reason"},
	} {
		in := &ivschat.DeleteMessageInput{RoomIdentifier: room.Arn, Id: aws.String(bad.id)}
		if bad.reason != "" {
			in.Reason = aws.String(bad.reason)
		}
		_, err = c.DeleteMessage(cx, in)
		wantChatValidation(t, err, "DeleteMessage "+bad.what, bad.field)
	}
	_, err = c.DeleteMessage(cx, &ivschat.DeleteMessageInput{RoomIdentifier: aws.String(unknownRoomARN), Id: aws.String(msg.Id)})
	wantChatNotFound(t, err, "DeleteMessage in an unknown room", "zzzzzzzzzzzz", chattypes.ResourceTypeRoom)

	// DisconnectUser: every connection of the user hears it and is closed
	// normally; the others stay.
	_, err = c.DisconnectUser(cx, &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("bob"), Reason: aws.String("rude")})
	must(t, err, "DisconnectUser")
	for _, cc := range []*chatConn{bob, bob2} {
		f := cc.waitFor(t, "aws:DISCONNECT_USER about itself", eventNamed("aws:DISCONNECT_USER", "UserId", "bob"))
		deepEq(t, cc.name+" disconnect event attributes", f.Attributes, map[string]string{"UserId": "bob", "Reason": "rude"})
		if code := cc.waitClosed(t, "DisconnectUser"); code != websocket.StatusNormalClosure {
			t.Errorf("%s: DisconnectUser closed with %d, want 1000", cc.name, code)
		}
	}
	alice.waitFor(t, "aws:DISCONNECT_USER about bob", eventNamed("aws:DISCONNECT_USER", "UserId", "bob"))
	alice.ready(t) // still connected
	if !alice.open() {
		t.Error("DisconnectUser of bob closed alice")
	}
	_, err = c.DisconnectUser(cx, &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("nobody-here")})
	must(t, err, "DisconnectUser of a user who is not connected")
	for _, user := range []string{"", strings.Repeat("u", 129)} {
		_, err = c.DisconnectUser(cx, &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String(user)})
		wantChatValidation(t, err, fmt.Sprintf("DisconnectUser userId of %d characters", len(user)), "userId")
	}
	_, err = c.DisconnectUser(cx, &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("bob"), Reason: aws.String(strings.Repeat("r", 257))})
	wantChatValidation(t, err, "DisconnectUser reason of 257 characters", "reason")
	_, err = c.DisconnectUser(cx, &ivschat.DisconnectUserInput{RoomIdentifier: aws.String(unknownRoomARN), UserId: aws.String("bob")})
	wantChatNotFound(t, err, "DisconnectUser in an unknown room", "zzzzzzzzzzzz", chattypes.ResourceTypeRoom)
}

func testChatTags(t *testing.T, c *ivschat.Client) {
	cx := ctx(t)
	room := createChatRoom(t, c, &ivschat.CreateRoomInput{Tags: map[string]string{"a": "1"}})
	lc := createChatLogging(t, c, "tagged", &chattypes.DestinationConfigurationMemberS3{Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("tagged-bucket")}})
	listTags := func(arn *string) map[string]string {
		t.Helper()
		out, err := c.ListTagsForResource(cx, &ivschat.ListTagsForResourceInput{ResourceArn: arn})
		must(t, err, "ListTagsForResource "+aws.ToString(arn))
		return out.Tags
	}
	deepEq(t, "room tags from CreateRoom", listTags(room.Arn), map[string]string{"a": "1"})
	_, err := c.TagResource(cx, &ivschat.TagResourceInput{ResourceArn: room.Arn, Tags: map[string]string{"a": "10", "b": "2", "empty": ""}})
	must(t, err, "TagResource room")
	deepEq(t, "room tags after TagResource", listTags(room.Arn), map[string]string{"a": "10", "b": "2", "empty": ""})
	got, err := c.GetRoom(cx, &ivschat.GetRoomInput{Identifier: room.Arn})
	must(t, err, "GetRoom")
	deepEq(t, "GetRoom tags", got.Tags, map[string]string{"a": "10", "b": "2", "empty": ""})
	_, err = c.UntagResource(cx, &ivschat.UntagResourceInput{ResourceArn: room.Arn, TagKeys: []string{"a", "empty", "never-set"}})
	must(t, err, "UntagResource room")
	deepEq(t, "room tags after UntagResource", listTags(room.Arn), map[string]string{"b": "2"})

	deepEq(t, "untagged logging configuration tags", listTags(lc.Arn), map[string]string{})
	_, err = c.TagResource(cx, &ivschat.TagResourceInput{ResourceArn: lc.Arn, Tags: map[string]string{"cost-center": "42"}})
	must(t, err, "TagResource logging configuration")
	deepEq(t, "logging configuration tags", listTags(lc.Arn), map[string]string{"cost-center": "42"})
	gl, err := c.GetLoggingConfiguration(cx, &ivschat.GetLoggingConfigurationInput{Identifier: lc.Arn})
	must(t, err, "GetLoggingConfiguration")
	deepEq(t, "GetLoggingConfiguration tags", gl.Tags, map[string]string{"cost-center": "42"})
	_, err = c.UntagResource(cx, &ivschat.UntagResourceInput{ResourceArn: lc.Arn, TagKeys: []string{"cost-center"}})
	must(t, err, "UntagResource logging configuration")
	deepEq(t, "logging configuration tags after UntagResource", listTags(lc.Arn), map[string]string{})

	_, err = c.TagResource(cx, &ivschat.TagResourceInput{ResourceArn: room.Arn, Tags: map[string]string{"aws:owner": "me"}})
	wantChatValidation(t, err, "TagResource aws: key", "tags")
	many := map[string]string{}
	for i := 0; i < 51; i++ {
		many["k"+strconv.Itoa(i)] = "v"
	}
	_, err = c.TagResource(cx, &ivschat.TagResourceInput{ResourceArn: room.Arn, Tags: many})
	wantChatValidation(t, err, "TagResource 51 tags", "tags")
	for _, unknown := range []string{unknownRoomARN, unknownLoggingARN, otherAccount(aws.ToString(room.Arn))} {
		_, err = c.TagResource(cx, &ivschat.TagResourceInput{ResourceArn: aws.String(unknown), Tags: map[string]string{"x": "y"}})
		wantChatNotFound(t, err, "TagResource "+unknown, "", "")
		_, err = c.UntagResource(cx, &ivschat.UntagResourceInput{ResourceArn: aws.String(unknown), TagKeys: []string{"x"}})
		wantChatNotFound(t, err, "UntagResource "+unknown, "", "")
		_, err = c.ListTagsForResource(cx, &ivschat.ListTagsForResourceInput{ResourceArn: aws.String(unknown)})
		wantChatNotFound(t, err, "ListTagsForResource "+unknown, "", "")
	}
	_, err = c.ListTagsForResource(cx, &ivschat.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ivs:us-west-2:123456789012:channel/abcdABCD1234")})
	wantChatValidation(t, err, "ListTagsForResource of an IVS channel ARN", "resourceArn")
}

func testChatCredentials(t *testing.T, srv *server) {
	cx := ctx(t)
	cases := []struct {
		what, id, secret, code string
	}{
		{"wrong secret", testAccessKeyID, "not-the-secret-key", "InvalidSignatureException"},
		{"unknown access key id", "AKIAUNKNOWNKEY000000", testSecretAccessKey, "UnrecognizedClientException"},
	}
	for _, cs := range cases {
		bad := ivschatClientWith(srv, cs.id, cs.secret)
		_, err := bad.ListRooms(cx, &ivschat.ListRoomsInput{})
		var ae smithy.APIError
		if errors.As(err, &ae) {
			t.Logf("%s: the SDK surfaces %T, code %s, fault %v: %s", cs.what, ae, ae.ErrorCode(), ae.ErrorFault(), ae.ErrorMessage())
		}
		wantCode(t, err, stAccessDenied, cs.code, "ListRooms with "+cs.what)
		_, err = bad.CreateChatToken(cx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(unknownRoomARN), UserId: aws.String("u")})
		wantCode(t, err, stAccessDenied, cs.code, "CreateChatToken with "+cs.what)
	}
	anon := ivschat.New(ivschat.Options{BaseEndpoint: aws.String(srv.Endpoint), Region: testRegion, Credentials: aws.AnonymousCredentials{},
		Retryer: awstest.Retryer(), HTTPClient: srv.client})
	_, err := anon.ListRooms(cx, &ivschat.ListRoomsInput{})
	wantCode(t, err, stAccessDenied, "MissingAuthenticationTokenException", "ListRooms unsigned")

	// A chat operation signed for another service ("ivs") is refused.
	body := []byte(`{"name":"wrong-service"}`)
	req, err := http.NewRequest(http.MethodPost, srv.Endpoint+"/CreateRoom", bytes.NewReader(body))
	must(t, err, "new request")
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	must(t, v4.NewSigner().SignHTTP(cx, aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretAccessKey},
		req, hex.EncodeToString(sum[:]), "ivs", testRegion, time.Now()), "sign")
	resp, err := srv.client.Do(req)
	must(t, err, "POST /CreateRoom signed for ivs")
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("CreateRoom signed for ivs: HTTP %d %s %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), respBody)
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("CreateRoom signed for the ivs service: HTTP %d, want a 4xx refusal: %s", resp.StatusCode, respBody)
	}
}

// testChatQuotas runs a server with small chat quotas (quotas: in the
// config file).
func testChatQuotas(t *testing.T) {
	srv := startServer(t, serverOpts{Config: "quotas:\n  chat-rooms: 2\n  chat-logging-configurations: 1\n  chat-concurrent-connections: 1\n"})
	c := ivschatClient(t, srv)
	cx := ctx(t)
	first := createChatRoom(t, c, nil)
	createChatRoom(t, c, nil)
	_, err := c.CreateRoom(cx, &ivschat.CreateRoomInput{})
	if qe := wantErr[*chattypes.ServiceQuotaExceededException](t, err, stQuota, "third room over a chat-rooms quota of 2"); qe != nil {
		eq(t, "room quota limit", qe.Limit, 2)
		if qe.ResourceType == "" {
			t.Logf("NOTE ServiceQuotaExceededException without resourceType")
		} else {
			eq(t, "room quota resourceType", qe.ResourceType, chattypes.ResourceTypeRoom)
		}
	}
	_, err = c.DeleteRoom(cx, &ivschat.DeleteRoomInput{Identifier: first.Arn})
	must(t, err, "DeleteRoom")
	room := createChatRoom(t, c, nil) // the slot is free again

	dest := &chattypes.DestinationConfigurationMemberS3{Value: chattypes.S3DestinationConfiguration{BucketName: aws.String("quota-bucket")}}
	createChatLogging(t, c, "only", dest)
	_, err = c.CreateLoggingConfiguration(cx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: dest})
	if qe := wantErr[*chattypes.ServiceQuotaExceededException](t, err, stQuota, "second logging configuration over a quota of 1"); qe != nil {
		eq(t, "logging quota limit", qe.Limit, 1)
		if qe.ResourceType != "" {
			eq(t, "logging quota resourceType", qe.ResourceType, "LOGGING_CONFIGURATION")
		}
	}

	// chat-concurrent-connections: 1 open connection.
	ws := dialChat(t, chatWSURL(srv), mintChatToken(t, c, aws.ToString(room.Arn), "one", nil), "one")
	_, resp, err := dialChatWS(chatWSURL(srv), mintChatToken(t, c, aws.ToString(room.Arn), "two", nil))
	if err == nil {
		t.Error("a second chat connection over a chat-concurrent-connections quota of 1 was accepted")
	} else if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second connection over the quota: %v (response %v), want HTTP 429", err, resp)
	}
	_ = ws.ws.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(chatWait)
	for {
		third, _, err := dialChatWS(chatWSURL(srv), mintChatToken(t, c, aws.ToString(room.Arn), "three", nil))
		if err == nil {
			_ = third.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no chat connection accepted after the only one closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chatAPIProxy is the "application backend" of the Node tests: it calls
// the real IVS Chat API through the Go SDK (CreateChatToken, SendEvent,
// DeleteMessage, DisconnectUser, CreateRoom, DeleteRoom).
func chatAPIProxy(t *testing.T, c *ivschat.Client) *httptest.Server {
	reply := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
	iso := func(ts *time.Time) string {
		if ts == nil {
			return ""
		}
		return ts.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	type spec struct {
		Room                     string            `json:"room"`
		UserID                   string            `json:"userId"`
		Capabilities             []string          `json:"capabilities"`
		Attributes               map[string]string `json:"attributes"`
		SessionDurationInMinutes *int32            `json:"sessionDurationInMinutes"`
		SessionSeconds           float64           `json:"sessionSeconds"`
		MaximumMessageLength     *int32            `json:"maximumMessageLength"`
		EventName                string            `json:"eventName"`
		ID                       string            `json:"id"`
		Reason                   *string           `json:"reason"`
	}
	handle := func(pattern string, fn func(r *http.Request, s spec) (any, error)) (string, http.HandlerFunc) {
		return pattern, func(w http.ResponseWriter, r *http.Request) {
			var s spec
			if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			v, err := fn(r, s)
			reply(w, v, err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc(handle("POST /room", func(r *http.Request, s spec) (any, error) {
		out, err := c.CreateRoom(r.Context(), &ivschat.CreateRoomInput{MaximumMessageLength: s.MaximumMessageLength})
		if err != nil {
			return nil, err
		}
		return map[string]string{"arn": aws.ToString(out.Arn)}, nil
	}))
	mux.HandleFunc(handle("POST /token", func(r *http.Request, s spec) (any, error) {
		in := &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(s.Room), UserId: aws.String(s.UserID),
			Attributes: s.Attributes, SessionDurationInMinutes: s.SessionDurationInMinutes}
		if s.SessionSeconds > 0 {
			in.SessionDurationInMinutes = aws.Int32(int32(math.Ceil(s.SessionSeconds / 60)))
		}
		for _, cp := range s.Capabilities {
			in.Capabilities = append(in.Capabilities, chattypes.ChatTokenCapability(cp))
		}
		out, err := c.CreateChatToken(r.Context(), in)
		if err != nil {
			return nil, err
		}
		return map[string]string{"token": aws.ToString(out.Token),
			"sessionExpirationTime": iso(out.SessionExpirationTime), "tokenExpirationTime": iso(out.TokenExpirationTime)}, nil
	}))
	mux.HandleFunc(handle("POST /event", func(r *http.Request, s spec) (any, error) {
		out, err := c.SendEvent(r.Context(), &ivschat.SendEventInput{RoomIdentifier: aws.String(s.Room), EventName: aws.String(s.EventName), Attributes: s.Attributes})
		if err != nil {
			return nil, err
		}
		return map[string]string{"id": aws.ToString(out.Id)}, nil
	}))
	mux.HandleFunc(handle("POST /delete-message", func(r *http.Request, s spec) (any, error) {
		out, err := c.DeleteMessage(r.Context(), &ivschat.DeleteMessageInput{RoomIdentifier: aws.String(s.Room), Id: aws.String(s.ID), Reason: s.Reason})
		if err != nil {
			return nil, err
		}
		return map[string]string{"id": aws.ToString(out.Id)}, nil
	}))
	mux.HandleFunc(handle("POST /disconnect-user", func(r *http.Request, s spec) (any, error) {
		_, err := c.DisconnectUser(r.Context(), &ivschat.DisconnectUserInput{RoomIdentifier: aws.String(s.Room), UserId: aws.String(s.UserID), Reason: s.Reason})
		return map[string]string{}, err
	}))
	mux.HandleFunc(handle("POST /delete-room", func(r *http.Request, s spec) (any, error) {
		_, err := c.DeleteRoom(r.Context(), &ivschat.DeleteRoomInput{Identifier: aws.String(s.Room)})
		return map[string]string{}, err
	}))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

// chatNPMCI installs test/chatsdk's locked packages when they are missing
// or older than the lock file.
func chatNPMCI(t *testing.T, dir string) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	must(t, err, "test/chatsdk/package-lock.json")
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm not found (set OPENIVS_NO_NODE=1 to skip): %v", err)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}

var nodeCountRe = regexp.MustCompile(`(?m)^\S*\s*(tests|pass|fail) (\d+)$`)

// TestChatOfficialSDKAgainstServer runs test/chatsdk/e2e.test.mjs: the
// official amazon-ivs-chat-messaging SDK connecting to `openivs serve`
// with tokens from the real CreateChatToken (through a small backend that
// calls the API with the Go SDK), sending, receiving, deleting and
// disconnecting with the SDK's requests, getting the SDK's errors for a
// missing capability, a used token and the room's message length, and
// hearing the API's SendEvent, DeleteMessage, DisconnectUser and
// DeleteRoom. OPENIVS_NO_NODE=1 skips it (loudly).
func TestChatOfficialSDKAgainstServer(t *testing.T) {
	if os.Getenv("OPENIVS_NO_NODE") == "1" {
		t.Skip("\n!!!!!!!! SKIPPED: OPENIVS_NO_NODE=1 — the official chat SDK is NOT being tested against openivs serve\n")
	}
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (set OPENIVS_NO_NODE=1 to skip): %v", err)
	}
	root, err := repoRoot()
	must(t, err, "repository root")
	dir := filepath.Join(root, "test", "chatsdk")
	chatNPMCI(t, dir)

	srv := startServer(t, serverOpts{})
	backend := chatAPIProxy(t, ivschatClient(t, srv))

	runCtx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// --test-force-exit: the SDK may leave timers behind; nothing of ours is.
	cmd := exec.CommandContext(runCtx, node, "--test", "--test-force-exit", "--test-reporter=spec", "e2e.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHAT_URL="+chatWSURL(srv), "API_URL="+backend.URL, "TOKEN_URL="+backend.URL+"/token", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	t.Logf("node --test e2e.test.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the official SDK's tests against openivs serve failed: %v", err)
	}
	counts := map[string]int{}
	for _, m := range nodeCountRe.FindAllStringSubmatch(string(out), -1) {
		counts[m[1]], _ = strconv.Atoi(m[2])
	}
	if counts["tests"] == 0 || counts["pass"] != counts["tests"] || counts["fail"] != 0 {
		t.Fatalf("node reported tests %d, pass %d, fail %d", counts["tests"], counts["pass"], counts["fail"])
	}
}

// reviewLambda stands in for a message review Lambda: it records every
// invocation and answers by the content's prefix.
type reviewLambda struct {
	*httptest.Server
	mu    sync.Mutex
	calls []reviewCall
}

type reviewCall struct {
	raw    []byte
	fields map[string]any
	req    struct {
		Content    string
		MessageId  string
		RoomArn    string
		Attributes map[string]string
		Sender     struct {
			Attributes map[string]string
			UserId     string
			Ip         string
		}
	}
	// waited is how long a "slow:" invocation waited for openivs to give up.
	waited time.Duration
}

func newReviewLambda(t *testing.T) *reviewLambda {
	l := &reviewLambda{}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var call reviewCall
		call.raw = raw
		if json.Unmarshal(raw, &call.fields) != nil || json.Unmarshal(raw, &call.req) != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		idx := l.record(call)
		answer := map[string]any{"ReviewResult": "ALLOW"}
		content := call.req.Content
		switch {
		case strings.HasPrefix(content, "modify:"):
			answer = map[string]any{"ReviewResult": "ALLOW", "Content": "modified by review", "Attributes": map[string]string{"reviewed": "yes"}}
		case strings.HasPrefix(content, "deny:"):
			answer = map[string]any{"ReviewResult": "DENY"}
		case strings.HasPrefix(content, "invalid:"):
			answer = map[string]any{"ReviewResult": "MAYBE"}
		case strings.HasPrefix(content, "slow:"):
			// Answer only after openivs gave up on us (its request is
			// cancelled), and then the opposite of any fallback ALLOW: a
			// late answer must not count. The cap keeps a server that
			// never gives up from hanging the test (the DENY then fails it).
			start := time.Now()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			l.mu.Lock()
			l.calls[idx].waited = time.Since(start)
			l.mu.Unlock()
			answer = map[string]any{"ReviewResult": "DENY", "Content": "late answer"}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *reviewLambda) record(c reviewCall) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
	return len(l.calls) - 1
}

// waitCall polls for the invocation reviewing content.
func (l *reviewLambda) waitCall(t *testing.T, content string, done func(reviewCall) bool) reviewCall {
	t.Helper()
	deadline := time.Now().Add(chatWait)
	for {
		l.mu.Lock()
		for _, c := range l.calls {
			if c.req.Content == content && (done == nil || done(c)) {
				l.mu.Unlock()
				return c
			}
		}
		n := len(l.calls)
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the review handler was not invoked for %q (%d invocations)", content, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameKeys fails unless the JSON object m has exactly the keys want.
func sameKeys(t *testing.T, what string, m any, want ...string) {
	t.Helper()
	obj, ok := m.(map[string]any)
	if !ok {
		t.Errorf("%s = %#v, want an object", what, m)
		return
	}
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	if !sameSet(got, want) {
		t.Errorf("%s has keys %v, want exactly %v", what, got, want)
	}
}

// TestChatReviewHandler: rooms whose messageReviewHandler is a Lambda ARN
// mapped with --chat-review-handler to an HTTP stand-in. ALLOW delivers,
// a modified answer replaces content and attributes, DENY refuses the
// sender with ERROR 406 and delivers nothing, a handler past IVS's 200 ms
// (or an invalid answer, or an ARN mapped to nothing) lets fallbackResult
// decide, and the handler receives IVS's request shape.
func TestChatReviewHandler(t *testing.T) {
	t.Parallel()
	lambda := newReviewLambda(t)
	srv := startServer(t, serverOpts{Args: []string{"--chat-review-handler", reviewLambdaARN + "=" + lambda.URL}})
	c := ivschatClient(t, srv)
	url := chatWSURL(srv)
	reviewed := func(fallback chattypes.FallbackResult, uri string) string {
		return aws.ToString(createChatRoom(t, c, &ivschat.CreateRoomInput{
			MaximumMessageRatePerSecond: aws.Int32(100),
			MessageReviewHandler:        &chattypes.MessageReviewHandler{Uri: aws.String(uri), FallbackResult: fallback},
		}).Arn)
	}
	allowRoom := reviewed(chattypes.FallbackResultAllow, reviewLambdaARN)
	denyRoom := reviewed(chattypes.FallbackResultDeny, reviewLambdaARN)
	sam := dialChat(t, url, mintChatToken(t, c, allowRoom, "sam", map[string]string{"displayName": "Sam"}, chattypes.ChatTokenCapabilitySendMessage), "sam")
	rita := dialChat(t, url, mintChatToken(t, c, allowRoom, "rita", nil, chattypes.ChatTokenCapabilitySendMessage), "rita")
	dan := dialChat(t, url, mintChatToken(t, c, denyRoom, "dan", nil, chattypes.ChatTokenCapabilitySendMessage), "dan")
	rex := dialChat(t, url, mintChatToken(t, c, denyRoom, "rex", nil, chattypes.ChatTokenCapabilitySendMessage), "rex")
	for _, cc := range []*chatConn{sam, rita, dan, rex} {
		cc.ready(t) // reviewed (and allowed) too
	}

	// ALLOW: delivered as sent; the handler got IVS's request.
	sam.sendMessage(t, "allow-1", "allow: hello", map[string]string{"k": "v"})
	for _, cc := range []*chatConn{sam, rita} {
		f := cc.waitFor(t, "the allowed message", messageOfRequest("allow-1"))
		eq(t, cc.name+" allowed content", f.Content, "allow: hello")
		deepEq(t, cc.name+" allowed attributes", f.Attributes, map[string]string{"k": "v"})
		eq(t, cc.name+" allowed sender", f.Sender.UserId, "sam")
	}
	delivered, _ := rita.find(messageOfRequest("allow-1"))
	call := lambda.waitCall(t, "allow: hello", nil)
	t.Logf("review request: %s", call.raw)
	sameKeys(t, "review request", call.fields, "Content", "MessageId", "RoomArn", "Attributes", "Sender")
	sameKeys(t, "review request Sender", call.fields["Sender"], "Attributes", "UserId", "Ip")
	eq(t, "review MessageId (the delivered message's Id)", call.req.MessageId, delivered.Id)
	eq(t, "review RoomArn", call.req.RoomArn, allowRoom)
	deepEq(t, "review Attributes", call.req.Attributes, map[string]string{"k": "v"})
	eq(t, "review Sender.UserId", call.req.Sender.UserId, "sam")
	deepEq(t, "review Sender.Attributes", call.req.Sender.Attributes, map[string]string{"displayName": "Sam"})
	eq(t, "review Sender.Ip", call.req.Sender.Ip, "127.0.0.1")

	// A modifying answer replaces content and attributes.
	sam.sendMessage(t, "modify-1", "modify: bad word", map[string]string{"k": "v"})
	for _, cc := range []*chatConn{sam, rita} {
		f := cc.waitFor(t, "the modified message", messageOfRequest("modify-1"))
		eq(t, cc.name+" modified content", f.Content, "modified by review")
		deepEq(t, cc.name+" modified attributes", f.Attributes, map[string]string{"reviewed": "yes"})
		eq(t, cc.name+" modified sender", f.Sender.UserId, "sam")
	}

	// DENY: the sender gets ERROR 406, nobody gets the message. What the
	// sender sends next arrives, so the denied one would have before it.
	sam.sendMessage(t, "deny-1", "deny: spam", nil)
	e := sam.waitFor(t, "ERROR for the denied message", errorOfRequest("deny-1"))
	eq(t, "denied ErrorCode", e.ErrorCode, 406)
	if !chatIDRe.MatchString(e.Id) || e.ErrorMessage == "" {
		t.Errorf("denied ERROR frame %s: want an Id and an ErrorMessage", e)
	}
	sam.sendMessage(t, "after-deny", "allow: after the denied one", nil)
	rita.waitFor(t, "the message after the denied one", messageOfRequest("after-deny"))
	for _, cc := range []*chatConn{sam, rita} {
		if f, ok := cc.find(messageWith("deny: spam")); ok {
			t.Errorf("%s received the denied message: %s", cc.name, f)
		}
	}

	// Past 200 ms the fallbackResult decides: ALLOW delivers the original.
	start := time.Now()
	sam.sendMessage(t, "slow-allow", "slow: fallback allow", map[string]string{"k": "orig"})
	for _, cc := range []*chatConn{sam, rita} {
		f := cc.waitFor(t, "the message whose review timed out (fallback ALLOW)", messageOfRequest("slow-allow"))
		eq(t, cc.name+" timed-out content", f.Content, "slow: fallback allow")
		deepEq(t, cc.name+" timed-out attributes", f.Attributes, map[string]string{"k": "orig"})
	}
	t.Logf("fallback ALLOW delivered %s after sending", time.Since(start).Round(time.Millisecond))
	slow := lambda.waitCall(t, "slow: fallback allow", func(c reviewCall) bool { return c.waited > 0 })
	t.Logf("openivs gave up on the review handler after %s (IVS: 200 ms)", slow.waited.Round(time.Millisecond))
	// An invalid answer lets the fallback decide as well.
	sam.sendMessage(t, "invalid-allow", "invalid: answer", nil)
	rita.waitFor(t, "the message with an invalid review answer (fallback ALLOW)", messageOfRequest("invalid-allow"))

	// ... and DENY refuses.
	dan.sendMessage(t, "slow-deny", "slow: fallback deny", nil)
	e = dan.waitFor(t, "ERROR for the timed-out review (fallback DENY)", errorOfRequest("slow-deny"))
	eq(t, "fallback DENY ErrorCode", e.ErrorCode, 406)
	dan.sendMessage(t, "invalid-deny", "invalid: answer in a DENY room", nil)
	e = dan.waitFor(t, "ERROR for the invalid review answer (fallback DENY)", errorOfRequest("invalid-deny"))
	eq(t, "invalid answer, fallback DENY ErrorCode", e.ErrorCode, 406)
	dan.sendMessage(t, "after-fallback-deny", "allow: still reviewed", nil)
	f := rex.waitFor(t, "the message after the refused ones", messageOfRequest("after-fallback-deny"))
	eq(t, "content after the refused ones", f.Content, "allow: still reviewed")
	for _, cc := range []*chatConn{dan, rex} {
		for _, content := range []string{"slow: fallback deny", "invalid: answer in a DENY room"} {
			if f, ok := cc.find(messageWith(content)); ok {
				t.Errorf("%s received a refused message: %s", cc.name, f)
			}
		}
	}

	// A handler ARN no --chat-review-handler maps: fallbackResult decides.
	unmappedARN := "arn:aws:lambda:us-west-2:123456789012:function:unmapped"
	for _, fb := range []chattypes.FallbackResult{chattypes.FallbackResultAllow, chattypes.FallbackResultDeny} {
		room := reviewed(fb, unmappedARN)
		u := dialChat(t, url, mintChatToken(t, c, room, "u", nil, chattypes.ChatTokenCapabilitySendMessage), "unmapped-"+string(fb))
		u.sendMessage(t, "unmapped", "allow: unmapped handler", nil)
		got := u.waitFor(t, "the answer for an unmapped handler", func(f chatFrame) bool { return f.RequestId == "unmapped" })
		switch {
		case fb == chattypes.FallbackResultAllow && got.Type != "MESSAGE":
			t.Errorf("unmapped handler, fallback ALLOW: got %s, want the message", got)
		case fb == chattypes.FallbackResultDeny && (got.Type != "ERROR" || got.ErrorCode != 406):
			t.Errorf("unmapped handler, fallback DENY: got %s, want ERROR 406", got)
		}
	}
	lambda.mu.Lock()
	for _, c := range lambda.calls {
		if c.req.Content == "allow: unmapped handler" {
			t.Errorf("the mapped handler was invoked for a room with another handler ARN: %s", c.raw)
		}
	}
	lambda.mu.Unlock()
}

// chatLogRecord is one chat-log record, as IVS writes them.
type chatLogRecord struct {
	EventTimestamp string          `json:"event_timestamp"`
	Type           string          `json:"type"`
	Version        string          `json:"version"`
	Payload        json.RawMessage `json:"payload"`

	line string
}

// parseChatLog splits JSON lines into records.
func parseChatLog(t *testing.T, where string, data []byte) []chatLogRecord {
	t.Helper()
	var out []chatLogRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		var r chatLogRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("%s: a line that is not a JSON record: %q (%v)", where, line, err)
			continue
		}
		r.line = line
		out = append(out, r)
	}
	return out
}

// checkChatLog checks that records hold exactly one record of each frame
// in want, with the entity as clients got it.
func checkChatLog(t *testing.T, where string, records []chatLogRecord, want []chatFrame) {
	t.Helper()
	for _, f := range want {
		var found []chatLogRecord
		for _, r := range records {
			var p struct{ Id string }
			if json.Unmarshal(r.Payload, &p) == nil && p.Id == f.Id {
				found = append(found, r)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: %d records of %s %s, want 1", where, len(found), f.Type, f.Id)
			continue
		}
		r := found[0]
		eq(t, where+" type", r.Type, f.Type)
		eq(t, where+" version", r.Version, "1.0")
		if !strings.HasPrefix(r.line, `{"event_timestamp":`) {
			t.Errorf("%s: record does not start with event_timestamp (IVS's field order): %s", where, r.line)
		}
		ts, err := time.Parse(sendTimeLayout, r.EventTimestamp)
		if err != nil || !strings.HasSuffix(r.EventTimestamp, "Z") {
			t.Errorf("%s: event_timestamp %q is not UTC RFC 3339 with milliseconds", where, r.EventTimestamp)
		} else {
			nearNow(t, where+" event_timestamp", &ts, 0)
		}
		var got, sent any
		if json.Unmarshal(r.Payload, &got) != nil || json.Unmarshal(f.raw, &sent) != nil {
			t.Errorf("%s: payload %s", where, r.Payload)
			continue
		}
		deepEq(t, where+" payload (the entity as clients got it)", got, sent)
	}
}

// listFiles lists the regular files under dir, relative, with slashes.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// TestChatLogging: a room with a logging configuration of each kind logs
// every MESSAGE and EVENT in IVS's record format: cloudWatchLogs and
// firehose to files under --chat-log-dir, s3 to gzipped JSON-lines
// objects in the object store (local buckets under DATA_DIR/recordings),
// each under IVS's names.
func TestChatLogging(t *testing.T) {
	t.Parallel()
	logDir := t.TempDir()
	srv := startServer(t, serverOpts{Args: []string{"--chat-log-dir", logDir}})
	c := ivschatClient(t, srv)
	cx := ctx(t)
	const (
		group  = "/aws/ivschat/e2e"
		stream = "e2e-chat-stream"
		bucket = "e2e-chat-logs"
	)
	cw := createChatLogging(t, c, "cw", &chattypes.DestinationConfigurationMemberCloudWatchLogs{
		Value: chattypes.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String(group)}})
	fh := createChatLogging(t, c, "fh", &chattypes.DestinationConfigurationMemberFirehose{
		Value: chattypes.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String(stream)}})
	s3 := createChatLogging(t, c, "s3", &chattypes.DestinationConfigurationMemberS3{
		Value: chattypes.S3DestinationConfiguration{BucketName: aws.String(bucket)}})
	room := createChatRoom(t, c, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{aws.ToString(cw.Arn), aws.ToString(fh.Arn), aws.ToString(s3.Arn)}})
	roomID := aws.ToString(room.Id)

	sender := dialChat(t, chatWSURL(srv), mintChatToken(t, c, aws.ToString(room.Arn), "logger", map[string]string{"displayName": "Lo"}, chattypes.ChatTokenCapabilitySendMessage), "logger")
	sender.sendMessage(t, "logged-1", "a logged message", map[string]string{"k": "v"})
	msg := sender.waitFor(t, "its message", messageOfRequest("logged-1"))
	ev, err := c.SendEvent(cx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:logged"), Attributes: map[string]string{"a": "b"}})
	must(t, err, "SendEvent")
	event := sender.waitFor(t, "the event", frameWithID(aws.ToString(ev.Id)))
	del, err := c.DeleteMessage(cx, &ivschat.DeleteMessageInput{RoomIdentifier: room.Arn, Id: aws.String(msg.Id), Reason: aws.String("logged delete")})
	must(t, err, "DeleteMessage")
	deletion := sender.waitFor(t, "the delete event", frameWithID(aws.ToString(del.Id)))
	want := []chatFrame{msg, event, deletion}
	hasAll := func(records []chatLogRecord) bool {
		n := 0
		for _, f := range want {
			for _, r := range records {
				if strings.Contains(string(r.Payload), `"Id":"`+f.Id+`"`) {
					n++
					break
				}
			}
		}
		return n == len(want)
	}

	// CloudWatch Logs: DIR/cloudwatch/<group, escaped>/aws/IVSChatLogs/1.0/room_<id>.log
	cwFile := filepath.Join(logDir, "cloudwatch", "%2Faws%2Fivschat%2Fe2e", "aws", "IVSChatLogs", "1.0", "room_"+roomID+".log")
	// Firehose: DIR/firehose/<stream>/YYYY/MM/DD/HH/<stream>-YYYY-MM-DD-HH.log
	fhDir := filepath.Join(logDir, "firehose", stream)
	fhName := regexp.MustCompile(`^(\d{4})/(\d{2})/(\d{2})/(\d{2})/` + regexp.QuoteMeta(stream) + `-(\d{4})-(\d{2})-(\d{2})-(\d{2})\.log$`)
	readFirehose := func() ([]chatLogRecord, []string) {
		var recs []chatLogRecord
		files := listFiles(t, fhDir)
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(fhDir, f))
			if err == nil {
				recs = append(recs, parseChatLog(t, "firehose "+f, data)...)
			}
		}
		return recs, files
	}
	deadline := time.Now().Add(20 * time.Second)
	var cwRecords, fhRecords []chatLogRecord
	var fhFiles []string
	for {
		data, _ := os.ReadFile(cwFile)
		cwRecords = parseChatLog(t, "cloudwatch", data)
		fhRecords, fhFiles = readFirehose()
		if hasAll(cwRecords) && hasAll(fhRecords) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chat logs incomplete after 20 s: %d CloudWatch records in %s, %d Firehose records in %v; files under %s: %v",
				len(cwRecords), cwFile, len(fhRecords), fhFiles, logDir, listFiles(t, logDir))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("CloudWatch Logs stand-in: %s (%d records); Firehose: %v (%d records)", cwFile, len(cwRecords), fhFiles, len(fhRecords))
	checkChatLog(t, "cloudwatch", cwRecords, want)
	checkChatLog(t, "firehose", fhRecords, want)
	for _, f := range fhFiles {
		m := fhName.FindStringSubmatch(f)
		if m == nil || m[1] != m[5] || m[2] != m[6] || m[3] != m[7] || m[4] != m[8] {
			t.Errorf("firehose file %q is not <stream>/YYYY/MM/DD/HH/<stream>-YYYY-MM-DD-HH.log", f)
		}
	}
	if st, err := os.Stat(cwFile); err == nil && st.Mode().Perm()&0o077 != 0 {
		t.Logf("NOTE CloudWatch stand-in file mode %v is readable by others", st.Mode().Perm())
	}

	// S3 objects are written at the S3 flush interval, and on shutdown.
	srv.Stop()
	bucketDir := filepath.Join(srv.DataDir, "recordings", bucket)
	keyRe := regexp.MustCompile(`^AWSLogs/123456789012/IVSChatLogs/1\.0/us-west-2/room_` + roomID +
		`/(\d{4})/(\d{2})/(\d{2})/(\d{2})/123456789012_IVSChatLogs_1\.0_us-west-2_room_` + roomID + `_(\d{4})(\d{2})(\d{2})(\d{2})\d{2}_[0-9A-Za-z]+\.log\.gz$`)
	var s3Records []chatLogRecord
	keys := listFiles(t, bucketDir)
	for _, key := range keys {
		if strings.HasPrefix(filepath.Base(key), ".") {
			continue // the local store's own temporary files
		}
		m := keyRe.FindStringSubmatch(key)
		if m == nil || m[1] != m[5] || m[2] != m[6] || m[3] != m[7] || m[4] != m[8] {
			t.Errorf("S3 key %q does not follow IVS's AWSLogs/<account>/IVSChatLogs/1.0/<region>/room_<id>/YYYY/MM/DD/HH/<account>_IVSChatLogs_1.0_<region>_room_<id>_YYYYMMDDHHMM_<hash>.log.gz", key)
		}
		raw, err := os.ReadFile(filepath.Join(bucketDir, key))
		must(t, err, "read S3 object")
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("S3 object %s is not gzipped: %v", key, err)
			continue
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Errorf("S3 object %s: %v", key, err)
			continue
		}
		s3Records = append(s3Records, parseChatLog(t, "s3 "+key, data)...)
	}
	if !hasAll(s3Records) {
		t.Fatalf("S3 bucket %s after shutdown: %d records in %v, want the message and both events; files under %s: %v",
			bucket, len(s3Records), keys, filepath.Join(srv.DataDir, "recordings"), listFiles(t, filepath.Join(srv.DataDir, "recordings")))
	}
	t.Logf("S3 objects in %s: %v (%d records)", bucketDir, keys, len(s3Records))
	checkChatLog(t, "s3", s3Records, want)
}
