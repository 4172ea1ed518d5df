package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/testutil/natstest"
	"github.com/openivs/openivs/internal/testutil/pgtest"
)

// TestChatAcrossNATS: two openivs nodes sharing one PostgreSQL store and
// one NATS serve the same rooms. A token minted on one node works once on
// either; messages, the API's SendEvent, DeleteMessage and DisconnectUser
// reach the clients of both nodes whichever node they come from, and
// DeleteRoom on one node closes the room's connections on the other.
func TestChatAcrossNATS(t *testing.T) {
	t.Parallel()
	natsURL := natstest.URL(t)
	dsn := pgtest.DSN(t) // its cleanup (drop schema) runs after the servers stop
	a := startServer(t, serverOpts{Store: dsn, Args: []string{"--nats-url", natsURL}})
	b := startServer(t, serverOpts{Store: dsn, Args: []string{"--nats-url", natsURL}})
	ca, cb := ivschatClient(t, a), ivschatClient(t, b)
	cx := ctx(t)

	room := createChatRoom(t, ca, &ivschat.CreateRoomInput{Name: aws.String("shared"), MaximumMessageRatePerSecond: aws.Int32(100)})
	arn := aws.ToString(room.Arn)
	got, err := cb.GetRoom(cx, &ivschat.GetRoomInput{Identifier: room.Arn})
	must(t, err, "GetRoom on B of a room created on A")
	eq(t, "room name on B", aws.ToString(got.Name), "shared")

	// Tokens are minted on A; alice connects to A, bob and carol to B.
	send := chattypes.ChatTokenCapabilitySendMessage
	alice := dialChat(t, chatWSURL(a), mintChatToken(t, ca, arn, "alice", map[string]string{"node": "a"}, send), "alice@A")
	bob := dialChat(t, chatWSURL(b), mintChatToken(t, ca, arn, "bob", map[string]string{"node": "b"}, send), "bob@B")
	carol := dialChat(t, chatWSURL(b), mintChatToken(t, ca, arn, "carol", nil, send), "carol@B")
	// Each hears itself through its node's subscription to the room.
	alice.ready(t)
	bob.ready(t)
	carol.ready(t)

	// A token is single use across the nodes.
	tok := mintChatToken(t, cb, arn, "dave", nil, send)
	dave := dialChat(t, chatWSURL(a), tok, "dave@A")
	dave.ready(t)
	_, resp, err := dialChatWS(chatWSURL(b), tok)
	if err == nil {
		t.Error("a token used on A opened a second WebSocket on B")
	} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a token used on A, again on B: %v (response %v), want HTTP 401", err, resp)
	}

	// A → B and B → A.
	alice.sendMessage(t, "from-a", "hello from A", map[string]string{"k": "a"})
	fromA := alice.waitFor(t, "its message", messageOfRequest("from-a"))
	for _, cc := range []*chatConn{bob, carol, dave} {
		f := cc.waitFor(t, "alice's message from A", messageOfRequest("from-a"))
		eq(t, cc.name+" id", f.Id, fromA.Id)
		eq(t, cc.name+" content", f.Content, "hello from A")
		eq(t, cc.name+" sender", f.Sender.UserId, "alice")
		deepEq(t, cc.name+" sender attributes", f.Sender.Attributes, map[string]string{"node": "a"})
		deepEq(t, cc.name+" attributes", f.Attributes, map[string]string{"k": "a"})
		eq(t, cc.name+" sendTime", f.SendTime, fromA.SendTime)
	}
	bob.sendMessage(t, "from-b", "hello from B", nil)
	fromB := alice.waitFor(t, "bob's message from B", messageOfRequest("from-b"))
	eq(t, "B→A content", fromB.Content, "hello from B")
	eq(t, "B→A sender", fromB.Sender.UserId, "bob")
	deepEq(t, "B→A sender attributes", fromB.Sender.Attributes, map[string]string{"node": "b"})

	// The API of B deletes a message for the clients of A (and B).
	del, err := cb.DeleteMessage(cx, &ivschat.DeleteMessageInput{RoomIdentifier: room.Arn, Id: aws.String(fromA.Id), Reason: aws.String("via B")})
	must(t, err, "DeleteMessage on B")
	for _, cc := range []*chatConn{alice, dave, bob} {
		f := cc.waitFor(t, "aws:DELETE_MESSAGE from B's API", eventNamed("aws:DELETE_MESSAGE", "MessageID", fromA.Id))
		eq(t, cc.name+" delete event id", f.Id, aws.ToString(del.Id))
		eq(t, cc.name+" delete reason", f.Attributes["Reason"], "via B")
	}

	// The API of A sends an event to the clients of B.
	ev, err := ca.SendEvent(cx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:cross-node"), Attributes: map[string]string{"from": "A"}})
	must(t, err, "SendEvent on A")
	for _, cc := range []*chatConn{bob, carol, alice} {
		f := cc.waitFor(t, "the event from A's API", frameWithID(aws.ToString(ev.Id)))
		eq(t, cc.name+" event name", f.EventName, "app:cross-node")
		deepEq(t, cc.name+" event attributes", f.Attributes, map[string]string{"from": "A"})
	}

	// The API of A disconnects bob, who is on B; carol stays.
	_, err = ca.DisconnectUser(cx, &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("bob"), Reason: aws.String("via A")})
	must(t, err, "DisconnectUser on A")
	bob.waitFor(t, "aws:DISCONNECT_USER about itself", eventNamed("aws:DISCONNECT_USER", "UserId", "bob"))
	if code := bob.waitClosed(t, "DisconnectUser from the other node"); code != websocket.StatusNormalClosure {
		t.Errorf("bob@B closed with %d after DisconnectUser on A, want 1000", code)
	}
	alice.waitFor(t, "aws:DISCONNECT_USER about bob", eventNamed("aws:DISCONNECT_USER", "UserId", "bob"))
	carol.waitFor(t, "aws:DISCONNECT_USER about bob", eventNamed("aws:DISCONNECT_USER", "UserId", "bob"))
	carol.ready(t)

	// DeleteRoom on A closes the room's connections on both nodes.
	_, err = ca.DeleteRoom(cx, &ivschat.DeleteRoomInput{Identifier: room.Arn})
	must(t, err, "DeleteRoom on A")
	for _, cc := range []*chatConn{carol, alice, dave} {
		if code := cc.waitClosed(t, "DeleteRoom on A"); code != websocket.StatusNormalClosure {
			t.Errorf("%s closed with %d after DeleteRoom on A, want 1000", cc.name, code)
		}
	}
	_, err = cb.GetRoom(cx, &ivschat.GetRoomInput{Identifier: room.Arn})
	wantChatNotFound(t, err, "GetRoom on B after DeleteRoom on A", aws.ToString(room.Id), chattypes.ResourceTypeRoom)
}

