package messaging

import (
	"context"

	"github.com/openivs/openivs/internal/chat"
)

// ReviewFunc reviews one message of a room that has a
// messageReviewHandler, as IVS invokes the room's Lambda; senderIP is the
// sending client's address. ctx carries the review timeout. An error (or
// running out of time) lets the room's fallbackResult decide.
type ReviewFunc func(ctx context.Context, room *chat.Room, msg *Message, senderIP string) (ReviewResult, error)

// ReviewResult is a review handler's answer.
type ReviewResult struct {
	Allow bool
	// Content replaces the message's content when not empty.
	Content string
	// Attributes replace the message's attributes when not nil.
	Attributes map[string]string
}

// review reports whether msg may be delivered, applying the handler's
// changes to it.
func (s *Server) review(ctx context.Context, room *chat.Room, msg *Message, senderIP string) bool {
	fallback := room.ReviewHandler.FallbackResult != "DENY" // IVS default: ALLOW
	if s.cfg.Review == nil {
		s.cfg.Observer.ReviewFailed(room.ReviewHandler.URI, errNoReviewer)
		return fallback
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReviewTimeout)
	defer cancel()
	res, err := s.cfg.Review(ctx, room, msg, senderIP)
	if err == nil {
		err = ctx.Err() // an answer after the deadline is not used
	}
	if err != nil {
		s.cfg.Observer.ReviewFailed(room.ReviewHandler.URI, err)
		return fallback
	}
	if !res.Allow {
		return false
	}
	if res.Content != "" {
		msg.Content = res.Content
	}
	if res.Attributes != nil {
		msg.Attributes = res.Attributes
	}
	return true
}
