package chat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// Room defaults (CreateRoom: "Default: 500", "Default: 10").
const (
	DefaultMaximumMessageLength        = 500
	DefaultMaximumMessageRatePerSecond = 10
)

// MessageReviewHandler is the API shape of the same name.
type MessageReviewHandler struct {
	URI            string `json:"uri"`
	FallbackResult string `json:"fallbackResult"`
}

// roomDoc is what the store keeps for a room.
type roomDoc struct {
	Name                            string                `json:"name"`
	MaximumMessageLength            int                   `json:"maximumMessageLength"`
	MaximumMessageRatePerSecond     int                   `json:"maximumMessageRatePerSecond"`
	MessageReviewHandler            *MessageReviewHandler `json:"messageReviewHandler,omitempty"`
	LoggingConfigurationIdentifiers []string              `json:"loggingConfigurationIdentifiers"`
}

// RoomOut is the room as CreateRoom, GetRoom and UpdateRoom answer it.
type RoomOut struct {
	Arn                             string                `json:"arn"`
	ID                              string                `json:"id"`
	Name                            string                `json:"name"`
	CreateTime                      string                `json:"createTime"`
	UpdateTime                      string                `json:"updateTime"`
	MaximumMessageLength            int                   `json:"maximumMessageLength"`
	MaximumMessageRatePerSecond     int                   `json:"maximumMessageRatePerSecond"`
	MessageReviewHandler            *MessageReviewHandler `json:"messageReviewHandler,omitempty"`
	LoggingConfigurationIdentifiers []string              `json:"loggingConfigurationIdentifiers"`
	Tags                            map[string]string     `json:"tags"`
}

// RoomSummary is the API shape of the same name (ListRooms).
type RoomSummary struct {
	Arn                             string                `json:"arn"`
	ID                              string                `json:"id"`
	Name                            string                `json:"name"`
	CreateTime                      string                `json:"createTime"`
	UpdateTime                      string                `json:"updateTime"`
	MessageReviewHandler            *MessageReviewHandler `json:"messageReviewHandler,omitempty"`
	LoggingConfigurationIdentifiers []string              `json:"loggingConfigurationIdentifiers"`
	Tags                            map[string]string     `json:"tags"`
}

// roomSettings are the members CreateRoom and UpdateRoom share; nil means
// "not given".
type roomSettings struct {
	Name                        *string `json:"name"`
	MaximumMessageLength        *int    `json:"maximumMessageLength"`
	MaximumMessageRatePerSecond *int    `json:"maximumMessageRatePerSecond"`
	MessageReviewHandler        *struct {
		URI            *string `json:"uri"`
		FallbackResult *string `json:"fallbackResult"`
	} `json:"messageReviewHandler"`
	LoggingConfigurationIdentifiers *[]string `json:"loggingConfigurationIdentifiers"`
}

// apply merges the settings given into d. The model has checked ranges,
// patterns and enums already.
func (in *roomSettings) apply(d *roomDoc) {
	if in.Name != nil {
		d.Name = *in.Name
	}
	if in.MaximumMessageLength != nil {
		d.MaximumMessageLength = *in.MaximumMessageLength
	}
	if in.MaximumMessageRatePerSecond != nil {
		d.MaximumMessageRatePerSecond = *in.MaximumMessageRatePerSecond
	}
	if h := in.MessageReviewHandler; h != nil {
		// "Specify an empty uri string to disassociate a message review
		// handler" (UpdateRoom); a handler without a uri is no handler.
		if h.URI == nil || *h.URI == "" {
			d.MessageReviewHandler = nil
		} else {
			fallback := "ALLOW" // FallbackResult "Default: ALLOW"
			if h.FallbackResult != nil && *h.FallbackResult != "" {
				fallback = *h.FallbackResult
			}
			d.MessageReviewHandler = &MessageReviewHandler{URI: *h.URI, FallbackResult: fallback}
		}
	}
	if in.LoggingConfigurationIdentifiers != nil {
		d.LoggingConfigurationIdentifiers = dedupe(*in.LoggingConfigurationIdentifiers)
	}
}

func dedupe(list []string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// checkLoggingRefs answers ResourceNotFoundException for a logging
// configuration that is not the caller's.
func (s *Service) checkLoggingRefs(ctx context.Context, account string, arns []string) error {
	for _, arn := range arns {
		if _, err := s.lookup(ctx, account, KindLoggingConfiguration, arn); err != nil {
			return err
		}
	}
	return nil
}

func decodeRoom(r *store.Resource) (*roomDoc, error) {
	var d roomDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return nil, err
	}
	if d.LoggingConfigurationIdentifiers == nil {
		d.LoggingConfigurationIdentifiers = []string{}
	}
	return &d, nil
}

func roomOut(r *store.Resource) (*RoomOut, error) {
	d, err := decodeRoom(r)
	if err != nil {
		return nil, err
	}
	return &RoomOut{
		Arn: r.ARN, ID: idOf(r.ARN), Name: d.Name,
		CreateTime: isoTime(r.CreatedAt), UpdateTime: isoTime(r.UpdatedAt),
		MaximumMessageLength: d.MaximumMessageLength, MaximumMessageRatePerSecond: d.MaximumMessageRatePerSecond,
		MessageReviewHandler: d.MessageReviewHandler, LoggingConfigurationIdentifiers: d.LoggingConfigurationIdentifiers,
		Tags: tagsOrEmpty(r.Tags),
	}, nil
}

