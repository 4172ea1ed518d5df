package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a webhook delivery.
const (
	// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
	SignatureHeader = "X-Openivs-Signature"
	// EventIDHeader carries the event id, the same on every redelivery.
	EventIDHeader = "X-Openivs-Event-Id"
)

// Sign returns the signature header value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a signature header value in constant time.
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Webhook POSTs each event as its EventBridge JSON; any 2xx is delivered.
type Webhook struct {
	name   string
	url    string
	secret []byte
	client *http.Client
}

// webhookTimeout bounds one delivery attempt.
const webhookTimeout = 10 * time.Second

// NewWebhook returns a webhook sink. name defaults to "webhook:" + url.
func NewWebhook(name, url string, secret []byte) *Webhook {
	if name == "" {
		name = "webhook:" + url
	}
	return &Webhook{name: name, url: url, secret: secret, client: &http.Client{Timeout: webhookTimeout}}
}

// Name implements Sink.
func (w *Webhook) Name() string { return w.name }

// Deliver implements Sink.
func (w *Webhook) Deliver(ctx context.Context, e *Event, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "openivs-events/1")
	req.Header.Set(EventIDHeader, e.ID)
	req.Header.Set(SignatureHeader, Sign(w.secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	}
	return nil
}

// NATSSubjectPrefix is where events are published: the prefix, then the
// detail-type with spaces as underscores (NATS subjects cannot hold
// spaces), e.g. ivs.events.IVS_Stream_State_Change.
const NATSSubjectPrefix = "ivs.events."

// NATSStream is the JetStream stream the NATS sink creates for its
// subjects when none covers them, so events are acknowledged and kept.
const NATSStream = "OPENIVS_EVENTS"

// NATSSubject is the subject of an event of that detail-type.
func NATSSubject(detailType string) string {
	return NATSSubjectPrefix + strings.ReplaceAll(strings.TrimSpace(detailType), " ", "_")
}

// NATS publishes each event to JetStream and waits for its acknowledgement;
// the event id is the message id, so JetStream drops redeliveries within
// its duplicate window. It connects on first use and again after a
// failure, so a NATS server that is down only delays events.
type NATS struct {
	url string
	log *slog.Logger

	mu sync.Mutex
	nc *nats.Conn
	js jetstream.JetStream
}

// NewNATS returns a NATS sink for url; nothing is dialled yet.
func NewNATS(url string, logger *slog.Logger) *NATS {
	return &NATS{url: url, log: logger}
}

// connect dials and makes sure a JetStream stream keeps the event
// subjects. Called with n.mu held.
func (n *NATS) connect(ctx context.Context) error {
	if n.nc != nil && !n.nc.IsClosed() {
		return nil
	}
	nc, err := nats.Connect(n.url, nats.Name("openivs events"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("NATS disconnected", "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("NATS %s: %w", redactURL(n.url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("JetStream: %w", err)
	}
	if _, err := js.StreamNameBySubject(ctx, NATSSubjectPrefix+"x"); errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: NATSStream, Subjects: []string{NATSSubjectPrefix + ">"},
			MaxAge: 7 * 24 * time.Hour, Duplicates: 10 * time.Minute,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			nc.Close()
			return fmt.Errorf("creating JetStream stream %s: %w", NATSStream, err)
		}
	} else if err != nil {
		nc.Close()
		return fmt.Errorf("JetStream on %s: %w", redactURL(n.url), err)
	}
	n.nc, n.js = nc, js
	return nil
}

// redactURL drops credentials from a URL for messages.
func redactURL(u string) string {
	if at := strings.LastIndex(u, "@"); at >= 0 {
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			return u[:scheme+3] + "…@" + u[at+1:]
		}
	}
	return u
}

// Name implements Sink.
func (n *NATS) Name() string { return "nats" }

// Deliver implements Sink.
func (n *NATS) Deliver(ctx context.Context, e *Event, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n.mu.Lock()
	err := n.connect(ctx)
	js := n.js
	n.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, NATSSubject(e.DetailType), body, jetstream.WithMsgID(e.ID))
	return err
}

// Close disconnects.
func (n *NATS) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nc != nil {
		n.nc.Close()
	}
}

// LogSink writes each event to the structured log.
type LogSink struct{ Logger *slog.Logger }

// Name implements Sink.
func (LogSink) Name() string { return "log" }

// Deliver implements Sink.
func (l LogSink) Deliver(ctx context.Context, e *Event, _ []byte) error {
	l.Logger.InfoContext(ctx, "event", "detail-type", e.DetailType, "id", e.ID, "event_time", e.Time,
		"resources", e.Resources, "detail", e.Detail)
	return nil
}
