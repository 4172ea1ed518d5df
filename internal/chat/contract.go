// Package chat serves IVS Chat: the control-plane API (rooms, logging
// configurations, chat tokens, SendEvent/DeleteMessage/DisconnectUser)
// and, in chat/messaging, the WebSocket messaging the official
// amazon-ivs-chat-messaging SDK speaks. This file is the contract between
// the two halves.
package chat

import (
	"context"
	"errors"
	"time"
)

// Capabilities a chat token may grant (CreateChatToken.capabilities).
const (
	CapSendMessage    = "SEND_MESSAGE"
	CapDeleteMessage  = "DELETE_MESSAGE"
	CapDisconnectUser = "DISCONNECT_USER"
)

// Grant is what a redeemed chat token gives one WebSocket connection.
type Grant struct {
	RoomARN        string
	UserID         string
	Attributes     map[string]string
	Capabilities   []string
	SessionExpires time.Time
}

// Can reports whether the grant has capability c.
func (g *Grant) Can(c string) bool {
	for _, have := range g.Capabilities {
		if have == c {
			return true
		}
	}
	return false
}

// Room is a room's settings as messaging enforces them.
type Room struct {
	ARN                         string
	MaximumMessageLength        int // characters (runes)
	MaximumMessageRatePerSecond int
	// ReviewHandler is nil when the room has none.
	ReviewHandler            *ReviewHandler
	LoggingConfigurationARNs []string
}

// ReviewHandler is a room's messageReviewHandler.
type ReviewHandler struct {
	URI            string // a Lambda ARN, as in IVS
	FallbackResult string // ALLOW or DENY
}

// Errors of RedeemToken.
var (
	// ErrTokenInvalid: unknown, malformed, already used or expired token.
	ErrTokenInvalid = errors.New("chat: token is invalid, used or expired")
	// ErrRoomNotFound: the room does not exist (any more).
	ErrRoomNotFound = errors.New("chat: room not found")
)

// Broadcaster is the messaging side as the control plane drives it (the
// SendEvent, DeleteMessage and DisconnectUser operations). Each returns
// once the entity is handed to every node's fan-out.
type Broadcaster interface {
	SendEvent(ctx context.Context, roomARN, eventName string, attributes map[string]string) (id string, err error)
	DeleteMessage(ctx context.Context, roomARN, messageID, reason string) (id string, err error)
	DisconnectUser(ctx context.Context, roomARN, userID, reason string) error
}