func (s *Service) createRoom(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		roomSettings
		Tags map[string]string `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	d := &roomDoc{
		MaximumMessageLength:            DefaultMaximumMessageLength,
		MaximumMessageRatePerSecond:     DefaultMaximumMessageRatePerSecond,
		LoggingConfigurationIdentifiers: []string{},
	}
	in.apply(d)
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	if err := s.checkLoggingRefs(ctx, call.Account, d.LoggingConfigurationIdentifiers); err != nil {
		return nil, err
	}
	doc, _ := json.Marshal(d)
	r := &store.Resource{
		ARN: s.arn(call.Account, KindRoom, randomID(12)), Kind: KindRoom, Account: call.Account,
		Name: d.Name, Refs: d.LoggingConfigurationIdentifiers, Tags: in.Tags, Doc: doc,
	}
	err := s.store.Insert(ctx, r, store.Quota{Max: s.cfg.Quotas.Rooms})
	if errors.Is(err, store.ErrQuotaExceeded) {
		return nil, quotaExceeded(KindRoom, call.Account, s.cfg.Quotas.Rooms)
	} else if err != nil {
		// A logging configuration deleted since the check: *MissingError.
		return nil, storeError(err)
	}
	return roomOut(r)
}

func (s *Service) getRoom(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Identifier string `json:"identifier"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.lookup(ctx, call.Account, KindRoom, in.Identifier)
	if err != nil {
		return nil, err
	}
	return roomOut(r)
}

func (s *Service) updateRoom(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Identifier string `json:"identifier"`
		roomSettings
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call.Account, KindRoom, in.Identifier); err != nil {
		return nil, err
	}
	if in.LoggingConfigurationIdentifiers != nil {
		if err := s.checkLoggingRefs(ctx, call.Account, dedupe(*in.LoggingConfigurationIdentifiers)); err != nil {
			return nil, err
		}
	}
	updated, err := s.store.Update(ctx, in.Identifier, func(r *store.Resource) error {
		d, err := decodeRoom(r)
		if err != nil {
			return err
		}
		in.apply(d)
		r.Doc, _ = json.Marshal(d)
		r.Name, r.Refs = d.Name, d.LoggingConfigurationIdentifiers
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(KindRoom, in.Identifier)
	} else if err != nil {
		return nil, storeError(err)
	}
	s.notifyRoom(updated.ARN)
	return roomOut(updated)
}

func (s *Service) deleteRoom(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Identifier string `json:"identifier"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call.Account, KindRoom, in.Identifier); err != nil {
		return nil, err
	}
	// The room's unredeemed chat tokens are its children and go with it.
	err := s.store.Delete(ctx, in.Identifier)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(KindRoom, in.Identifier)
	} else if err != nil {
		return nil, storeError(err)
	}
	s.notifyRoom(in.Identifier)
	return nil, nil
}

func (s *Service) listRooms(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Name                           string  `json:"name"`
		MessageReviewHandlerURI        string  `json:"messageReviewHandlerUri"`
		LoggingConfigurationIdentifier string  `json:"loggingConfigurationIdentifier"`
		MaxResults                     *int    `json:"maxResults"`
		NextToken                      *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	q := store.Query{Kind: KindRoom, Account: call.Account, Name: in.Name, Ref: in.LoggingConfigurationIdentifier}
	if in.LoggingConfigurationIdentifier != "" {
		if _, err := s.lookup(ctx, call.Account, KindLoggingConfiguration, in.LoggingConfigurationIdentifier); err != nil {
			return nil, err
		}
	}
	// The store indexes name and references; the handler URI is matched
	// here.
	var keep func(*store.Resource) bool
	if uri := in.MessageReviewHandlerURI; uri != "" {
		keep = func(r *store.Resource) bool {
			d, err := decodeRoom(r)
			return err == nil && d.MessageReviewHandler != nil && d.MessageReviewHandler.URI == uri
		}
	}
	filters := "name=" + in.Name + "\x00ref=" + in.LoggingConfigurationIdentifier + "\x00handler=" + in.MessageReviewHandlerURI
	items, next, err := s.paginate(ctx, call, q, filters, in.MaxResults, in.NextToken, keep)
	if err != nil {
		return nil, err
	}
	rooms := make([]RoomSummary, 0, len(items))
	for _, r := range items {
		o, err := roomOut(r)
		if err != nil {
			return nil, err
		}
		rooms = append(rooms, RoomSummary{
			Arn: o.Arn, ID: o.ID, Name: o.Name, CreateTime: o.CreateTime, UpdateTime: o.UpdateTime,
			MessageReviewHandler: o.MessageReviewHandler, LoggingConfigurationIdentifiers: o.LoggingConfigurationIdentifiers,
			Tags: o.Tags,
		})
	}
	return listOut("rooms", rooms, next), nil
}

// Room returns a room's settings as messaging enforces them, whatever its
// account; ErrRoomNotFound when there is no such room.
func (s *Service) Room(ctx context.Context, arn string) (*Room, error) {
	if a, ok := parseARN(arn); !ok || a.Kind != KindRoom {
		return nil, ErrRoomNotFound
	}
	r, err := s.store.Get(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrRoomNotFound
	} else if err != nil {
		return nil, err
	}
	if r.Kind != KindRoom {
		return nil, ErrRoomNotFound
	}
	d, err := decodeRoom(r)
	if err != nil {
		return nil, err
	}
	room := &Room{
		ARN: r.ARN, MaximumMessageLength: d.MaximumMessageLength,
		MaximumMessageRatePerSecond: d.MaximumMessageRatePerSecond,
		LoggingConfigurationARNs:    slices.Clone(d.LoggingConfigurationIdentifiers),
	}
	if h := d.MessageReviewHandler; h != nil {
		room.ReviewHandler = &ReviewHandler{URI: h.URI, FallbackResult: h.FallbackResult}
	}
	return room, nil
}
