package chat_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/store"
)

func (f *fixture) token(t *testing.T, room string, in *sdk.CreateChatTokenInput) *sdk.CreateChatTokenOutput {
	t.Helper()
	if in == nil {
		in = &sdk.CreateChatTokenInput{}
	}
	in.RoomIdentifier = aws.String(room)
	if in.UserId == nil {
		in.UserId = aws.String("alice")
	}
	out, err := f.client.CreateChatToken(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateChatToken: %v", err)
	}
	return out
}

func TestChatTokens(t *testing.T) { testChatTokens(t, options{disableRateLimits: true}) }

func testChatTokens(t *testing.T, o options) {
	f := newFixture(t, o)
	ctx := context.Background()
	room := *f.createRoom(t, nil).Arn
	start := f.clock.Now()
	out := f.token(t, room, &sdk.CreateChatTokenInput{
		UserId:     aws.String("alice"),
		Attributes: map[string]string{"displayName": "Alice"},
		Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage,
			types.ChatTokenCapabilityDeleteMessage, types.ChatTokenCapabilitySendMessage},
	})
	token := *out.Token
	if !strings.HasPrefix(token, "ivschat.v1.") || len(token) < 64 {
		t.Fatalf("token %q", token)
	}
	// Valid for a minute; the session for the default 60 minutes.
	if !out.TokenExpirationTime.Equal(start.Add(time.Minute)) || !out.SessionExpirationTime.Equal(start.Add(time.Hour)) {
		t.Fatalf("expirations %v %v (now %v)", out.TokenExpirationTime, out.SessionExpirationTime, start)
	}
	// The store keeps only the token's hash.
	recs, err := f.store.List(ctx, store.Query{Kind: chat.KindChatToken, Parent: room})
	if err != nil || len(recs) != 1 {
		t.Fatalf("token records %v, %v", recs, err)
	}
	if strings.Contains(string(recs[0].Doc), token) || strings.Contains(recs[0].ARN, token) || strings.Contains(recs[0].Unique, token) {
		t.Fatal("the store holds the token itself")
	}

	f.clock.Advance(59 * time.Second)
	g, err := f.svc.RedeemToken(ctx, token)
	if err != nil {
		t.Fatalf("RedeemToken: %v", err)
	}
	if g.RoomARN != room || g.UserID != "alice" || g.Attributes["displayName"] != "Alice" ||
		strings.Join(g.Capabilities, ",") != "SEND_MESSAGE,DELETE_MESSAGE" || !g.SessionExpires.Equal(start.Add(time.Hour)) {
		t.Fatalf("grant %+v", g)
	}
	if !g.Can(chat.CapSendMessage) || !g.Can(chat.CapDeleteMessage) || g.Can(chat.CapDisconnectUser) {
		t.Fatalf("capabilities %v", g.Capabilities)
	}
	// Single use.
	if _, err := f.svc.RedeemToken(ctx, token); !errors.Is(err, chat.ErrTokenInvalid) {
		t.Fatalf("second redeem: %v", err)
	}

	// Expired: one minute after creation it no longer works.
	late := *f.token(t, room, nil).Token
	f.clock.Advance(time.Minute)
	if _, err := f.svc.RedeemToken(ctx, late); !errors.Is(err, chat.ErrTokenInvalid) {
		t.Fatalf("expired redeem: %v", err)
	}

	// No capabilities, longest session.
	now := f.clock.Now()
	out = f.token(t, room, &sdk.CreateChatTokenInput{UserId: aws.String("bob"), SessionDurationInMinutes: aws.Int32(180)})
	if !out.SessionExpirationTime.Equal(now.Add(180 * time.Minute)) {
		t.Fatalf("session %v", out.SessionExpirationTime)
	}
	g, err = f.svc.RedeemToken(ctx, *out.Token)
	if err != nil || len(g.Capabilities) != 0 || g.Attributes != nil && len(g.Attributes) != 0 || g.UserID != "bob" {
		t.Fatalf("grant %+v, %v", g, err)
	}

	for _, bad := range []string{"", "x", "ivschat.v1.", token + "x", strings.Replace(token, "ivschat", "ivsXhat", 1),
		"ivschat.v1." + strings.Repeat("A", len(token)-len("ivschat.v1."))} {
		if _, err := f.svc.RedeemToken(ctx, bad); !errors.Is(err, chat.ErrTokenInvalid) {
			t.Fatalf("RedeemToken(%q): %v", bad, err)
		}
	}
}

