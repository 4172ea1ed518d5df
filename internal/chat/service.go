package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// Resource kinds; each is also the resource type in its ARN.
const (
	KindRoom                 = "room"
	KindLoggingConfiguration = "logging-configuration"
	// KindChatToken is an unredeemed chat token (parent = room, so
	// deleting the room deletes its tokens); never visible through the API.
	KindChatToken = "chat-token"
	// KindChatCluster names the nodes sharing the store, so that they
	// find each other on NATS (ClusterID); never visible through the API.
	KindChatCluster = "chat-cluster"
)

// Config wires the service.
type Config struct {
	Store     store.Store
	Region    string
	AccountID string
	Logger    *slog.Logger
	Quotas    Quotas
	// RateLimits are per-operation requests per second (DefaultRateLimits).
	RateLimits map[string]float64
	// TokenValidity is how long a chat token can be redeemed after
	// CreateChatToken (DefaultTokenValidity when zero).
	TokenValidity time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
}

// DefaultTokenValidity: "The token is valid for one minute, and a
// connection (session) established with the token is valid for the
// specified duration" (IVS Chat API reference, CreateChatToken).
const DefaultTokenValidity = time.Minute

// Quotas are IVS Chat's resource quotas, all configurable; 0 is unlimited.
type Quotas struct {
	Rooms                 int
	LoggingConfigurations int
	// ConcurrentConnections bounds an account's chat connections across
	// its rooms; messaging enforces it.
	ConcurrentConnections int
}

// DefaultQuotas are IVS Chat's defaults ("IVS Chat Service Quotas").
func DefaultQuotas() Quotas {
	return Quotas{Rooms: 50000, LoggingConfigurations: 10, ConcurrentConnections: 50000}
}

// quotaFields maps configuration names (as in the YAML file) to fields.
// They carry a chat- prefix: the quotas map is shared with IVS's.
func (q *Quotas) quotaFields() map[string]*int {
	return map[string]*int{
		"chat-rooms":                  &q.Rooms,
		"chat-logging-configurations": &q.LoggingConfigurations,
		"chat-concurrent-connections": &q.ConcurrentConnections,
	}
}

// QuotaNames are the configuration names Quotas.Set accepts.
func QuotaNames() []string {
	return []string{"chat-rooms", "chat-logging-configurations", "chat-concurrent-connections"}
}

// Set changes one quota by its configuration name.
func (q *Quotas) Set(name string, v int) error {
	if v < 0 {
		return fmt.Errorf("quota %s: must not be negative", name)
	}
	f, ok := q.quotaFields()[name]
	if !ok {
		return fmt.Errorf("unknown quota %q", name)
	}
	*f = v
	return nil
}

// DefaultRateLimits are IVS Chat's API call-rate quotas in requests per
// second per account ("IVS Chat Service Quotas").
func DefaultRateLimits() map[string]float64 {
	limits := map[string]float64{}
	set := func(tps float64, ops ...string) {
		for _, op := range ops {
			limits[op] = tps
		}
	}
	set(100, "DeleteMessage", "DisconnectUser", "SendEvent")
	set(200, "CreateChatToken")
	set(3, "CreateLoggingConfiguration", "DeleteLoggingConfiguration", "GetLoggingConfiguration",
		"ListLoggingConfigurations", "UpdateLoggingConfiguration")
	set(5, "CreateRoom", "DeleteRoom", "GetRoom", "ListRooms", "UpdateRoom")
	set(10, "ListTagsForResource", "TagResource", "UntagResource")
	return limits
}

// Service implements the IVS Chat control-plane API and the token and room
// look-ups messaging needs.
type Service struct {
	cfg   Config
	store store.Store
	log   *slog.Logger
	model *awsapi.Model
	now   func() time.Time
	res   awsapi.Resources

	broadcaster atomic.Pointer[Broadcaster]
	// roomChanged is told after UpdateRoom and DeleteRoom on this node.
	roomChanged atomic.Pointer[func(roomARN string)]
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("chat: no store")
	}
	if cfg.Region == "" || cfg.AccountID == "" {
		return nil, errors.New("chat: region and account id are required")
	}
	if cfg.Quotas == (Quotas{}) {
		cfg.Quotas = DefaultQuotas()
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = DefaultRateLimits()
	}
	if cfg.TokenValidity <= 0 {
		cfg.TokenValidity = DefaultTokenValidity
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	model, err := awsapi.LoadModel("ivschat")
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger, model: model, now: cfg.Now,
		res: awsapi.Resources{
			Store: cfg.Store, Service: "ivschat", Region: cfg.Region, NotFound: notFound,
			// Chat tokens are no API resource.
			Taggable: []string{KindRoom, KindLoggingConfiguration},
		}}, nil
}

// SetBroadcaster connects messaging (called by internal/app). Until it is
// called SendEvent, DeleteMessage and DisconnectUser fail.
func (s *Service) SetBroadcaster(b Broadcaster) { s.broadcaster.Store(&b) }

// SetRoomListener registers fn, called after a room is updated or deleted
// through this node's API, so that local messaging can apply the change at
// once (other nodes learn of it when they next read the room).
func (s *Service) SetRoomListener(fn func(roomARN string)) { s.roomChanged.Store(&fn) }

