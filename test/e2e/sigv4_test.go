package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
)

// rawResponse is one HTTP exchange with the API.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as an object (nil if it is not one).
func (r rawResponse) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// newAPIRequest builds an IVS REST-JSON request to path on srv.
func newAPIRequest(t testing.TB, srv *server, method, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, srv.Endpoint+path, bytes.NewReader(body))
	must(t, err, "new request")
	req.Header.Set("Content-Type", "application/json")
	return req
}

// sign signs req (with body) for service "ivs" at time at.
func sign(t testing.TB, req *http.Request, body []byte, id, secret string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ivs", testRegion, at)
	must(t, err, "sign")
}

func send(t testing.TB, srv *server, req *http.Request) rawResponse {
	t.Helper()
	resp, err := srv.client.Do(req)
	must(t, err, req.Method+" "+req.URL.Path)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err, "read body")
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// signedCall sends a correctly signed request with the root credentials.
func signedCall(t testing.TB, srv *server, method, path string, body []byte) rawResponse {
	t.Helper()
	req := newAPIRequest(t, srv, method, path, body)
	sign(t, req, body, testAccessKeyID, testSecretAccessKey, time.Now())
	return send(t, srv, req)
}

// checkError asserts the AWS error shape: status, x-amzn-ErrorType, a
// request id, a JSON content type and a JSON body with a message.
func checkError(t testing.TB, what string, r rawResponse, status int, code string, mentions ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d (body %s)", what, r.Status, status, r.Body)
	}
	got := r.Header.Get("x-amzn-ErrorType")
	switch {
	case code == "" && got == "":
		t.Errorf("%s: no x-amzn-ErrorType header", what)
	case code != "" && got != code && !strings.HasPrefix(got, code+":"):
		t.Errorf("%s: x-amzn-ErrorType %q, want %q", what, got, code)
	}
	if r.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("%s: no x-amzn-RequestId header", what)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	m := r.JSON()
	msg, _ := m["message"].(string)
	if m == nil || msg == "" {
		t.Errorf("%s: body %s is not JSON with a message", what, r.Body)
	}
	for _, s := range mentions {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(s)) {
			t.Errorf("%s: message %q does not mention %q", what, msg, s)
		}
	}
}

func channelCount(t testing.TB, c *ivs.Client) int {
	t.Helper()
	out, err := c.ListChannels(ctx(t), &ivs.ListChannelsInput{})
	must(t, err, "ListChannels")
	return len(out.Channels)
}

