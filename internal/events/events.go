// Package events builds IVS events in the EventBridge envelope and hands
// them to publishers. This first cut logs them; the events issue adds the
// durable outbox and the webhook and NATS sinks behind the same Publisher.
package events

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"
)

// Detail types of the IVS low-latency events (spec 05 §1.2).
const (
	StreamStateChange     = "IVS Stream State Change"
	StreamHealthChange    = "IVS Stream Health Change"
	LimitBreach           = "IVS Limit Breach"
	RecordingStateChange  = "IVS Recording State Change"
	Source                = "aws.ivs"
	envelopeVersionNumber = "0"
)

// Event is one event in the EventBridge envelope.
type Event struct {
	Version    string         `json:"version"`
	ID         string         `json:"id"`
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Account    string         `json:"account"`
	Time       string         `json:"time"`
	Region     string         `json:"region"`
	Resources  []string       `json:"resources"`
	Detail     map[string]any `json:"detail"`
}

// New builds an event that happened at at; resources is the channel ARN,
// or nothing for account-level limit breaches.
func New(detailType, account, region string, at time.Time, detail map[string]any, resources ...string) Event {
	if resources == nil {
		resources = []string{}
	}
	return Event{
		Version: envelopeVersionNumber, ID: uuid(), DetailType: detailType, Source: Source,
		Account: account, Time: at.UTC().Format(time.RFC3339), Region: region,
		Resources: resources, Detail: detail,
	}
}

// Publisher takes events; it must not block its caller for long.
type Publisher interface {
	Publish(ctx context.Context, e Event)
}

// LogPublisher writes each event to the structured log.
type LogPublisher struct{ Logger *slog.Logger }

// Publish implements Publisher.
func (p LogPublisher) Publish(ctx context.Context, e Event) {
	p.Logger.InfoContext(ctx, "event", "detail-type", e.DetailType, "id", e.ID, "resources", e.Resources, "detail", e.Detail)
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