func (s *Service) notifyRoom(arn string) {
	if fn := s.roomChanged.Load(); fn != nil && *fn != nil {
		(*fn)(arn)
	}
}

// API returns the service for mounting on an awsapi.Server.
func (s *Service) API() *awsapi.Service {
	ops := map[string]awsapi.Handler{
		"CreateRoom": s.createRoom,
		"GetRoom":    s.getRoom,
		"UpdateRoom": s.updateRoom,
		"DeleteRoom": s.deleteRoom,
		"ListRooms":  s.listRooms,

		"CreateLoggingConfiguration": s.createLoggingConfiguration,
		"GetLoggingConfiguration":    s.getLoggingConfiguration,
		"UpdateLoggingConfiguration": s.updateLoggingConfiguration,
		"DeleteLoggingConfiguration": s.deleteLoggingConfiguration,
		"ListLoggingConfigurations":  s.listLoggingConfigurations,

		"CreateChatToken": s.createChatToken,
		"SendEvent":       s.sendEvent,
		"DeleteMessage":   s.deleteMessage,
		"DisconnectUser":  s.disconnectUser,

		"TagResource":         s.res.TagResource,
		"UntagResource":       s.res.UntagResource,
		"ListTagsForResource": s.res.ListTagsForResource,
	}
	return &awsapi.Service{
		SigningName: "ivschat",
		Model:       s.model,
		Operations:  ops,
		RateLimits:  s.cfg.RateLimits,
		// No other API signs as ivschat, so the /tags/{resourceArn} routes
		// are IVS Chat's whatever the ARN: the model's ResourceArn pattern
		// rejects another service's ARN with a ValidationException, as
		// IVS Chat does.
		OwnsARN:           nil,
		ThrottledResource: throttledRoom,
	}
}

// throttledRoom names the room of a throttled call: IVS Chat's
// ThrottlingException, declared by the room-scoped SendEvent,
// DeleteMessage and DisconnectUser, has resourceType ROOM (its only value)
// and the room's id.
func throttledRoom(_ string, input json.RawMessage) (string, string) {
	var in struct {
		RoomIdentifier string `json:"roomIdentifier"`
	}
	if json.Unmarshal(input, &in) != nil || in.RoomIdentifier == "" {
		return "", ""
	}
	return resourceTypes[KindRoom], idOf(in.RoomIdentifier)
}

// ARN is a parsed IVS Chat ARN.
type ARN = awsapi.ARN

func parseARN(s string) (ARN, bool) { return awsapi.ParseARN("ivschat", s) }

// arn builds the ARN of a resource of an account in this region.
func (s *Service) arn(account, kind, id string) string { return s.res.ARN(account, kind, id) }

// lookup reads a resource of the caller's account, answering
// ResourceNotFoundException for anything else (another account or region,
// another kind, or missing).
func (s *Service) lookup(ctx context.Context, account, kind, arn string) (*store.Resource, error) {
	return s.res.Lookup(ctx, account, kind, arn)
}

// randomID returns n random alphanumeric characters (IVS Chat ids are 12).
func randomID(n int) string { return awsapi.RandomID(n) }

// isoTime renders a timestamp as IVS Chat does: ISO 8601, UTC.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func tagsOrEmpty(t map[string]string) map[string]string { return awsapi.TagsOrEmpty(t) }

func validateTags(tags map[string]string) error { return awsapi.ValidateTags(tags) }

// listOut is a list response; nextToken is left out on the last page.
func listOut(key string, items any, next *string) map[string]any {
	return awsapi.ListOutput(key, items, next)
}

// paginate lists one page of q, keeping only the resources keep accepts
// (nil keeps all), and returns the next token when more remain. filters
// identifies the listing so that a token cannot be replayed elsewhere.
func (s *Service) paginate(ctx context.Context, call *awsapi.Call, q store.Query, filters string, maxResults *int, nextToken *string, keep func(*store.Resource) bool) ([]*store.Resource, *string, error) {
	return awsapi.Paginate(ctx, s.store, call, q, awsapi.Page{
		Filters: filters, MaxResults: maxResults, NextToken: nextToken, Keep: keep,
		DefaultMax: 50, // ListRooms and ListLoggingConfigurations: "Default: 50"
	})
}

// ClusterID is a random id every node sharing the store gets the same of,
// made on first use: the nodes that share rooms, and so the account's
// connection quota, use it to find each other.
func (s *Service) ClusterID(ctx context.Context) (string, error) {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	doc, _ := json.Marshal(hex.EncodeToString(id))
	r, err := store.GetOrInsert(ctx, s.store, &store.Resource{
		ARN: s.arn(s.cfg.AccountID, KindChatCluster, "default"), Kind: KindChatCluster, Account: s.cfg.AccountID, Doc: doc,
	})
	if err != nil {
		return "", err
	}
	var got string
	if err := json.Unmarshal(r.Doc, &got); err != nil || got == "" {
		return "", errors.New("chat: the stored cluster id is damaged")
	}
	return got, nil
}