func TestSigV4(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--max-body-bytes", "1024"}})
	c := ivsClient(t, srv)
	createBody := []byte(`{"name":"sigv4"}`)

	// The control: a correctly signed raw request works, so the failures
	// below are caused by what each case breaks and nothing else.
	ok := signedCall(t, srv, "POST", "/CreateChannel", createBody)
	if ok.Status != http.StatusOK {
		t.Fatalf("correctly signed CreateChannel: status %d, body %s", ok.Status, ok.Body)
	}
	if ok.Header.Get("x-amzn-RequestId") == "" {
		t.Errorf("success without x-amzn-RequestId")
	}
	if ct := ok.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("success Content-Type %q", ct)
	}
	var created struct {
		Channel struct {
			Arn  string `json:"arn"`
			Name string `json:"name"`
		} `json:"channel"`
		StreamKey struct {
			Arn   string `json:"arn"`
			Value string `json:"value"`
		} `json:"streamKey"`
	}
	if err := json.Unmarshal(ok.Body, &created); err != nil || created.Channel.Name != "sigv4" || created.StreamKey.Value == "" {
		t.Fatalf("CreateChannel body %s (err %v)", ok.Body, err)
	}
	baseline := channelCount(t, c)
	eq(t, "channels after the control", baseline, 1)

	// ListStreamKeys summaries never carry the key's value.
	lsk := signedCall(t, srv, "POST", "/ListStreamKeys", []byte(`{"channelArn":"`+created.Channel.Arn+`"}`))
	eq(t, "ListStreamKeys status", lsk.Status, http.StatusOK)
	if bytes.Contains(lsk.Body, []byte(created.StreamKey.Value)) || bytes.Contains(lsk.Body, []byte(`"value"`)) {
		t.Errorf("ListStreamKeys exposes the key value: %s", lsk.Body)
	}
	if !bytes.Contains(lsk.Body, []byte(created.StreamKey.Arn)) {
		t.Errorf("ListStreamKeys does not list %s: %s", created.StreamKey.Arn, lsk.Body)
	}

	cases := []struct {
		name     string
		build    func() *http.Request
		code     string
		mentions []string
	}{
		{"wrong secret", func() *http.Request {
			req := newAPIRequest(t, srv, "POST", "/CreateChannel", createBody)
			sign(t, req, createBody, testAccessKeyID, "not-the-secret", time.Now())
			return req
		}, "InvalidSignatureException", nil},
		{"unknown access key id", func() *http.Request {
			req := newAPIRequest(t, srv, "POST", "/CreateChannel", createBody)
			sign(t, req, createBody, "AKIAUNKNOWNKEY000000", testSecretAccessKey, time.Now())
			return req
		}, "UnrecognizedClientException", nil},
		{"no Authorization header", func() *http.Request {
			return newAPIRequest(t, srv, "POST", "/CreateChannel", createBody)
		}, "MissingAuthenticationTokenException", nil},
		{"X-Amz-Date 20 minutes old", func() *http.Request {
			req := newAPIRequest(t, srv, "POST", "/CreateChannel", createBody)
			sign(t, req, createBody, testAccessKeyID, testSecretAccessKey, time.Now().Add(-20*time.Minute))
			return req
		}, "InvalidSignatureException", []string{"Signature expired"}},
		{"X-Amz-Date 20 minutes ahead", func() *http.Request {
			req := newAPIRequest(t, srv, "POST", "/CreateChannel", createBody)
			sign(t, req, createBody, testAccessKeyID, testSecretAccessKey, time.Now().Add(20*time.Minute))
			return req
		}, "InvalidSignatureException", nil},
		{"body tampered after signing", func() *http.Request {
			req := newAPIRequest(t, srv, "POST", "/CreateChannel", createBody)
			sign(t, req, createBody, testAccessKeyID, testSecretAccessKey, time.Now())
			tampered := []byte(`{"name":"evil1"}`) // same length, other bytes
			req.Body = io.NopCloser(bytes.NewReader(tampered))
			req.ContentLength = int64(len(tampered))
			return req
		}, "InvalidSignatureException", nil},
		{"signed for another region", func() *http.Request {
			req := newAPIRequest(t, srv, "POST", "/CreateChannel", createBody)
			sum := sha256.Sum256(createBody)
			err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecretAccessKey},
				req, hex.EncodeToString(sum[:]), "ivs", "eu-west-1", time.Now())
			must(t, err, "sign")
			return req
		}, "", nil},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			r := send(t, srv, tc.build())
			checkError(t, tc.name, r, http.StatusForbidden, tc.code, tc.mentions...) // code "": any 403 error
			if got := channelCount(t, c); got != baseline {
				t.Errorf("channels after a rejected CreateChannel: %d, want %d", got, baseline)
			}
		})
	}

	t.Run("body_over_limit", func(t *testing.T) {
		big := []byte(`{"name":"big","tags":{"k":"` + strings.Repeat("v", 1500) + `"}}`)
		r := signedCall(t, srv, "POST", "/CreateChannel", big)
		checkError(t, "body over --max-body-bytes", r, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException")
		if got := channelCount(t, c); got != baseline {
			t.Errorf("channels after an oversized CreateChannel: %d, want %d", got, baseline)
		}
		// Just under the limit is fine.
		small := []byte(`{"name":"small","tags":{"k":"` + strings.Repeat("v", 200) + `"}}`)
		r = signedCall(t, srv, "POST", "/CreateChannel", small)
		if r.Status != http.StatusOK {
			t.Errorf("CreateChannel under the body limit: status %d, body %s", r.Status, r.Body)
		}
		baseline++
	})

	t.Run("unknown_operation", func(t *testing.T) {
		r := signedCall(t, srv, "POST", "/NoSuchOperation", []byte(`{}`))
		checkError(t, "unknown operation", r, http.StatusNotFound, "")
	})

	t.Run("service_errors_have_shape", func(t *testing.T) {
		r := signedCall(t, srv, "POST", "/GetChannel", []byte(`{"arn":"`+unknownChannelARN+`"}`))
		checkError(t, "GetChannel unknown", r, http.StatusNotFound, "ResourceNotFoundException")
		r = signedCall(t, srv, "POST", "/CreateChannel", []byte(`{"name":"bad name!"}`))
		checkError(t, "CreateChannel bad name", r, http.StatusBadRequest, "ValidationException", "name")
		r = signedCall(t, srv, "POST", "/CreateChannel", []byte(`{"name":`))
		checkError(t, "malformed JSON", r, http.StatusBadRequest, "")
	})

	if got := channelCount(t, c); got != baseline {
		t.Errorf("channels at the end: %d, want %d", got, baseline)
	}
}
