package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

type oneKey struct{}

func (oneKey) Lookup(id string) (string, string, bool) {
	if id == "AKIDSERVERTEST" {
		return "server-test-secret", "111122223333", true
	}
	return "", "", false
}

// serverFixture mounts the IVS model with a few hand-made handlers.
func serverFixture(t *testing.T, opts Options, ops map[string]Handler, limits map[string]float64) *httptest.Server {
	t.Helper()
	opts.Region, opts.Credentials = "us-west-2", oneKey{}
	s := NewServer(opts)
	if err := s.Mount(&Service{SigningName: "ivs", Model: mustModel(t, "ivs"), Operations: ops, RateLimits: limits}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func signedDo(t *testing.T, method, url string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIDSERVERTEST", SecretAccessKey: "server-test-secret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ivs", "us-west-2", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func errorBody(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", raw, err)
	}
	return body
}

func TestServerErrorShapes(t *testing.T) {
	ops := map[string]Handler{
		"GetChannel": func(ctx context.Context, c *Call) (any, error) {
			return nil, NotFound("no such channel")
		},
		"DeleteChannel": func(ctx context.Context, c *Call) (any, error) {
			return nil, errors.New("database exploded: secret detail")
		},
		"CreateChannel": func(ctx context.Context, c *Call) (any, error) {
			return nil, QuotaExceeded("too many")
		},
		"ListChannels": func(ctx context.Context, c *Call) (any, error) {
			return map[string]any{"channels": []any{}, "account": c.Account}, nil
		},
	}
	srv := serverFixture(t, Options{MaxBodyBytes: 256}, ops, nil)
	arn := `{"arn":"arn:aws:ivs:us-west-2:111122223333:channel/abcDEF123456"}`
	cases := []struct {
		path, body string
		status     int
		code, msg  string
	}{
		{"/GetChannel", arn, 404, "ResourceNotFoundException", "no such channel"},
		{"/DeleteChannel", arn, 500, "InternalServerException", "Internal server error"},
		{"/CreateChannel", `{}`, 402, "ServiceQuotaExceededException", "too many"},
		{"/GetChannel", `{}`, 400, "ValidationException", "at 'arn'"},
		{"/GetChannel", `{"arn":`, 400, "SerializationException", "not valid JSON"},
		{"/NoSuchOperation", `{}`, 404, "UnknownOperationException", "NoSuchOperation"},
		{"/GetStream", `{}`, 404, "UnknownOperationException", "GetStream"}, // in the model, not mounted
		{"/ListChannels", `{"filterByName":"` + strings.Repeat("a", 300) + `"}`, 413, "RequestEntityTooLargeException", "256 bytes"},
	}
	for _, c := range cases {
		resp := signedDo(t, http.MethodPost, srv.URL+c.path, []byte(c.body))
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.path, resp.StatusCode, c.status)
		}
		if got := resp.Header.Get("x-amzn-ErrorType"); got != c.code {
			t.Errorf("%s: x-amzn-ErrorType %q, want %q", c.path, got, c.code)
		}
		if resp.Header.Get("x-amzn-RequestId") == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", c.path, resp.Header)
		}
		body := errorBody(t, resp)
		msg, _ := body["message"].(string)
		if !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q, want it to contain %q", c.path, msg, c.msg)
		}
		if strings.Contains(msg, "secret detail") {
			t.Errorf("%s: internal error leaked: %q", c.path, msg)
		}
		// IVS exceptions carry their own exceptionMessage member too.
		if c.status < 500 && strings.HasSuffix(c.code, "Exception") && c.code != "UnknownOperationException" &&
			c.code != "SerializationException" && c.code != "RequestEntityTooLargeException" && body["exceptionMessage"] != msg {
			t.Errorf("%s: exceptionMessage %v, want %q", c.path, body["exceptionMessage"], msg)
		}
	}

	resp := signedDo(t, http.MethodPost, srv.URL+"/ListChannels", []byte(`{}`))
	if resp.StatusCode != 200 || resp.Header.Get("x-amzn-RequestId") == "" {
		t.Fatalf("ListChannels: %d %v", resp.StatusCode, resp.Header)
	}
	if body := errorBody(t, resp); body["account"] != "111122223333" {
		t.Fatalf("the handler did not see the signer's account: %v", body)
	}
	// The wrong method on a known path.
	if resp := signedDo(t, http.MethodGet, srv.URL+"/ListChannels", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /ListChannels: %d", resp.StatusCode)
	}
}