// TestChatQuotaAcrossNATS: the chat-concurrent-connections quota is the
// account's, so two nodes on one NATS count each other's connections: with
// a quota of 2, one connection on A and one on B leave no room for a third
// on either node; once B's closes, A takes one again.
func TestChatQuotaAcrossNATS(t *testing.T) {
	t.Parallel()
	natsURL := natstest.URL(t)
	dsn := pgtest.DSN(t)
	quota := "quotas:\n  chat-concurrent-connections: 2\n"
	a := startServer(t, serverOpts{Store: dsn, Config: quota, Args: []string{"--nats-url", natsURL}})
	b := startServer(t, serverOpts{Store: dsn, Config: quota, Args: []string{"--nats-url", natsURL}})
	ca := ivschatClient(t, a)
	arn := aws.ToString(createChatRoom(t, ca, nil).Arn)
	token := func(user string) string {
		return mintChatToken(t, ca, arn, user, nil, chattypes.ChatTokenCapabilitySendMessage) // ready() sends
	}

	dialChat(t, chatWSURL(a), token("on-a"), "on-a").ready(t)
	onB := dialChat(t, chatWSURL(b), token("on-b"), "on-b")
	onB.ready(t)

	// Each node hears the other's count within about a second.
	refused := func(srv *server) bool {
		ws, resp, err := dialChatWS(chatWSURL(srv), token("third"))
		if err == nil {
			_ = ws.Close(websocket.StatusNormalClosure, "")
			return false
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("third connection: %v (response %v), want HTTP 429 or success", err, resp)
		}
		return true
	}
	for _, srv := range []*server{a, b} {
		deadline := time.Now().Add(chatWait)
		for !refused(srv) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d still admits a third connection with one open on each node and a quota of 2", srv.HTTP)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	_ = onB.ws.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(chatWait)
	for refused(a) {
		if time.Now().After(deadline) {
			t.Fatal("A still refuses a second connection after B's closed")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
