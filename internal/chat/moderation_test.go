package chat_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/openivs/openivs/internal/chat"
)

// fakeBroadcaster records what the control plane asks messaging to do.
// (A fake is right here: the real one is another package; the contract
// between them is the chat.Broadcaster interface.)
type fakeBroadcaster struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (b *fakeBroadcaster) record(s string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, s)
	return b.err
}

func (b *fakeBroadcaster) SendEvent(_ context.Context, room, name string, attrs map[string]string) (string, error) {
	return "EvEnTiD12345", b.record("event " + room + " " + name + " " + attrs["k"])
}

func (b *fakeBroadcaster) DeleteMessage(_ context.Context, room, id, reason string) (string, error) {
	return "DeLeTeID1234", b.record("delete " + room + " " + id + " " + reason)
}

func (b *fakeBroadcaster) DisconnectUser(_ context.Context, room, user, reason string) error {
	return b.record("disconnect " + room + " " + user + " " + reason)
}

func TestModerationWithoutMessaging(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	ctx := context.Background()
	room := f.createRoom(t, nil).Arn
	// Never a fake success: without messaging nothing is delivered.
	_, err := f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: room, EventName: aws.String("e")})
	wantCode(t, "SendEvent", err, "InternalServerException")
	_, err = f.client.DeleteMessage(ctx, &sdk.DeleteMessageInput{RoomIdentifier: room, Id: aws.String("abcdABCD1234")})
	wantCode(t, "DeleteMessage", err, "InternalServerException")
	_, err = f.client.DisconnectUser(ctx, &sdk.DisconnectUserInput{RoomIdentifier: room, UserId: aws.String("u")})
	wantCode(t, "DisconnectUser", err, "InternalServerException")
}

func TestModeration(t *testing.T) { testModeration(t, options{disableRateLimits: true}) }

func testModeration(t *testing.T, o options) {
	f := newFixture(t, o)
	ctx := context.Background()
	b := &fakeBroadcaster{}
	f.svc.SetBroadcaster(b)
	room := f.createRoom(t, nil)
	arn := *room.Arn

	ev, err := f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: &arn, EventName: aws.String("app:poll"), Attributes: map[string]string{"k": "v"}})
	if err != nil || *ev.Id != "EvEnTiD12345" {
		t.Fatalf("SendEvent = %+v, %v", ev, err)
	}
	del, err := f.client.DeleteMessage(ctx, &sdk.DeleteMessageInput{RoomIdentifier: &arn, Id: aws.String("abcdABCD1234"), Reason: aws.String("spam")})
	if err != nil || *del.Id != "DeLeTeID1234" {
		t.Fatalf("DeleteMessage = %+v, %v", del, err)
	}
	if _, err := f.client.DisconnectUser(ctx, &sdk.DisconnectUserInput{RoomIdentifier: &arn, UserId: aws.String("troll"), Reason: aws.String("bye")}); err != nil {
		t.Fatalf("DisconnectUser: %v", err)
	}
	want := []string{
		"event " + arn + " app:poll v",
		"delete " + arn + " abcdABCD1234 spam",
		"disconnect " + arn + " troll bye",
	}
	if strings.Join(b.calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("broadcaster saw\n%s\nwant\n%s", strings.Join(b.calls, "\n"), strings.Join(want, "\n"))
	}

	// Validation happens before messaging is asked.
	b.calls = nil
	_, err = f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: &arn, EventName: aws.String(strings.Repeat("e", 101))})
	wantValidation(t, "eventName 101", err, "eventName")
	_, err = f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: &arn, EventName: aws.String("")})
	wantValidation(t, "empty eventName", err, "eventName")
	_, err = f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: &arn, EventName: aws.String("e"), Attributes: map[string]string{"k": strings.Repeat("v", 1024)}})
	wantValidation(t, "attributes over 1 KB", err, "attributes")
	_, err = f.client.DeleteMessage(ctx, &sdk.DeleteMessageInput{RoomIdentifier: &arn, Id: aws.String("short")})
	wantValidation(t, "message id", err, "'id'")
	_, err = f.client.DeleteMessage(ctx, &sdk.DeleteMessageInput{RoomIdentifier: &arn, Id: aws.String("abcdABCD-234")})
	wantValidation(t, "message id pattern", err, "'id'")
	_, err = f.client.DeleteMessage(ctx, &sdk.DeleteMessageInput{RoomIdentifier: &arn, Id: aws.String("abcdABCD1234"), Reason: aws.String(strings.Repeat("r", 257))})
	wantValidation(t, "reason 257", err, "reason")
	_, err = f.client.DisconnectUser(ctx, &sdk.DisconnectUserInput{RoomIdentifier: &arn, UserId: aws.String("")})
	wantValidation(t, "empty userId", err, "userId")
	_, err = f.client.DisconnectUser(ctx, &sdk.DisconnectUserInput{RoomIdentifier: room.Id, UserId: aws.String("u")})
	wantValidation(t, "room id", err, "roomIdentifier")

	missing := aws.String("arn:aws:ivschat:us-west-2:123456789012:room/abcdABCD1234")
	_, err = f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: missing, EventName: aws.String("e")})
	wantNotFound(t, "SendEvent to a missing room", err, "abcdABCD1234", types.ResourceTypeRoom)
	_, err = f.client.DeleteMessage(ctx, &sdk.DeleteMessageInput{RoomIdentifier: missing, Id: aws.String("abcdABCD1234")})
	wantNotFound(t, "DeleteMessage in a missing room", err, "abcdABCD1234", types.ResourceTypeRoom)
	_, err = f.client.DisconnectUser(ctx, &sdk.DisconnectUserInput{RoomIdentifier: missing, UserId: aws.String("u")})
	wantNotFound(t, "DisconnectUser from a missing room", err, "abcdABCD1234", types.ResourceTypeRoom)
	_, err = f.other.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: &arn, EventName: aws.String("e")})
	wantNotFound(t, "SendEvent to another account's room", err, *room.Id, types.ResourceTypeRoom)
	if len(b.calls) != 0 {
		t.Fatalf("messaging was asked: %v", b.calls)
	}

	// What messaging answers: a room gone meanwhile is not found, a
	// failure is an internal error.
	b.err = chat.ErrRoomNotFound
	_, err = f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: &arn, EventName: aws.String("e")})
	wantNotFound(t, "room gone in messaging", err, *room.Id, types.ResourceTypeRoom)
	b.err = errors.New("fan-out failed")
	_, err = f.client.DisconnectUser(ctx, &sdk.DisconnectUserInput{RoomIdentifier: &arn, UserId: aws.String("u")})
	wantCode(t, "messaging failure", err, "InternalServerException")
}
