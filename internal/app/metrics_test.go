package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ivssdk "github.com/aws/aws-sdk-go-v2/service/ivs"
)

// TestMetricsEndpoints: GET /metrics serves the registry with the API
// calls made through the SDK (counts, error codes, latency histogram) and
// no ConcurrentStreams series while nothing is live;
// /v1/sessions/<id>/metrics answers an unknown stream with a JSON 404.
func TestMetricsEndpoints(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir()))
	base := "http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"])
	creds := a.Credentials()
	client := ivssdk.New(ivssdk.Options{
		Region: "us-west-2", BaseEndpoint: aws.String(base),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, nil
		}),
	})
	ctx := context.Background()
	if _, err := client.CreateChannel(ctx, &ivssdk.CreateChannelInput{Name: aws.String("metrics")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetChannel(ctx, &ivssdk.GetChannelInput{Arn: aws.String("arn:aws:ivs:us-west-2:123456789012:channel/abcdABCD1234")}); err == nil {
		t.Fatal("GetChannel of a missing channel succeeded")
	}

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	want := []string{
		`openivs_api_requests_total{operation="CreateChannel",service="ivs"} 1`,
		`openivs_api_errors_total{code="ResourceNotFoundException",operation="GetChannel",service="ivs"} 1`,
		`openivs_api_request_duration_seconds_count{operation="GetChannel",service="ivs"} 1`,
		`openivs_transcode_processes 0`,
	}
	// The call hook runs just after the answer is written.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, text := get("/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
			}
		}
		if resp.StatusCode == http.StatusOK && missing == "" {
			if strings.Contains(text, "openivs_concurrent_streams{") {
				t.Errorf("ConcurrentStreams series with nothing live:\n%s", text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics %d lacks %q:\n%s", resp.StatusCode, missing, text)
		}
		time.Sleep(20 * time.Millisecond)
	}

	resp, body := get("/v1/sessions/st-000000000000000000000000/metrics")
	var msg map[string]string
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal([]byte(body), &msg) != nil || msg["message"] == "" {
		t.Errorf("unknown stream: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}