// TestServerTagRoutesAskOwnershipFirst: a /tags/{resourceArn} path whose
// ARN no mounted service owns is not found whatever the method, in the
// shape of the services signing that name; a method no tag route has is
// not allowed.
func TestServerTagRoutesAskOwnershipFirst(t *testing.T) {
	ok := func(ctx context.Context, c *Call) (any, error) { return struct{}{}, nil }
	s := NewServer(Options{Region: "us-west-2", Credentials: oneKey{}})
	err := s.Mount(&Service{
		SigningName: "ivs", Model: mustModel(t, "ivs"),
		Operations: map[string]Handler{"TagResource": ok, "UntagResource": ok, "ListTagsForResource": ok},
		OwnsARN:    func(arn string) bool { return strings.Contains(arn, ":channel/") },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	channel := srv.URL + "/tags/arn:aws:ivs:us-west-2:111122223333:channel%2FabcDEF123456"
	stage := srv.URL + "/tags/arn:aws:ivs:us-west-2:111122223333:stage%2FabcDEF123456"
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if resp := signedDo(t, method, channel+"?tagKeys=a", []byte(`{"tags":{"a":"b"}}`)); resp.StatusCode != 200 {
			t.Fatalf("%s channel: %d", method, resp.StatusCode)
		}
		resp := signedDo(t, method, stage+"?tagKeys=a", []byte(`{"tags":{"a":"b"}}`))
		body := errorBody(t, resp)
		if resp.StatusCode != 404 || resp.Header.Get("x-amzn-ErrorType") != CodeNotFound || body["exceptionMessage"] == nil {
			t.Fatalf("%s stage: %d %s %v", method, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
		}
	}
	if resp := signedDo(t, http.MethodPut, channel, []byte(`{}`)); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT channel: %d", resp.StatusCode)
	}
}

func TestServerThrottlesPerOperation(t *testing.T) {
	calls := 0
	ok := func(ctx context.Context, c *Call) (any, error) { calls++; return struct{}{}, nil }
	limited := serverFixture(t, Options{}, map[string]Handler{"ListChannels": ok, "ListStreams": ok},
		map[string]float64{"ListChannels": 2})
	throttled := 0
	for i := 0; i < 6; i++ {
		resp := signedDo(t, http.MethodPost, limited.URL+"/ListChannels", []byte(`{}`))
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("x-amzn-ErrorType") != "ThrottlingException" {
				t.Fatalf("429 without ThrottlingException: %v", resp.Header)
			}
			// IVS's ThrottlingException has no limit member (IVS Chat's has).
			if body := errorBody(t, resp); body["exceptionMessage"] == nil || body["limit"] != nil {
				t.Fatalf("IVS throttling body %v", body)
			}
			throttled++
		}
	}
	if throttled < 3 || throttled > 4 {
		t.Fatalf("%d of 6 calls throttled at 2 TPS, want 3 or 4", throttled)
	}
	// Another operation has its own bucket (and here none at all).
	for i := 0; i < 6; i++ {
		if resp := signedDo(t, http.MethodPost, limited.URL+"/ListStreams", []byte(`{}`)); resp.StatusCode != 200 {
			t.Fatalf("ListStreams throttled: %d", resp.StatusCode)
		}
	}
	unlimited := serverFixture(t, Options{DisableRateLimits: true}, map[string]Handler{"ListChannels": ok},
		map[string]float64{"ListChannels": 2})
	for i := 0; i < 6; i++ {
		if resp := signedDo(t, http.MethodPost, unlimited.URL+"/ListChannels", []byte(`{}`)); resp.StatusCode != 200 {
			t.Fatalf("throttled with rate limits disabled: %d", resp.StatusCode)
		}
	}
}

func TestServerRejectsUnsignedBeforeRunning(t *testing.T) {
	ran := false
	srv := serverFixture(t, Options{}, map[string]Handler{"CreateChannel": func(ctx context.Context, c *Call) (any, error) {
		ran = true
		return struct{}{}, nil
	}}, nil)
	resp, err := http.Post(srv.URL+"/CreateChannel", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" || ran {
		t.Fatalf("unsigned call: %d %s ran=%v", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), ran)
	}
}

func TestCallPageTokensAreScoped(t *testing.T) {
	s := NewServer(Options{Region: "us-west-2"})
	a := &Call{server: s, scope: "acct\x00ivs\x00ListChannels"}
	b := &Call{server: s, scope: "acct\x00ivs\x00ListStreamKeys"}
	tok := a.PageToken("name=x", 42)
	if cur, err := a.PageCursor("name=x", tok); err != nil || cur != 42 {
		t.Fatalf("round trip: %d %v", cur, err)
	}
	if _, err := a.PageCursor("name=y", tok); err == nil {
		t.Fatal("token accepted for other filters")
	}
	if _, err := b.PageCursor("name=x", tok); err == nil {
		t.Fatal("token accepted for another operation")
	}
}
