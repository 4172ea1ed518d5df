package messaging

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/openivs/openivs/internal/chat"
)

// handle carries out a parsed, valid request of c. Failures are answered
// to c alone as ERROR entities carrying the request's RequestId.
func (s *Server) handle(c *conn, req Request, now time.Time) {
	s.cfg.Observer.Request(metricAction(req.Action))
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.ControlTimeout)
	defer cancel()
	switch req.Action {
	case ActionSendMessage:
		s.sendMessage(ctx, c, req, now)
	case ActionDeleteMessage:
		if !c.grant.Can(chat.CapDeleteMessage) {
			c.sendError(req.RequestID, CodeForbidden, forbidden(chat.CapDeleteMessage))
			return
		}
		ev := deleteEvent(req.RequestID, req.ID, req.Reason, now)
		s.publishOrFail(ctx, c, req.RequestID, Envelope{Room: c.grant.RoomARN, Frame: mustJSON(ev), Action: MetricDeleteMessage})
	case ActionDisconnectUser:
		if !c.grant.Can(chat.CapDisconnectUser) {
			c.sendError(req.RequestID, CodeForbidden, forbidden(chat.CapDisconnectUser))
			return
		}
		ev := disconnectEvent(req.RequestID, req.UserID, req.Reason, now)
		s.publishOrFail(ctx, c, req.RequestID, Envelope{Room: c.grant.RoomARN, Frame: mustJSON(ev), DisconnectUser: req.UserID, Action: MetricDisconnectUser})
	}
}

func forbidden(capability string) string {
	return "Forbidden: the connection does not have the " + capability + " capability"
}

func (s *Server) sendMessage(ctx context.Context, c *conn, req Request, now time.Time) {
	if !c.grant.Can(chat.CapSendMessage) {
		c.sendError(req.RequestID, CodeForbidden, forbidden(chat.CapSendMessage))
		return
	}
	settings, err := c.room.lookup(ctx, s.cfg.Control, s.cfg.RoomTTL, now)
	switch {
	case errors.Is(err, chat.ErrRoomNotFound):
		c.sendError(req.RequestID, CodeNotFound, "Room not found")
		return
	case err != nil:
		s.log.Warn("chat: look up room", "room", c.grant.RoomARN, "err", err)
		c.sendError(req.RequestID, CodeInternalServerError, "Internal server error")
		return
	}
	if max := settings.MaximumMessageLength; max > 0 && utf8.RuneCountInString(*req.Content) > max {
		c.sendError(req.RequestID, CodeBadRequest, fmt.Sprintf("Messages must be at most %d characters", max))
		return
	}
	if !c.room.allowMessage(settings.MaximumMessageRatePerSecond, now) {
		c.sendError(req.RequestID, CodeTooManyRequests, "Room message rate exceeded")
		return
	}
	msg := &Message{
		Type:       TypeMessage,
		ID:         newID(),
		RequestID:  req.RequestID,
		Content:    *req.Content,
		Attributes: req.Attributes,
		SendTime:   sendTime(now),
		Sender:     Sender{UserID: c.grant.UserID, Attributes: c.grant.Attributes},
	}
	if settings.ReviewHandler != nil && !s.review(ctx, settings, msg, c.ip) {
		c.sendError(req.RequestID, CodeNotAcceptable, "Message denied by the room's message review handler")
		return
	}
	s.publishOrFail(ctx, c, req.RequestID, Envelope{Room: c.grant.RoomARN, Frame: mustJSON(msg), Action: MetricSendMessage})
}

// publishOrFail publishes env; the client hears of a bus failure.
func (s *Server) publishOrFail(ctx context.Context, c *conn, requestID string, env Envelope) {
	if err := s.cfg.Bus.Publish(ctx, env); err != nil {
		s.log.Error("chat: publish", "room", env.Room, "err", err)
		c.sendError(requestID, CodeInternalServerError, "Internal server error")
	}
}

// deleteEvent is the aws:DELETE_MESSAGE event the SDK turns into a
// messageDelete (Attributes MessageID and Reason).
func deleteEvent(requestID, messageID, reason string, now time.Time) Event {
	attrs := map[string]string{"MessageID": messageID}
	if reason != "" {
		attrs["Reason"] = reason
	}
	return newEvent(requestID, EventDeleteMessage, attrs, now)
}

// disconnectEvent is the aws:DISCONNECT_USER event the SDK turns into a
// userDisconnect (Attributes UserId and Reason).
func disconnectEvent(requestID, userID, reason string, now time.Time) Event {
	attrs := map[string]string{"UserId": userID}
	if reason != "" {
		attrs["Reason"] = reason
	}
	return newEvent(requestID, EventDisconnectUser, attrs, now)
}

func newEvent(requestID, name string, attrs map[string]string, now time.Time) Event {
	return Event{Type: TypeEvent, ID: newID(), RequestID: requestID, EventName: name, Attributes: attrs, SendTime: sendTime(now)}
}
