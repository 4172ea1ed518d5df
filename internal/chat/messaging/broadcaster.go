package messaging

import (
	"context"
	"errors"
)

// The chat.Broadcaster side: the control plane's SendEvent, DeleteMessage
// and DisconnectUser. Their events carry no RequestId (no client asked)
// and are not subject to the room's message rate.

var errNoRoom = errors.New("messaging: room ARN is required")

// SendEvent sends an application event (any name) to everyone in the room.
func (s *Server) SendEvent(ctx context.Context, roomARN, eventName string, attributes map[string]string) (string, error) {
	if roomARN == "" {
		return "", errNoRoom
	}
	s.cfg.Observer.Request(MetricSendEvent)
	ev := newEvent("", eventName, attributes, s.cfg.Now())
	return ev.ID, s.cfg.Bus.Publish(ctx, Envelope{Room: roomARN, Frame: mustJSON(ev), Action: MetricSendEvent})
}

// DeleteMessage tells everyone in the room to delete a message.
func (s *Server) DeleteMessage(ctx context.Context, roomARN, messageID, reason string) (string, error) {
	if roomARN == "" {
		return "", errNoRoom
	}
	s.cfg.Observer.Request(MetricDeleteMessage)
	ev := deleteEvent("", messageID, reason, s.cfg.Now())
	return ev.ID, s.cfg.Bus.Publish(ctx, Envelope{Room: roomARN, Frame: mustJSON(ev), Action: MetricDeleteMessage})
}

// DisconnectUser tells everyone in the room, then closes every connection
// of the user in the room, on every node.
func (s *Server) DisconnectUser(ctx context.Context, roomARN, userID, reason string) error {
	if roomARN == "" {
		return errNoRoom
	}
	s.cfg.Observer.Request(MetricDisconnectUser)
	ev := disconnectEvent("", userID, reason, s.cfg.Now())
	return s.cfg.Bus.Publish(ctx, Envelope{Room: roomARN, Frame: mustJSON(ev), DisconnectUser: userID, Action: MetricDisconnectUser})
}
