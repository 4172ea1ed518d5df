package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/store"
)

// demoFixture is the IVS Chat API (for rooms and tags) and the chat demo's
// token endpoint of one service, whose log is kept.
type demoFixture struct {
	svc    *chat.Service
	client *sdk.Client
	other  *sdk.Client
	clock  *clock
	demo   string // URL of the token endpoint
	logs   *bytes.Buffer
}

func newDemoFixture(t *testing.T) *demoFixture {
	t.Helper()
	st, err := store.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 3, 16, 3, 44, 9, 0, time.UTC)}
	logs := &bytes.Buffer{}
	svc, err := chat.New(chat.Config{Store: st, Region: testRegion, AccountID: testAccount, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	api := awsapi.NewServer(awsapi.Options{Region: testRegion, Credentials: staticCreds{}, DisableRateLimits: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err := api.Mount(svc.API()); err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	demo := httptest.NewServer(svc.DemoTokenHandler())
	t.Cleanup(demo.Close)
	return &demoFixture{svc: svc, client: newClient(apiSrv.URL, testKeyID), other: newClient(apiSrv.URL, otherKeyID),
		clock: clk, demo: demo.URL, logs: logs}
}

func (f *demoFixture) room(t *testing.T, c *sdk.Client, tags map[string]string) string {
	t.Helper()
	out, err := c.CreateRoom(context.Background(), &sdk.CreateRoomInput{Tags: tags})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	return *out.Arn
}

type demoAnswer struct {
	status int
	header http.Header
	body   map[string]string
}

// post sends body to the token endpoint as contentType.
func (f *demoFixture) post(t *testing.T, method, contentType, body string) demoAnswer {
	t.Helper()
	req, err := http.NewRequest(method, f.demo, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := demoAnswer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object of strings: %v", method, body, raw, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	return a
}

func (f *demoFixture) ask(t *testing.T, roomArn, userID string) demoAnswer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"roomArn": roomArn, "userId": userID})
	return f.post(t, http.MethodPost, "application/json", string(body))
}

// TestDemoTokenIssued: an opted-in room gets a single-use token with
// SEND_MESSAGE only, the default session and the token validity, in the
// shape the official SDK's tokenProvider returns; by ARN or id, with a
// chosen or a random user id.
func TestDemoTokenIssued(t *testing.T) {
	f := newDemoFixture(t)
	arn := f.room(t, f.client, map[string]string{chat.DemoTag: "true", "team": "demo"})
	now := f.clock.Now()

	a := f.ask(t, arn, "  alice  ")
	if a.status != http.StatusOK {
		t.Fatalf("status %d %v", a.status, a.body)
	}
	if a.body["userId"] != "alice" {
		t.Errorf("userId %q, want alice (trimmed)", a.body["userId"])
	}
	if want := now.Add(chat.DefaultSessionDuration).Format("2006-01-02T15:04:05.000Z"); a.body["sessionExpirationTime"] != want {
		t.Errorf("sessionExpirationTime %q, want %q", a.body["sessionExpirationTime"], want)
	}
	if want := now.Add(chat.DefaultTokenValidity).Format("2006-01-02T15:04:05.000Z"); a.body["tokenExpirationTime"] != want {
		t.Errorf("tokenExpirationTime %q, want %q", a.body["tokenExpirationTime"], want)
	}
	g, err := f.svc.RedeemToken(context.Background(), a.body["token"])
	if err != nil {
		t.Fatalf("RedeemToken: %v", err)
	}
	if g.RoomARN != arn || g.UserID != "alice" || len(g.Attributes) != 0 ||
		len(g.Capabilities) != 1 || g.Capabilities[0] != chat.CapSendMessage || !g.SessionExpires.Equal(now.Add(chat.DefaultSessionDuration)) {
		t.Errorf("grant %+v", g)
	}
	if _, err := f.svc.RedeemToken(context.Background(), a.body["token"]); err != chat.ErrTokenInvalid {
		t.Errorf("second redeem: %v, want ErrTokenInvalid", err)
	}

	// By id, without a user id: a random viewer name.
	a = f.ask(t, idOf(arn), "")
	if a.status != http.StatusOK {
		t.Fatalf("by id: status %d %v", a.status, a.body)
	}
	if !regexp.MustCompile(`^viewer-[a-z0-9]{4}$`).MatchString(a.body["userId"]) {
		t.Errorf("random userId %q", a.body["userId"])
	}
	if g, err := f.svc.RedeemToken(context.Background(), a.body["token"]); err != nil || g.UserID != a.body["userId"] || g.RoomARN != arn {
		t.Errorf("grant %+v, %v", g, err)
	}

	// 128 characters (not bytes) are allowed.
	if a := f.ask(t, arn, strings.Repeat("é", 128)); a.status != http.StatusOK {
		t.Errorf("128-character userId: status %d %v", a.status, a.body)
	}

	// The token is a credential: the log never shows one.
	if strings.Contains(f.logs.String(), "ivschat.v1.") {
		t.Errorf("a token was logged:\n%s", f.logs.String())
	}
}

// TestDemoTokenRefused: rooms not opted in, other accounts' rooms and bad
// requests get no token.
func TestDemoTokenRefused(t *testing.T) {
	f := newDemoFixture(t)
	open := f.room(t, f.client, map[string]string{chat.DemoTag: "true"})
	closed := f.room(t, f.client, nil)
	falseTag := f.room(t, f.client, map[string]string{chat.DemoTag: "yes"})
	foreign := f.room(t, f.other, map[string]string{chat.DemoTag: "true"})
	missing := open[:strings.LastIndex(open, "/")+1] + "AAAAAAAAAAAA"
	body := func(v any) string { b, _ := json.Marshal(v); return string(b) }

	for _, c := range []struct {
		name, method, contentType, body string
		status                          int
		code                            string
	}{
		{"untagged room", "POST", "application/json", body(map[string]string{"roomArn": closed}), 403, "AccessDeniedException"},
		{"tag not true", "POST", "application/json", body(map[string]string{"roomArn": falseTag}), 403, "AccessDeniedException"},
		{"missing room", "POST", "application/json", body(map[string]string{"roomArn": missing}), 404, "ResourceNotFoundException"},
		{"missing room id", "POST", "application/json", body(map[string]string{"roomArn": "nosuchroom12"}), 404, "ResourceNotFoundException"},
		{"another account's room", "POST", "application/json", body(map[string]string{"roomArn": foreign}), 404, "ResourceNotFoundException"},
		{"not a room", "POST", "application/json", body(map[string]string{"roomArn": "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/abc"}), 404, "ResourceNotFoundException"},
		{"no room", "POST", "application/json", body(map[string]string{"userId": "bob"}), 400, "ValidationException"},
		{"userId too long", "POST", "application/json", body(map[string]string{"roomArn": open, "userId": strings.Repeat("x", 129)}), 400, "ValidationException"},
		{"control character", "POST", "application/json", body(map[string]string{"roomArn": open, "userId": "bob\nadmin"}), 400, "ValidationException"},
		{"capabilities asked for", "POST", "application/json", body(map[string]any{"roomArn": open, "capabilities": []string{"DELETE_MESSAGE"}}), 400, "ValidationException"},
		{"attributes asked for", "POST", "application/json", body(map[string]any{"roomArn": open, "attributes": map[string]string{"role": "mod"}}), 400, "ValidationException"},
		{"not JSON", "POST", "application/json", "roomArn=" + open, 400, "ValidationException"},
		{"two objects", "POST", "application/json", body(map[string]string{"roomArn": open}) + "{}", 400, "ValidationException"},
		{"too large", "POST", "application/json", `{"roomArn": "` + open + `", "userId": "` + strings.Repeat(" ", 5000) + `bob"}`, 413, "ValidationException"},
		{"form post", "POST", "text/plain", body(map[string]string{"roomArn": open}), 415, "UnsupportedMediaType"},
		{"no content type", "POST", "", body(map[string]string{"roomArn": open}), 415, "UnsupportedMediaType"},
		{"GET", "GET", "", "", 405, "MethodNotAllowed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := f.post(t, c.method, c.contentType, c.body)
			if a.status != c.status || a.body["code"] != c.code || a.body["message"] == "" || a.body["token"] != "" {
				t.Errorf("status %d %v, want %d %s", a.status, a.body, c.status, c.code)
			}
		})
	}
	if a := f.post(t, "GET", "", ""); a.header.Get("Allow") != "POST" {
		t.Errorf("405 Allow %q", a.header.Get("Allow"))
	}
	// A charset parameter is fine.
	if a := f.post(t, "POST", "application/json; charset=utf-8", body(map[string]string{"roomArn": open})); a.status != 200 {
		t.Errorf("with charset: %d %v", a.status, a.body)
	}
}

