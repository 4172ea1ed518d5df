// Package review invokes IVS Chat message review handlers over HTTP.
//
// In IVS a room's messageReviewHandler names a Lambda function that IVS
// invokes synchronously for every SendMessage. openivs has no Lambda, so
// the operator maps each Lambda ARN to an HTTP(S) URL, and a Reviewer POSTs
// the very payload IVS gives the Lambda to that URL and reads the Lambda's
// answer from the response body. Anything short of a valid answer is an
// error, which lets the room's fallbackResult decide, as in IVS.
package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/chat/messaging"
)

// IVS's limits that a handler's answer must respect, as a message must.
const (
	// maxARNLen is MessageReviewHandler.uri's maximum length.
	maxARNLen = 170
	// defaultMaxMessageLength applies when a room states no limit: it is
	// IVS's default and largest maximumMessageLength.
	defaultMaxMessageLength = 500
	// maxAttributesLen is IVS's cap on a message's attributes, keys and
	// values together.
	maxAttributesLen = 1024
)

// maxResponseBody caps what is read of a handler's answer. A valid one
// (500 characters, 1 KB of attributes) is far smaller even when every
// character is \u-escaped; the cap keeps a broken handler from making
// openivs buffer an unbounded body.
const maxResponseBody = 64 << 10

// failureLogInterval spaces the warnings about one failing handler: a
// broken handler fails for every message of every room using it.
const failureLogInterval = 30 * time.Second

// lambdaARN is MessageReviewHandler.uri's pattern in the IVS Chat API
// (without the empty string, which means "no handler").
var lambdaARN = regexp.MustCompile(`^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+`)

// Errors a review ends with; both let the room's fallbackResult decide.
var (
	// ErrNoHandler: no URL is configured for the room's handler ARN.
	ErrNoHandler = errors.New("review: no URL is configured for the message review handler")
	// ErrInvalidResponse: the handler answered, but not with a valid
	// review (IVS: "Responses that do not correspond to the syntax ... or
	// satisfy the field constraints are invalid").
	ErrInvalidResponse = errors.New("review: invalid message review handler response")
)

// Config configures a Reviewer.
type Config struct {
	// Handlers maps Lambda ARNs (a room's messageReviewHandler.uri) to
	// the http(s) URL that stands in for the function.
	Handlers map[string]string
	// Client makes the requests; default: a client with its own
	// keep-alive pool that does not follow redirects. The caller's
	// context bounds every request (IVS: 200 ms).
	Client *http.Client
	// Logger default: discard.
	Logger *slog.Logger
}

// Reviewer reviews chat messages with the handlers of Config.Handlers; its
// Review method is a messaging.ReviewFunc.
type Reviewer struct {
	handlers map[string]string // ARN -> URL
	client   *http.Client
	log      *slog.Logger

	mu       sync.Mutex
	unmapped map[string]bool      // ARNs already warned about
	failing  map[string]*failures // by ARN
}

// failures throttles the warnings about one handler.
type failures struct {
	lastLog    time.Time
	suppressed int
}

var _ messaging.ReviewFunc = (*Reviewer)(nil).Review

// New validates cfg and returns a Reviewer.
func New(cfg Config) (*Reviewer, error) {
	handlers := make(map[string]string, len(cfg.Handlers))
	for arn, u := range cfg.Handlers {
		if err := validateARN(arn); err != nil {
			return nil, err
		}
		if err := validateURL(u); err != nil {
			return nil, fmt.Errorf("review: handler %s: %w", arn, err)
		}
		handlers[arn] = u
	}
	client := cfg.Client
	if client == nil {
		client = defaultClient()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reviewer{
		handlers: handlers,
		client:   client,
		log:      logger,
		unmapped: make(map[string]bool),
		failing:  make(map[string]*failures),
	}, nil
}

func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Every message of a busy room is one request to the same few hosts:
	// keep enough idle connections that a burst does not redial.
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{
		Transport: t,
		// A Lambda invocation has no redirects; following one would spend
		// the 200 ms budget elsewhere. A 3xx is therefore a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// Only a backstop: the caller's context is the real bound.
		Timeout: 10 * time.Second,
	}
}

