package app

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	chatsdk "github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/testutil/awstest"
)

func chatClient(a *App) *chatsdk.Client {
	creds := a.Credentials()
	return chatsdk.New(chatsdk.Options{
		Region:       a.cfg.Region,
		BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"])),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, nil
		}),
		Retryer: awstest.Retryer(),
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
