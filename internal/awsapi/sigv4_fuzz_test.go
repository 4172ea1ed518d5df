package awsapi

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// FuzzVerifySigV4 feeds arbitrary Authorization headers, dates, request
// targets and bodies to the verifier. It must never panic, must only fail
// with a 403 authentication error, and may only succeed for the signer's
// own key.
func FuzzVerifySigV4(f *testing.F) {
	// A valid request signed by the Go SDK, so the corpus starts from a
	// request that passes.
	body := []byte(`{"tags":{"k":"v"}}`)
	target := sigTestTagsPath + "?tagKeys=a&tagKeys=b"
	req, err := http.NewRequest(http.MethodPost, "http://localhost:8080"+target, bytes.NewReader(body))
	if err != nil {
		f.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	creds := aws.Credentials{AccessKeyID: sigTestAccessKey, SecretAccessKey: sigTestSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sigSHA256Hex(body), "ivs", sigTestRegion, sigTestNow); err != nil {
		f.Fatal(err)
	}
	auth, date := req.Header.Get("Authorization"), req.Header.Get("X-Amz-Date")
	const cred = "Credential=" + sigTestAccessKey + "/20260101/us-west-2/ivs/aws4_request"
	seeds := []struct{ auth, date, target string }{
		{auth, date, target},
		{"", date, target},
		{"AWS4-HMAC-SHA256", date, target},
		{"AWS4-HMAC-SHA256 " + cred, date, target},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, Signature=00", date, target},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=;;, Signature=00", date, target},
		{"AWS4-HMAC-SHA256 Credential=////, SignedHeaders=host, Signature=00", date, target},
		{"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=", date, target},
		{"AWS4-HMAC-SHA256 ,,,,=,=,", date, target},
		{"AWS4-HMAC-SHA512 " + cred + ", SignedHeaders=host, Signature=00", date, target},
		{"Bearer x", date, target},
		{auth, "", target},
		{auth, "20260101T00:00:00Z", target},
		{auth, "99999999T999999Z", target},
		{auth, date, "/"},
		{auth, date, "/a/../../b/./%2e%2E//c?"},
		{auth, date, "/%zz?%zz=%zz&&=&a"},
		{"", date, "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + url.QueryEscape(cred[len("Credential="):]) +
			"&X-Amz-Date=" + date + "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00"},
		{"", date, "/?X-Amz-Algorithm=x&X-Amz-Expires=-1"},
	}
	for _, s := range seeds {
		f.Add(s.auth, s.date, s.target, body)
	}
	f.Fuzz(func(t *testing.T, auth, date, target string, body []byte) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http would have answered 400 before any handler
		}
		r := &http.Request{
			Method: http.MethodPost, URL: u, RequestURI: target, Host: "localhost:8080",
			Header: http.Header{}, ContentLength: int64(len(body)),
		}
		r.Header.Set("Content-Type", "application/json")
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		p, aerr := verifySigV4(r, body, sigTestCreds, sigTestRegion, []string{"ivs"}, sigTestNow)
		if aerr != nil {
			if aerr.Status != http.StatusForbidden || aerr.Code == "" || aerr.Message == "" {
				t.Fatalf("bad error %+v", aerr)
			}
			if strings.Contains(aerr.Message, sigTestSecret) {
				t.Fatalf("message leaks the secret: %q", aerr.Message)
			}
			return
		}
		if p.AccessKeyID != sigTestAccessKey || p.Account != sigTestAccount || p.Service != "ivs" {
			t.Fatalf("unexpected principal %+v", p)
		}
	})
}