func TestChatTokenValidation(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	ctx := context.Background()
	room := f.createRoom(t, nil)
	call := func(in sdk.CreateChatTokenInput) error {
		if in.RoomIdentifier == nil {
			in.RoomIdentifier = room.Arn
		}
		if in.UserId == nil {
			in.UserId = aws.String("alice")
		}
		_, err := f.client.CreateChatToken(ctx, &in)
		return err
	}
	wantValidation(t, "session 0", call(sdk.CreateChatTokenInput{SessionDurationInMinutes: aws.Int32(0)}), "sessionDurationInMinutes", "greater than or equal to 1")
	wantValidation(t, "session 181", call(sdk.CreateChatTokenInput{SessionDurationInMinutes: aws.Int32(181)}), "sessionDurationInMinutes", "less than or equal to 180")
	wantValidation(t, "capability", call(sdk.CreateChatTokenInput{Capabilities: []types.ChatTokenCapability{"SEND_MESSAGE", "BAN_USER"}}), "capabilities.2", "enum")
	wantValidation(t, "empty userId", call(sdk.CreateChatTokenInput{UserId: aws.String("")}), "userId")
	long := strings.Repeat("u", 129)
	err := call(sdk.CreateChatTokenInput{UserId: aws.String(long)})
	wantValidation(t, "userId 129", err, "userId", "'***'")
	if strings.Contains(err.Error(), long) {
		t.Fatal("the sensitive userId is echoed")
	}
	wantValidation(t, "room id", call(sdk.CreateChatTokenInput{RoomIdentifier: room.Id}), "roomIdentifier")

	// attributes: 1 KB in all.
	big := map[string]string{"k": strings.Repeat("v", 1023)}
	if err := call(sdk.CreateChatTokenInput{Attributes: big}); err != nil {
		t.Fatalf("1 KB of attributes: %v", err)
	}
	big["k2"] = "v"
	wantValidation(t, "attributes over 1 KB", call(sdk.CreateChatTokenInput{Attributes: big}), "attributes")

	missing := "arn:aws:ivschat:us-west-2:123456789012:room/abcdABCD1234"
	wantNotFound(t, "missing room", call(sdk.CreateChatTokenInput{RoomIdentifier: aws.String(missing)}), "abcdABCD1234", types.ResourceTypeRoom)
	_, err = f.other.CreateChatToken(ctx, &sdk.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("x")})
	wantNotFound(t, "another account's room", err, *room.Id, types.ResourceTypeRoom)
}

func TestDeleteRoomDeletesTokens(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	ctx := context.Background()
	room := *f.createRoom(t, nil).Arn
	keep := *f.createRoom(t, nil).Arn
	a := *f.token(t, room, nil).Token
	f.token(t, room, nil)
	b := *f.token(t, keep, nil).Token
	if _, err := f.client.DeleteRoom(ctx, &sdk.DeleteRoomInput{Identifier: &room}); err != nil {
		t.Fatal(err)
	}
	if recs, err := f.store.List(ctx, store.Query{Kind: chat.KindChatToken, Parent: room}); err != nil || len(recs) != 0 {
		t.Fatalf("tokens left: %d, %v", len(recs), err)
	}
	if _, err := f.svc.RedeemToken(ctx, a); !errors.Is(err, chat.ErrTokenInvalid) {
		t.Fatalf("token of a deleted room: %v", err)
	}
	if g, err := f.svc.RedeemToken(ctx, b); err != nil || g.RoomARN != keep {
		t.Fatalf("token of another room: %+v, %v", g, err)
	}
}

func TestPruneChatTokens(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	ctx := context.Background()
	room := *f.createRoom(t, nil).Arn
	t0 := f.clock.Now()
	for i := 0; i < 3; i++ {
		f.token(t, room, nil)
	}
	f.clock.Advance(30 * time.Second)
	fresh := *f.token(t, room, nil).Token
	if n, err := f.svc.PruneChatTokens(ctx, t0.Add(59*time.Second)); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v; want 0", n, err)
	}
	if n, err := f.svc.PruneChatTokens(ctx, t0.Add(70*time.Second)); err != nil || n != 3 {
		t.Fatalf("pruned %d, %v; want 3", n, err)
	}
	if _, err := f.svc.RedeemToken(ctx, fresh); err != nil {
		t.Fatalf("the unexpired token was pruned: %v", err)
	}
	if recs, _ := f.store.List(ctx, store.Query{Kind: chat.KindChatToken}); len(recs) != 0 {
		t.Fatalf("%d token records left", len(recs))
	}
}

// redeemRace redeems one token from many goroutines across services
// sharing a store and returns how many succeeded.
func redeemRace(t *testing.T, token string, svcs ...*chat.Service) int {
	t.Helper()
	var wins, wg = atomic.Int32{}, sync.WaitGroup{}
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(svc *chat.Service) {
			defer wg.Done()
			_, err := svc.RedeemToken(context.Background(), token)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, chat.ErrTokenInvalid):
				t.Errorf("RedeemToken: %v", err)
			}
		}(svcs[i%len(svcs)])
	}
	wg.Wait()
	return int(wins.Load())
}

func TestRedeemTokenRace(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	room := *f.createRoom(t, nil).Arn
	for i := 0; i < 5; i++ {
		if n := redeemRace(t, *f.token(t, room, nil).Token, f.svc); n != 1 {
			t.Fatalf("%d redeems succeeded", n)
		}
	}
}