// TestDemoTokenOptInByTag: TagResource opens a room to the demo and
// UntagResource closes it again.
func TestDemoTokenOptInByTag(t *testing.T) {
	f := newDemoFixture(t)
	ctx := context.Background()
	arn := f.room(t, f.client, nil)
	if a := f.ask(t, arn, "bob"); a.status != http.StatusForbidden || !strings.Contains(a.body["message"], chat.DemoTag+"=true") {
		t.Fatalf("before tagging: %d %v", a.status, a.body)
	}
	if _, err := f.client.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{chat.DemoTag: "true"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if a := f.ask(t, arn, "bob"); a.status != http.StatusOK {
		t.Fatalf("after TagResource: %d %v", a.status, a.body)
	}
	if _, err := f.client.UntagResource(ctx, &sdk.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{chat.DemoTag}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	if a := f.ask(t, arn, "bob"); a.status != http.StatusForbidden {
		t.Fatalf("after UntagResource: %d %v", a.status, a.body)
	}
	// A deleted room is gone.
	if _, err := f.client.DeleteRoom(ctx, &sdk.DeleteRoomInput{Identifier: aws.String(arn)}); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	if a := f.ask(t, arn, "bob"); a.status != http.StatusNotFound {
		t.Fatalf("after DeleteRoom: %d %v", a.status, a.body)
	}
}

// TestDemoTokenRateLimited: one address gets a burst of 20 tokens, then
// 5 a second.
func TestDemoTokenRateLimited(t *testing.T) {
	f := newDemoFixture(t)
	arn := f.room(t, f.client, map[string]string{chat.DemoTag: "true"})
	for i := 0; i < 20; i++ {
		if a := f.ask(t, arn, ""); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %v", i+1, a.status, a.body)
		}
	}
	a := f.ask(t, arn, "")
	if a.status != http.StatusTooManyRequests || a.body["code"] != "ThrottlingException" || a.header.Get("Retry-After") == "" {
		t.Fatalf("request 21: %d %v (Retry-After %q), want 429", a.status, a.body, a.header.Get("Retry-After"))
	}
	f.clock.Advance(time.Second)
	for i := 0; i < 5; i++ {
		if a := f.ask(t, arn, ""); a.status != http.StatusOK {
			t.Fatalf("a second later, request %d: %d %v", i+1, a.status, a.body)
		}
	}
	if a := f.ask(t, arn, ""); a.status != http.StatusTooManyRequests {
		t.Fatalf("the 6th in that second: %d, want 429", a.status)
	}
}
