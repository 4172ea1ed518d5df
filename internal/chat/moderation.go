package chat

import (
	"context"
	"errors"

	"github.com/openivs/openivs/internal/awsapi"
)

// errNoMessaging fails SendEvent, DeleteMessage and DisconnectUser while
// no Broadcaster is set: answering success would claim a delivery that
// never happened. It becomes InternalServerException.
var errNoMessaging = errors.New("chat: messaging is not connected (no Broadcaster set)")

func (s *Service) messaging() (Broadcaster, error) {
	if b := s.broadcaster.Load(); b != nil && *b != nil {
		return *b, nil
	}
	return nil, errNoMessaging
}

// broadcastError maps what the Broadcaster answered: API errors pass
// through, a room gone meanwhile is ResourceNotFoundException, anything
// else an internal error.
func broadcastError(roomARN string, err error) error {
	var ae *awsapi.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrRoomNotFound):
		return notFound(KindRoom, roomARN)
	}
	return err
}

func (s *Service) sendEvent(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		RoomIdentifier string            `json:"roomIdentifier"`
		EventName      string            `json:"eventName"`
		Attributes     map[string]string `json:"attributes"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if n := attributesLen(in.Attributes); n > maxAttributeLen {
		return nil, validation("attributes", "the attributes are %d bytes long; at most %d are allowed.", n, maxAttributeLen)
	}
	b, err := s.roomBroadcaster(ctx, call.Account, in.RoomIdentifier)
	if err != nil {
		return nil, err
	}
	attrs := in.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	id, err := b.SendEvent(ctx, in.RoomIdentifier, in.EventName, attrs)
	if err != nil {
		return nil, broadcastError(in.RoomIdentifier, err)
	}
	return map[string]any{"id": id}, nil
}

func (s *Service) deleteMessage(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		RoomIdentifier string `json:"roomIdentifier"`
		ID             string `json:"id"`
		Reason         string `json:"reason"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	b, err := s.roomBroadcaster(ctx, call.Account, in.RoomIdentifier)
	if err != nil {
		return nil, err
	}
	id, err := b.DeleteMessage(ctx, in.RoomIdentifier, in.ID, in.Reason)
	if err != nil {
		return nil, broadcastError(in.RoomIdentifier, err)
	}
	return map[string]any{"id": id}, nil
}

func (s *Service) disconnectUser(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		RoomIdentifier string `json:"roomIdentifier"`
		UserID         string `json:"userId"`
		Reason         string `json:"reason"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	b, err := s.roomBroadcaster(ctx, call.Account, in.RoomIdentifier)
	if err != nil {
		return nil, err
	}
	if err := b.DisconnectUser(ctx, in.RoomIdentifier, in.UserID, in.Reason); err != nil {
		return nil, broadcastError(in.RoomIdentifier, err)
	}
	return struct{}{}, nil
}

// roomBroadcaster checks that the room exists (its identifier is then the
// exact ARN messaging keys rooms by) and returns the messaging side.
func (s *Service) roomBroadcaster(ctx context.Context, account, roomARN string) (Broadcaster, error) {
	if _, err := s.lookup(ctx, account, KindRoom, roomARN); err != nil {
		return nil, err
	}
	return s.messaging()
}
