package messaging

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzNATSEnvelope: what another node (or anything that can publish on the
// chat subjects) sends is decoded without panics, and whatever decodes
// round-trips through encodeEnvelope unchanged.
func FuzzNATSEnvelope(f *testing.F) {
	f.Add("arn:aws:ivschat:us-west-2:123456789012:room/abc", "alice", "", "DisconnectUser", []byte(`{"Type":"EVENT"}`))
	f.Add("arn%3Aroom", "%zz", "1", "", []byte{})
	f.Add("", "", "yes", "SendMessage", []byte("x"))
	f.Add("r", " bob\r\n", "1", "Nope", []byte(nil))
	f.Fuzz(func(t *testing.T, room, user, changed, action string, data []byte) {
		m := &nats.Msg{Subject: "s", Header: nats.Header{}, Data: data}
		m.Header.Set(hdrRoom, room)
		if user != "" {
			m.Header.Set(hdrDisconnectUser, user)
		}
		if changed != "" {
			m.Header.Set(hdrRoomChanged, changed)
		}
		if action != "" {
			m.Header.Set(hdrAction, action)
		}
		env, err := decodeEnvelope(m)
		if err != nil {
			return
		}
		if env.Room == "" || (len(env.Frame) == 0 && !env.RoomChanged) {
			t.Fatalf("decoded an envelope it should refuse: %+v", env)
		}
		again, err := decodeEnvelope(encodeEnvelope("s", env))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", env, err)
		}
		if again.Room != env.Room || again.DisconnectUser != env.DisconnectUser || again.RoomChanged != env.RoomChanged || again.Action != env.Action || string(again.Frame) != string(env.Frame) {
			t.Fatalf("round trip changed %+v into %+v", env, again)
		}
	})
}

// FuzzPeerCount: another node's connection count message is decoded
// without panics and only within bounds.
func FuzzPeerCount(f *testing.F) {
	f.Add("node1", []byte("12"))
	f.Add("", []byte("3"))
	f.Add("x", []byte("-1"))
	f.Add("x", []byte("99999999999999999999"))
	f.Fuzz(func(t *testing.T, id string, data []byte) {
		m := &nats.Msg{Subject: "s", Header: nats.Header{}, Data: data}
		if id != "" {
			m.Header.Set(hdrNode, id)
		}
		got, n, err := decodePeerCount(m)
		if err != nil {
			return
		}
		if got == "" || n < 0 || n > maxPeerCount {
			t.Fatalf("decoded %q %d from %q %q", got, n, id, data)
		}
	})
}
