package chat_test

import (
	"context"
	"errors"
	"testing"

	sdk "github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/testutil/pgtest"
)

// TestPostgres runs the flows that lean on the store (references,
// filters, pagination, parent deletes, single use) on PostgreSQL.
func TestPostgres(t *testing.T) {
	for name, fn := range map[string]func(*testing.T, options){
		"RoomLifecycle": testRoomLifecycle,
		"ListRooms":     testListRooms,
		"Logging":       testLoggingConfigurations,
		"ChatTokens":    testChatTokens,
		"Moderation":    testModeration,
		"Tags":          testTags,
	} {
		t.Run(name, func(t *testing.T) {
			fn(t, options{disableRateLimits: true, dsn: pgtest.DSN(t)})
		})
	}
}

// TestRedeemTokenAcrossNodes: two nodes share one PostgreSQL database; a
// token created on one is spent exactly once, whichever nodes race for it.
func TestRedeemTokenAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := newFixture(t, options{disableRateLimits: true, dsn: dsn})
	b := newFixture(t, options{disableRateLimits: true, dsn: dsn})
	room := *a.createRoom(t, nil).Arn
	// The room made on node a is node b's too.
	if _, err := b.client.GetRoom(context.Background(), &sdk.GetRoomInput{Identifier: &room}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if n := redeemRace(t, *a.token(t, room, nil).Token, a.svc, b.svc); n != 1 {
			t.Fatalf("%d redeems succeeded", n)
		}
	}
	// Deleting the room on node b removes the tokens made on node a.
	tok := *a.token(t, room, nil).Token
	if _, err := b.client.DeleteRoom(context.Background(), &sdk.DeleteRoomInput{Identifier: &room}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.RedeemToken(context.Background(), tok); !errors.Is(err, chat.ErrTokenInvalid) {
		t.Fatalf("token of a room deleted on another node: %v", err)
	}
}
