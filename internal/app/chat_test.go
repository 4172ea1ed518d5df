package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	chatsdk "github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/chat/review"
	"github.com/openivs/openivs/internal/metrics"
	"github.com/openivs/openivs/internal/testutil/awstest"
)

func chatClient(a *App) *chatsdk.Client {
	return chatsdk.New(chatsdk.Options{
		Region:       a.cfg.Region,
		BaseEndpoint: aws.String(apiEndpoint(a)),
		Credentials:  apiCredentials(a),
		Retryer:      awstest.Retryer(),
	})
}

// chatConnect dials GET /chat with a fresh token of room.
func chatConnect(t *testing.T, a *App, c *chatsdk.Client, room string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := c.CreateChatToken(ctx, &chatsdk.CreateChatTokenInput{
		RoomIdentifier: aws.String(room), UserId: aws.String("u"),
		Capabilities: []chattypes.ChatTokenCapability{chattypes.ChatTokenCapabilitySendMessage},
	})
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://127.0.0.1:" + strconv.Itoa(a.Ports()["http"]) + "/chat"
	return websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{*tok.Token}})
}

// closeStatus waits for the server to close ws and returns its code.
func closeStatus(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the server did not close the connection")
			}
			return websocket.CloseStatus(err)
		}
	}
}

func TestChatWiring(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Quotas = map[string]int{"chat-concurrent-connections": 2}
	a := startApp(t, cfg)
	c := chatClient(a)
	ctx := context.Background()
	room, err := c.CreateRoom(ctx, &chatsdk.CreateRoomInput{Name: aws.String("wiring")})
	if err != nil {
		t.Fatal(err)
	}

	// The quota counts open connections of the node.
	first, _, err := chatConnect(t, a, c, *room.Arn)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := chatConnect(t, a, c, *room.Arn)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := chatConnect(t, a, c, *room.Arn)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection over a quota of 2: resp %v err %v", resp, err)
	}
	second.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for a.chat.msgs.Connections() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections counted after one closed", a.chat.msgs.Connections())
		}
		time.Sleep(10 * time.Millisecond)
	}
	third, _, err := chatConnect(t, a, c, *room.Arn)
	if err != nil {
		t.Fatalf("a connection once one closed: %v", err)
	}

	// DeleteRoom reaches the messaging side through the room listener.
	if _, err := c.DeleteRoom(ctx, &chatsdk.DeleteRoomInput{Identifier: room.Arn}); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*websocket.Conn{first, third} {
		if code := closeStatus(t, ws); code != websocket.StatusNormalClosure {
			t.Fatalf("deleted room: close %d, want 1000", code)
		}
	}

	// Shutdown says goodbye to every chat socket (1001).
	other, err := c.CreateRoom(ctx, &chatsdk.CreateRoomInput{})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := chatConnect(t, a, c, *other.Arn)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan websocket.StatusCode, 1)
	go func() { done <- closeStatus(t, ws) }()
	shutdown(t, a)
	select {
	case code := <-done:
		if code != websocket.StatusGoingAway {
			t.Fatalf("shutdown: close %d, want 1001", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(errors.New("shutdown left the chat socket open"))
	}
}

// TestChatMetrics: GET /metrics exports IVS Chat's metrics from real
// traffic: open connections, requests and deliveries by action, and a
// review handler that cannot be invoked (no --chat-review-handler maps
// its ARN) under its uri.
func TestChatMetrics(t *testing.T) {
	cfg := testConfig(t.TempDir())
	// --chat-log-dir under a regular file: CloudWatch records cannot be
	// written.
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.ChatLogDir = filepath.Join(file, "chat-logs")
	a := startApp(t, cfg)
	c := chatClient(a)
	ctx := context.Background()
	lc, err := c.CreateLoggingConfiguration(ctx, &chatsdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &chattypes.DestinationConfigurationMemberCloudWatchLogs{
			Value: chattypes.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("chat")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	const handler = "arn:aws:lambda:us-west-2:123456789012:function:unmapped"
	room, err := c.CreateRoom(ctx, &chatsdk.CreateRoomInput{
		MessageReviewHandler:            &chattypes.MessageReviewHandler{Uri: aws.String(handler), FallbackResult: chattypes.FallbackResultAllow},
		LoggingConfigurationIdentifiers: []string{*lc.Arn},
	})
	if err != nil {
		t.Fatal(err)
	}
	alice, _, err := chatConnect(t, a, c, *room.Arn)
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := chatConnect(t, a, c, *room.Arn)
	if err != nil {
		t.Fatal(err)
	}
	// Closed before the app shuts down (cleanups run last first): nobody
	// reads these sockets to answer the server's close handshake, which
	// would hold Shutdown up to its deadline and let the connections log
	// after the test.
	t.Cleanup(func() { _ = alice.CloseNow(); _ = bob.CloseNow() })
	readOne := func(ws *websocket.Conn) string {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, b, err := ws.Read(rctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := alice.Write(ctx, websocket.MessageText, []byte(`{"Action":"SEND_MESSAGE","RequestId":"r1","Content":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendEvent(ctx, &chatsdk.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:poll")}); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*websocket.Conn{alice, bob} {
		// In either order: the message waits for its review.
		got := readOne(ws) + readOne(ws)
		for _, want := range []string{`"Type":"MESSAGE"`, `"EventName":"app:poll"`} {
			if !strings.Contains(got, want) {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
	}

	want := []string{
		`openivs_chat_concurrent_connections 2`,
		`openivs_chat_requests_total{action="SendMessage"} 1`,
		`openivs_chat_requests_total{action="SendEvent"} 1`,
		`openivs_chat_requests_total{action="DeleteMessage"} 0`,
		`openivs_chat_deliveries_total{action="SendMessage"} 2`,
		`openivs_chat_deliveries_total{action="SendEvent"} 2`,
		`openivs_chat_review_invocation_errors_total{uri="` + handler + `"} 1`,
		// The message and the event, in one write or two (the writer
		// appends every second).
		`openivs_chat_log_destination_errors_total{logging_configuration="` + *lc.Arn + `"} `,
	}
	url := apiEndpoint(a) + "/metrics"
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestChatObserverSortsReviewErrors: an invalid answer of a review handler
// is a ResponseValidationError, anything else an InvocationError; a log
// destination's errors are all LogDestinationErrors, some also of a kind.
func TestChatObserverSortsReviewErrors(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	obs := chatObserver{m}
	obs.ReviewFailed("arn:h", fmt.Errorf("%w: ReviewResult %q is neither ALLOW nor DENY", review.ErrInvalidResponse, "MAYBE"))
	obs.ReviewFailed("arn:h", context.DeadlineExceeded)
	obs.ReviewFailed("arn:h", errors.New("review: handler answered HTTP 500"))
	obs.LogDestinationFailed("arn:lc", fmt.Errorf("dropped: %w", blob.ErrNoSuchBucket))
	obs.LogDestinationFailed("arn:lc", fmt.Errorf("dropped: %w", blob.ErrAccessDenied))
	obs.LogDestinationFailed("arn:lc", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission})
	obs.LogDestinationFailed("arn:lc", errors.New("store down"))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`openivs_chat_review_response_validation_errors_total{uri="arn:h"} 1`,
		`openivs_chat_review_invocation_errors_total{uri="arn:h"} 2`,
		`openivs_chat_log_destination_errors_total{logging_configuration="arn:lc"} 4`,
		`openivs_chat_log_destination_access_denied_errors_total{logging_configuration="arn:lc"} 2`,
		`openivs_chat_log_destination_resource_not_found_errors_total{logging_configuration="arn:lc"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, rec.Body.String())
		}
	}
}
