package messaging

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The frames the SDK's serializeRequest produces (keys are the request's
// properties, first letter upper-cased; undefined ones left out).
var sdkFrames = []string{
	`{"Action":"SEND_MESSAGE","RequestId":"0f4b3c4e-1b7e-4f57-9a7f-5f6f2b1c9d10","Content":"hello","Attributes":{"color":"red"}}`,
	`{"Action":"SEND_MESSAGE","RequestId":"0f4b3c4e-1b7e-4f57-9a7f-5f6f2b1c9d11","Content":"hello"}`,
	`{"Action":"DELETE_MESSAGE","RequestId":"0f4b3c4e-1b7e-4f57-9a7f-5f6f2b1c9d12","Id":"R1BLTDN84zEO","Reason":"Spam"}`,
	`{"Action":"DISCONNECT_USER","RequestId":"0f4b3c4e-1b7e-4f57-9a7f-5f6f2b1c9d13","UserId":"bob"}`,
}

func TestParseSDKFrames(t *testing.T) {
	for _, f := range sdkFrames {
		if _, err := ParseRequest([]byte(f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		frame   string
		garbage bool
		code    int
		reqID   string
	}{
		{frame: ``, garbage: true},
		{frame: `null`, garbage: true},
		{frame: `{"Action":`, garbage: true},
		{frame: `{"Action":"SEND_MESSAGE"} trailing`, garbage: true},
		{frame: "{\"Content\":\"\xff\"}", garbage: true},
		{frame: `{"Action":"SEND_MESSAGE","RequestId":"r","Content":7}`, code: CodeBadRequest, reqID: "r"},
		{frame: `{"Action":"SEND_MESSAGE","RequestId":"` + strings.Repeat("é", 100) + `","Content":"x"}`, code: CodeBadRequest, reqID: strings.Repeat("é", 64)},
		{frame: `{"Action":"DELETE_MESSAGE","RequestId":"r","Id":"1234567890123"}`, code: CodeBadRequest, reqID: "r"},
		{frame: `{"Action":"DISCONNECT_USER","UserId":"` + strings.Repeat("u", 129) + `"}`, code: CodeBadRequest},
	} {
		req, err := ParseRequest([]byte(tc.frame))
		if tc.garbage {
			if !errors.Is(err, errNotJSON) {
				t.Errorf("%q: %v, want errNotJSON", tc.frame, err)
			}
			continue
		}
		var re *requestError
		if !errors.As(err, &re) || re.Code != tc.code || req.RequestID != tc.reqID {
			t.Errorf("%q: %v (request id %q), want %d for %q", tc.frame, err, req.RequestID, tc.code, tc.reqID)
		}
	}
}

func TestEntityShapes(t *testing.T) {
	now := time.Date(2022, 10, 11, 12, 46, 41, 723_456_789, time.FixedZone("x", 3600))
	if got := sendTime(now); got != "2022-10-11T11:46:41.723Z" {
		t.Fatalf("sendTime %q", got)
	}
	// Optional fields are left out, as the SDK's parsers allow.
	got := string(mustJSON(Event{Type: TypeEvent, ID: "AbCdEfGh1234", EventName: "x", SendTime: sendTime(now)}))
	if got != `{"Type":"EVENT","Id":"AbCdEfGh1234","EventName":"x","SendTime":"2022-10-11T11:46:41.723Z"}` {
		t.Fatalf("event %s", got)
	}
	got = string(mustJSON(Error{Type: TypeError, ID: "AbCdEfGh1234", RequestID: "r", ErrorCode: 403, ErrorMessage: "no"}))
	if got != `{"Type":"ERROR","Id":"AbCdEfGh1234","RequestId":"r","ErrorCode":403,"ErrorMessage":"no"}` {
		t.Fatalf("error %s", got)
	}
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if !idPattern.MatchString(id) || seen[id] {
			t.Fatalf("id %q", id)
		}
		seen[id] = true
	}
}

// FuzzRequest: any frame either parses into a valid request that survives
// a round trip, or is refused as garbage, or as a bad request whose echoed
// RequestId is short, valid UTF-8; never a panic.
func FuzzRequest(f *testing.F) {
	for _, s := range sdkFrames {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `{"Action":null}`, `{"action":"send_message","content":"x"}`,
		`{"Action":"SEND_MESSAGE","Content":"x","Attributes":{"a":1}}`,
		`{"Action":"SEND_MESSAGE","Content":"x","Attributes":null,"RequestId":7}`,
		`{"Action":"DELETE_MESSAGE","Id":"` + strings.Repeat("x", 13) + `"}`,
		"{\"Action\":\"SEND_MESSAGE\",\"Content\":\"\\ud83d\\ude00\"}",
		`{"Action":"SEND_MESSAGE","Content":"x","Content":"y"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := ParseRequest(frame)
		if errors.Is(err, errNotJSON) {
			return
		}
		if len(req.RequestID) > maxRequestIDLen || !utf8.ValidString(req.RequestID) {
			t.Fatalf("echoed RequestId %q", req.RequestID)
		}
		var re *requestError
		if errors.As(err, &re) {
			if re.Code != CodeBadRequest && re.Code != CodePayloadTooLarge {
				t.Fatalf("code %d", re.Code)
			}
			return
		}
		if err != nil {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		switch req.Action {
		case ActionSendMessage:
			if req.Content == nil || *req.Content == "" || attributesLen(req.Attributes) > maxAttributesLen {
				t.Fatalf("invalid SEND_MESSAGE accepted: %+v", req)
			}
		case ActionDeleteMessage:
			if req.ID == "" {
				t.Fatalf("DELETE_MESSAGE without Id accepted")
			}
		case ActionDisconnectUser:
			if req.UserID == "" {
				t.Fatalf("DISCONNECT_USER without UserId accepted")
			}
		default:
			t.Fatalf("action %q accepted", req.Action)
		}
		again, err := ParseRequest(mustJSON(req))
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", req, err)
		}
		if again.Action != req.Action || again.RequestID != req.RequestID || again.ID != req.ID ||
			again.UserID != req.UserID || again.Reason != req.Reason ||
			(again.Content == nil) != (req.Content == nil) || (req.Content != nil && *again.Content != *req.Content) ||
			!maps.Equal(again.Attributes, req.Attributes) {
			t.Fatalf("round trip changed %+v into %+v", req, again)
		}
		// What is accepted is JSON the SDK could have sent.
		var generic map[string]any
		if err := json.Unmarshal(frame, &generic); err != nil {
			t.Fatalf("accepted a frame that is no JSON object: %v", err)
		}
	})
}
