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

// TestClusterIDShared: nodes sharing a store get one cluster id (they
// find each other on NATS by it); another store is another cluster.
func TestClusterIDShared(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a := newFixture(t, options{disableRateLimits: true, dsn: dsn})
	b := newFixture(t, options{disableRateLimits: true, dsn: dsn})
	other := newFixture(t, options{disableRateLimits: true})
	idA, err := a.svc.ClusterID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := b.svc.ClusterID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.svc.ClusterID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idOther, err := other.svc.ClusterID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idA == "" || idA != idB || idA != again {
		t.Fatalf("cluster ids %q, %q, %q: want one, the same", idA, idB, again)
	}
	if idOther == idA {
		t.Fatalf("another store has the same cluster id %q", idA)
	}
	// Not a resource the API shows.
	rooms, err := a.client.ListRooms(ctx, &sdk.ListRoomsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms.Rooms) != 0 {
		t.Fatalf("ListRooms shows %d rooms", len(rooms.Rooms))
	}
}