func validateARN(arn string) error {
	if !lambdaARN.MatchString(arn) || len(arn) > maxARNLen {
		return fmt.Errorf("review: %q is not a Lambda function ARN (want arn:aws:lambda:REGION:ACCOUNT:function:NAME, at most %d characters)", arn, maxARNLen)
	}
	return nil
}

func validateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("URL %q has no host", u.Redacted())
	}
	return nil
}

// request is the payload IVS invokes a review Lambda with; the field names
// and order are IVS's.
type request struct {
	Content    string            `json:"Content"`
	MessageID  string            `json:"MessageId"`
	RoomARN    string            `json:"RoomArn"`
	Attributes map[string]string `json:"Attributes"`
	Sender     requestSender     `json:"Sender"`
}

type requestSender struct {
	Attributes map[string]string `json:"Attributes"`
	UserID     string            `json:"UserId"`
	IP         string            `json:"Ip"`
}

// response is a review Lambda's answer. Pointers tell an absent field
// (keep the message's) from a present one (replace it).
type response struct {
	Content      *string           `json:"Content"`
	ReviewResult string            `json:"ReviewResult"`
	Attributes   map[string]string `json:"Attributes"`
}

// Review invokes room's message review handler for msg, as IVS invokes the
// Lambda; it has the signature of messaging.ReviewFunc. ctx bounds the
// whole call. An error means no valid answer came, and the caller applies
// the room's fallbackResult.
func (r *Reviewer) Review(ctx context.Context, room *chat.Room, msg *messaging.Message, senderIP string) (messaging.ReviewResult, error) {
	if room == nil || room.ReviewHandler == nil {
		return messaging.ReviewResult{}, fmt.Errorf("%w: the room has no message review handler", ErrNoHandler)
	}
	arn := room.ReviewHandler.URI
	target, ok := r.handlers[arn]
	if !ok {
		r.warnUnmapped(arn, room.ARN)
		return messaging.ReviewResult{}, fmt.Errorf("%w: %s", ErrNoHandler, arn)
	}
	res, err := r.invoke(ctx, target, room, msg, senderIP)
	if err != nil {
		r.warnFailure(arn, room.ARN, err)
		// Content is user data: only at debug level.
		r.log.Debug("chat review: handler failed", "handler", arn, "room", room.ARN, "message", msg.ID, "content", msg.Content, "err", err)
		return messaging.ReviewResult{}, err
	}
	r.recovered(arn)
	r.log.Debug("chat review: reviewed", "handler", arn, "room", room.ARN, "message", msg.ID, "allow", res.Allow, "content", msg.Content, "newContent", res.Content)
	return res, nil
}

