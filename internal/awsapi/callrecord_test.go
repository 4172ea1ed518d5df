package awsapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestCallRecord checks what OnCall sees of each call: the API, the
// validated input, the response body and the error message.
func TestCallRecord(t *testing.T) {
	var mu sync.Mutex
	var recs []CallRecord
	onCall := func(r CallRecord) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}
	ops := map[string]Handler{
		"CreateChannel": func(ctx context.Context, c *Call) (any, error) {
			return map[string]any{"channel": map[string]any{"name": "n"}}, nil
		},
		"GetChannel": func(ctx context.Context, c *Call) (any, error) {
			return nil, NotFound("no such channel")
		},
		"DeleteChannel": func(ctx context.Context, c *Call) (any, error) { return nil, nil }, // 204
	}
	srv := serverFixture(t, Options{OnCall: onCall}, ops, nil)
	arn := `{"arn":"arn:aws:ivs:us-west-2:111122223333:channel/abcDEF123456"}`
	for _, c := range []struct{ path, body string }{
		{"/CreateChannel", `{"name":"n"}`},
		{"/GetChannel", arn},
		{"/DeleteChannel", arn},
		{"/GetChannel", `{}`},
	} {
		signedDo(t, http.MethodPost, srv.URL+c.path, []byte(c.body))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	for _, r := range recs {
		if r.API != "ivs" || r.Service != "ivs" || r.Account != "111122223333" || r.AccessKeyID != "AKIDSERVERTEST" ||
			r.RequestID == "" || !strings.HasPrefix(r.SourceIP, "127.0.0.1:") {
			t.Errorf("%s: %+v", r.Operation, r)
		}
	}
	if r := recs[0]; r.Operation != "CreateChannel" || string(r.Input) != `{"name":"n"}` ||
		string(r.Output) != `{"channel":{"name":"n"}}` || r.ErrorCode != "" || r.ErrorMessage != "" || r.Status != 200 {
		t.Errorf("CreateChannel: %+v input %s output %s", r, r.Input, r.Output)
	}
	if r := recs[1]; r.ErrorCode != "ResourceNotFoundException" || r.ErrorMessage != "no such channel" ||
		!strings.Contains(string(r.Input), "abcDEF123456") || r.Output != nil || r.Status != 404 {
		t.Errorf("GetChannel: %+v", r)
	}
	if r := recs[2]; r.Status != 204 || r.Output != nil || r.ErrorCode != "" || r.Input == nil {
		t.Errorf("DeleteChannel: %+v", r)
	}
	if r := recs[3]; r.ErrorCode != "ValidationException" || !strings.Contains(r.ErrorMessage, "arn") || r.Input != nil {
		t.Errorf("invalid GetChannel: %+v", r)
	}
}
