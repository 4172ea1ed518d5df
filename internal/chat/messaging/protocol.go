package messaging

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"
)

// Request actions a client publishes (the SDK's serializeRequest).
const (
	ActionSendMessage    = "SEND_MESSAGE"
	ActionDeleteMessage  = "DELETE_MESSAGE"
	ActionDisconnectUser = "DISCONNECT_USER"
)

// Entity types the server pushes; the SDK switches on Type.
const (
	TypeMessage = "MESSAGE"
	TypeEvent   = "EVENT"
	TypeError   = "ERROR"
)

// Event names the SDK turns into its messageDelete and userDisconnect
// events (anything else is a plain "event").
const (
	EventDeleteMessage  = "aws:DELETE_MESSAGE"
	EventDisconnectUser = "aws:DISCONNECT_USER"
)

// Error codes of ERROR entities, as the SDK's chatErrorCodes names them.
// 401 makes the SDK fetch a new token and reconnect.
const (
	CodeBadRequest          = 400
	CodeUnauthorized        = 401
	CodeForbidden           = 403
	CodeNotFound            = 404
	CodeNotAcceptable       = 406 // denied by message review
	CodePayloadTooLarge     = 413
	CodeTooManyRequests     = 429
	CodeInternalServerError = 500
)

// Field limits IVS documents for the publish operations and their control
// plane twins (DeleteMessage, DisconnectUser, SendEvent).
const (
	maxMessageIDLen  = 12   // message ids are 12 characters
	maxReasonLen     = 256  // characters
	maxUserIDLen     = 128  // characters
	maxAttributesLen = 1024 // bytes, keys and values together
	maxRequestIDLen  = 128  // bytes; the SDK sends UUIDs
)

// Request is one frame a client publishes. Field names are the SDK's
// request properties with the first letter upper-cased.
type Request struct {
	Action     string            `json:"Action"`
	RequestID  string            `json:"RequestId,omitempty"`
	Content    *string           `json:"Content,omitempty"`
	Attributes map[string]string `json:"Attributes,omitempty"`
	ID         string            `json:"Id,omitempty"`
	Reason     string            `json:"Reason,omitempty"`
	UserID     string            `json:"UserId,omitempty"`
}

// errNotJSON is a frame that is no JSON object at all: the client is not
// speaking the protocol, so it is disconnected instead of answered.
var errNotJSON = errors.New("frame is not a JSON object")

// requestError is a well-formed frame with a bad request in it: answered
// with an ERROR entity carrying Code.
type requestError struct {
	Code    int
	Message string
}

func (e *requestError) Error() string { return e.Message }

func badRequest(msg string) *requestError {
	return &requestError{Code: CodeBadRequest, Message: msg}
}

// ParseRequest decodes and validates one inbound text frame. It returns
// errNotJSON for garbage and a *requestError for a bad request; the
// request's RequestId is filled in whenever the frame had a string one, so
// that the error can carry it.
func ParseRequest(frame []byte) (Request, error) {
	var req Request
	frame = bytes.TrimSpace(frame)
	if !utf8.Valid(frame) || len(frame) == 0 || frame[0] != '{' {
		return req, errNotJSON
	}
	if err := json.Unmarshal(frame, &req); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return Request{}, errNotJSON
		}
		// A JSON object with a field of the wrong type; Unmarshal still
		// filled in what it could, the RequestId included.
		req.RequestID = truncateRequestID(req.RequestID)
		return req, badRequest("Invalid request: " + fieldOf(err))
	}
	if len(req.RequestID) > maxRequestIDLen {
		req.RequestID = truncateRequestID(req.RequestID)
		return req, badRequest("RequestId is too long")
	}
	return req, validate(&req)
}

func truncateRequestID(id string) string {
	if len(id) <= maxRequestIDLen {
		return id
	}
	// Cut at a rune boundary so the echoed id stays valid UTF-8.
	for i := maxRequestIDLen; i > 0; i-- {
		if utf8.RuneStart(id[i]) {
			return id[:i]
		}
	}
	return ""
}

func fieldOf(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + " has the wrong type"
	}
	return "malformed request"
}

// validate checks what does not depend on the room or the connection.
func validate(req *Request) error {
	switch req.Action {
	case ActionSendMessage:
		if req.Content == nil {
			return badRequest("Content is required")
		}
		if *req.Content == "" {
			return badRequest("Content must not be empty")
		}
		if attributesLen(req.Attributes) > maxAttributesLen {
			return &requestError{Code: CodePayloadTooLarge, Message: "Attributes must not exceed 1 KB"}
		}
	case ActionDeleteMessage:
		if req.ID == "" {
			return badRequest("Id is required")
		}
		if utf8.RuneCountInString(req.ID) > maxMessageIDLen {
			return badRequest("Id is not a message id")
		}
		if utf8.RuneCountInString(req.Reason) > maxReasonLen {
			return badRequest("Reason must be at most 256 characters")
		}
	case ActionDisconnectUser:
		if req.UserID == "" {
			return badRequest("UserId is required")
		}
		if utf8.RuneCountInString(req.UserID) > maxUserIDLen {
			return badRequest("UserId must be at most 128 characters")
		}
		if utf8.RuneCountInString(req.Reason) > maxReasonLen {
			return badRequest("Reason must be at most 256 characters")
		}
	case "":
		return badRequest("Action is required")
	default:
		return badRequest("Unknown action")
	}
	return nil
}

func attributesLen(attrs map[string]string) int {
	n := 0
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return n
}

// Sender is a MESSAGE's author: the user id and attributes of its token.
type Sender struct {
	UserID     string            `json:"UserId"`
	Attributes map[string]string `json:"Attributes,omitempty"`
}

// Message is a MESSAGE entity as every client in the room receives it.
type Message struct {
	Type       string            `json:"Type"`
	ID         string            `json:"Id"`
	RequestID  string            `json:"RequestId,omitempty"`
	Content    string            `json:"Content"`
	Attributes map[string]string `json:"Attributes,omitempty"`
	SendTime   string            `json:"SendTime"`
	Sender     Sender            `json:"Sender"`
}

// Event is an EVENT entity: aws:DELETE_MESSAGE, aws:DISCONNECT_USER or an
// application's SendEvent.
type Event struct {
	Type       string            `json:"Type"`
	ID         string            `json:"Id"`
	RequestID  string            `json:"RequestId,omitempty"`
	EventName  string            `json:"EventName"`
	Attributes map[string]string `json:"Attributes,omitempty"`
	SendTime   string            `json:"SendTime"`
}

// Error is an ERROR entity, sent only to the connection whose request
// failed (or whose session expired).
type Error struct {
	Type         string `json:"Type"`
	ID           string `json:"Id"`
	RequestID    string `json:"RequestId,omitempty"`
	ErrorCode    int    `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// sendTime formats t as IVS does: RFC 3339, UTC, milliseconds.
func sendTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newID returns an IVS-like entity id: 12 random alphanumerics.
func newID() string {
	var out [maxMessageIDLen]byte
	var buf [32]byte
	n := 0
	for n < len(out) {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails
		for _, b := range buf {
			// Rejection sampling keeps the 62 letters equally likely.
			if b >= 248 {
				continue
			}
			out[n] = idAlphabet[int(b)%len(idAlphabet)]
			n++
			if n == len(out) {
				break
			}
		}
	}
	return string(out[:])
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings and string maps go in: Marshal cannot fail.
		panic("messaging: encode entity: " + err.Error())
	}
	return b
}