func (r *Reviewer) invoke(ctx context.Context, target string, room *chat.Room, msg *messaging.Message, senderIP string) (messaging.ReviewResult, error) {
	body, err := json.Marshal(request{
		Content:    msg.Content,
		MessageID:  msg.ID,
		RoomARN:    room.ARN,
		Attributes: nonNil(msg.Attributes),
		Sender: requestSender{
			Attributes: nonNil(msg.Sender.Attributes),
			UserID:     msg.Sender.UserID,
			IP:         senderIP,
		},
	})
	if err != nil {
		return messaging.ReviewResult{}, fmt.Errorf("review: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return messaging.ReviewResult{}, fmt.Errorf("review: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "openivs-chat-review")
	resp, err := r.client.Do(req)
	if err != nil {
		return messaging.ReviewResult{}, fmt.Errorf("review: invoke handler: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drained (within the cap) so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		return messaging.ReviewResult{}, fmt.Errorf("review: handler answered HTTP %d", resp.StatusCode)
	}
	// Lambda's Invoke reports a function that threw with 200 and this
	// header; honoured so that a Lambda-compatible front end works too.
	if fe := resp.Header.Get("X-Amz-Function-Error"); fe != "" {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		return messaging.ReviewResult{}, fmt.Errorf("review: handler function error %q", fe)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return messaging.ReviewResult{}, fmt.Errorf("review: read response: %w", err)
	}
	if len(b) > maxResponseBody {
		return messaging.ReviewResult{}, fmt.Errorf("%w: body exceeds %d bytes", ErrInvalidResponse, maxResponseBody)
	}
	return parseResponse(b, room.MaximumMessageLength)
}

// parseResponse decodes and validates a handler's answer. maxLength is the
// room's maximumMessageLength in characters (0: IVS's default). A returned
// Content or Attributes must satisfy the constraints of a message whatever
// the ReviewResult, because IVS holds the whole response invalid otherwise.
func parseResponse(body []byte, maxLength int) (messaging.ReviewResult, error) {
	body = bytes.TrimSpace(body)
	if !utf8.Valid(body) {
		return messaging.ReviewResult{}, fmt.Errorf("%w: body is not UTF-8", ErrInvalidResponse)
	}
	var resp response
	if err := json.Unmarshal(body, &resp); err != nil {
		return messaging.ReviewResult{}, fmt.Errorf("%w: %w", ErrInvalidResponse, err)
	}
	var res messaging.ReviewResult
	switch resp.ReviewResult {
	case "ALLOW":
		res.Allow = true
	case "DENY":
	default:
		return messaging.ReviewResult{}, fmt.Errorf("%w: ReviewResult %q is neither ALLOW nor DENY", ErrInvalidResponse, truncate(resp.ReviewResult))
	}
	if resp.Content != nil {
		if maxLength <= 0 {
			maxLength = defaultMaxMessageLength
		}
		switch n := utf8.RuneCountInString(*resp.Content); {
		case n == 0:
			return messaging.ReviewResult{}, fmt.Errorf("%w: Content is empty", ErrInvalidResponse)
		case n > maxLength:
			return messaging.ReviewResult{}, fmt.Errorf("%w: Content has %d characters, the room allows %d", ErrInvalidResponse, n, maxLength)
		}
		res.Content = *resp.Content
	}
	if resp.Attributes != nil {
		if n := attributesLen(resp.Attributes); n > maxAttributesLen {
			return messaging.ReviewResult{}, fmt.Errorf("%w: Attributes have %d bytes, at most %d are allowed", ErrInvalidResponse, n, maxAttributesLen)
		}
		res.Attributes = resp.Attributes
	}
	return res, nil
}

func attributesLen(attrs map[string]string) int {
	n := 0
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return n
}

// nonNil gives handlers an object where IVS's payload always has one, so
// that code like event.Attributes.x does not fail on an absent field.
func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// truncate shortens a value quoted in an error; the handler's output may
// be anything.
func truncate(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}

// warnUnmapped warns once per ARN: every message of the room would repeat
// it, and the fix (a --chat-review-handler flag) is the same each time.
func (r *Reviewer) warnUnmapped(arn, roomARN string) {
	r.mu.Lock()
	seen := r.unmapped[arn]
	r.unmapped[arn] = true
	r.mu.Unlock()
	if !seen {
		r.log.Warn("chat review: no URL is configured for the room's message review handler; its fallbackResult decides every message",
			"handler", arn, "room", roomARN, "hint", "add --chat-review-handler "+arn+"=URL")
	}
}

// warnFailure warns about a failing handler at most once per
// failureLogInterval, counting what it left out.
func (r *Reviewer) warnFailure(arn, roomARN string, err error) {
	now := time.Now()
	r.mu.Lock()
	f := r.failing[arn]
	if f == nil {
		f = &failures{}
		r.failing[arn] = f
	}
	if !f.lastLog.IsZero() && now.Sub(f.lastLog) < failureLogInterval {
		f.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := f.suppressed
	f.lastLog, f.suppressed = now, 0
	r.mu.Unlock()
	r.log.Warn("chat review: message review handler failed; the room's fallbackResult decides",
		"handler", arn, "room", roomARN, "err", err, "suppressedSinceLast", suppressed)
}

// recovered forgets a handler's failures once it answers again, so that
// its next failure is reported at once.
func (r *Reviewer) recovered(arn string) {
	r.mu.Lock()
	delete(r.failing, arn)
	r.mu.Unlock()
}
