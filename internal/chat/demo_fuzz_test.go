package chat

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDemoTokenRequest: the unauthenticated demo endpoint's body parser
// never panics and lets through only a room and a valid user id.
func FuzzDemoTokenRequest(f *testing.F) {
	f.Add(`{"roomArn":"arn:aws:ivschat:us-west-2:123456789012:room/abc","userId":"alice"}`)
	f.Add(`{"roomArn":"abc"}`)
	f.Add(`{"roomArn":"abc","capabilities":["DELETE_MESSAGE"]}`)
	f.Add(`{"roomArn":"abc"}{"roomArn":"def"}`)
	f.Add(`{"roomArn":"abc","userId":"\u0000"}`)
	f.Add(strings.Repeat(" ", 5000))
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/chat-demo/token", strings.NewReader(body))
		in, status, err := decodeDemoRequest(httptest.NewRecorder(), r)
		if err != nil {
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for %v", status, err)
			}
			return
		}
		if in.RoomArn == "" || validDemoUserID(in.UserID) != nil || !utf8.ValidString(in.UserID) {
			t.Fatalf("accepted %+v from %q", in, body)
		}
	})
}
