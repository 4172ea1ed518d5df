package chat

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/openivs/openivs/internal/awsapi"
)

// DemoTag is the tag that opts a room in to the chat demo: with
// openivs:chat-demo = true (set by CreateRoom's tags or TagResource),
// anyone who can reach the node may get a SEND_MESSAGE token for the room
// from DemoTokenHandler. Any other value, or none, keeps it closed.
const (
	DemoTag      = "openivs:chat-demo"
	DemoTagValue = "true"
)

const (
	// demoMaxBody bounds the request body: a room ARN and a user id.
	demoMaxBody = 4 << 10
	// demoMaxUserID is CreateChatToken's userId bound (characters).
	demoMaxUserID = 128
	// A client (IP address) may take demoPerIP tokens a second, in bursts
	// of demoBurstPerIP: the SDK asks for one on every (re)connection and
	// again about 30 s before each token expires, and viewers behind one
	// proxy share an address.
	demoPerIP      = 5
	demoBurstPerIP = 20
)

// demoTokenRequest is the body of POST /chat-demo/token.
type demoTokenRequest struct {
	// RoomArn is the room's ARN or its id, in the node's account.
	RoomArn string `json:"roomArn"`
	// UserID is the viewer's name; blank picks "viewer-" and 4 random
	// characters.
	UserID string `json:"userId"`
}

// demoTokenResponse is the shape a ChatTokenProvider of the official
// amazon-ivs-chat-messaging SDK returns, plus the userId granted (which the
// SDK ignores) so that a page can show who it is.
type demoTokenResponse struct {
	Token                 string `json:"token"`
	SessionExpirationTime string `json:"sessionExpirationTime"`
	TokenExpirationTime   string `json:"tokenExpirationTime"`
	UserID                string `json:"userId"`
}

// DemoTokenHandler serves POST /chat-demo/token, the token endpoint of the
// chat demo on /play/<channelId>?room=<roomArn>. It stands in for the
// backend an app would call CreateChatToken from, so it is
// unauthenticated, and therefore narrow: it mints tokens only for rooms
// of the node's account tagged DemoTag=true, only with the SEND_MESSAGE
// capability, no attributes and the default session duration, and it is
// rate limited per client address and, in all, by CreateChatToken's rate.
//
// Request: {"roomArn": ARN or id, "userId": optional, 1-128 characters},
// as application/json. Answers: 200 {"token", "sessionExpirationTime",
// "tokenExpirationTime", "userId"} (ISO 8601), or {"code", "message"}
// with 400 (bad input), 403 (room not opted in), 404 (no such room), 413,
// 415, 429 (Retry-After) or 405.
func (s *Service) DemoTokenHandler() http.Handler {
	limiter := awsapi.NewRateLimiter()
	total := s.cfg.RateLimits["CreateChatToken"]
	if total <= 0 {
		total = DefaultRateLimits()["CreateChatToken"]
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			demoError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST")
			return
		}
		// A JSON content type also keeps other sites' pages out: a
		// cross-origin fetch with it needs a CORS preflight, which this
		// endpoint does not answer.
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			demoError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "the body must be application/json")
			return
		}
		now := s.now()
		if !limiter.Allow("ip:"+clientIP(r), demoPerIP, demoBurstPerIP, now) || !limiter.Allow("all", total, int(total), now) {
			w.Header().Set("Retry-After", "1")
			demoError(w, http.StatusTooManyRequests, awsapi.CodeThrottling, "too many chat demo tokens requested; retry later")
			return
		}
		in, status, err := decodeDemoRequest(w, r)
		if err != nil {
			demoError(w, status, awsapi.CodeValidation, err.Error())
			return
		}
		roomARN := in.RoomArn
		if !strings.HasPrefix(roomARN, "arn:") {
			roomARN = s.arn(s.cfg.AccountID, KindRoom, roomARN)
		}
		room, err := s.lookup(r.Context(), s.cfg.AccountID, KindRoom, roomARN)
		if err != nil {
			s.demoFailure(w, r, err)
			return
		}
		if room.Tags[DemoTag] != DemoTagValue {
			demoError(w, http.StatusForbidden, awsapi.CodeAccessDenied,
				"the chat demo is not enabled for this room (its owner enables it with the tag "+DemoTag+"="+DemoTagValue+")")
			return
		}
		t, err := s.issueToken(r.Context(), s.cfg.AccountID, room.ARN, tokenDoc{
			UserID: in.UserID, Capabilities: []string{CapSendMessage},
		}, DefaultSessionDuration)
		if err != nil {
			s.demoFailure(w, r, err)
			return
		}
		// The token is a credential: never logged.
		s.log.Debug("chat demo token issued", "room", room.ARN, "userId", in.UserID)
		writeDemoJSON(w, http.StatusOK, demoTokenResponse{
			Token:                 t.Token,
			SessionExpirationTime: isoTime(t.SessionExpires),
			TokenExpirationTime:   isoTime(t.TokenExpires),
			UserID:                in.UserID,
		})
	})
}

// decodeDemoRequest reads and checks the body; on error it returns the
// status to answer.
func decodeDemoRequest(w http.ResponseWriter, r *http.Request) (*demoTokenRequest, int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, demoMaxBody))
	dec.DisallowUnknownFields()
	var in demoTokenRequest
	if err := dec.Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, errors.New("the body is too large")
		}
		return nil, http.StatusBadRequest, errors.New("the body must be a JSON object {\"roomArn\", \"userId\"}: " + err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, http.StatusBadRequest, errors.New("the body must hold one JSON object")
	}
	in.RoomArn = strings.TrimSpace(in.RoomArn)
	if in.RoomArn == "" {
		return nil, http.StatusBadRequest, errors.New("roomArn is required")
	}
	in.UserID = strings.TrimSpace(in.UserID)
	if in.UserID == "" {
		in.UserID = "viewer-" + strings.ToLower(randomID(4))
	}
	if err := validDemoUserID(in.UserID); err != nil {
		return nil, http.StatusBadRequest, err
	}
	return &in, 0, nil
}

func validDemoUserID(id string) error {
	if !utf8.ValidString(id) {
		return errors.New("userId must be UTF-8")
	}
	if n := utf8.RuneCountInString(id); n > demoMaxUserID {
		return errors.New("userId must be 1 to 128 characters long")
	}
	for _, c := range id {
		if unicode.IsControl(c) {
			return errors.New("userId must not contain control characters")
		}
	}
	return nil
}

// demoFailure answers a look-up or store error: 404 for a missing room,
// 500 (logged) for the rest.
func (s *Service) demoFailure(w http.ResponseWriter, r *http.Request, err error) {
	var ae *awsapi.Error
	if errors.As(err, &ae) && ae.Code == awsapi.CodeNotFound {
		demoError(w, http.StatusNotFound, awsapi.CodeNotFound, "no such chat room")
		return
	}
	s.log.Error("chat demo token", "path", r.URL.Path, "err", err)
	demoError(w, http.StatusInternalServerError, awsapi.CodeInternal, "internal error")
}

func demoError(w http.ResponseWriter, status int, code, message string) {
	writeDemoJSON(w, status, map[string]string{"code": code, "message": message})
}

func writeDemoJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// clientIP is the request's peer address without the port (a proxy's,
// behind one: its viewers share a budget).
func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
