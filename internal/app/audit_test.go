package app

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	ivssdk "github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/testutil/awstest"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

// auditRecords reads every record in the audit directory.
func auditRecords(t *testing.T, dir string) []map[string]any {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: bad line %q: %v", e.Name(), sc.Bytes(), err)
			}
			out = append(out, m)
		}
	}
	return out
}

func requestID(t *testing.T, md middleware.Metadata) string {
	t.Helper()
	id, ok := awsmiddleware.GetRequestIDMetadata(md)
	if !ok || id == "" {
		t.Fatal("no request ID in the response")
	}
	return id
}

// TestAuditLogThroughSDK makes real SDK calls and reads the audit files:
// one CloudTrail-shaped record per call, with the right fields, and no
// secret the API handed out anywhere in them.
func TestAuditLogThroughSDK(t *testing.T) {
	cfg := testConfig(t.TempDir())
	a := startApp(t, cfg)
	dir := filepath.Join(cfg.DataDir, "audit")
	creds := a.Credentials()
	client := ivssdk.New(ivssdk.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"])),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, nil
		}),
		// A retried request is a second call with its own record; records
		// are matched by request ID below.
		Retryer: awstest.Retryer(),
	})
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Second)

	// The calls, and the request ID each one got.
	ids := map[string]string{}
	created, err := client.CreateChannel(ctx, &ivssdk.CreateChannelInput{Name: aws.String("audited"), Tags: map[string]string{"team": "video"}})
	if err != nil {
		t.Fatal(err)
	}
	ids["CreateChannel"] = requestID(t, created.ResultMetadata)
	channelARN, keyARN := aws.ToString(created.Channel.Arn), aws.ToString(created.StreamKey.Arn)
	secrets := []string{aws.ToString(created.StreamKey.Value), aws.ToString(created.Channel.Srt.Passphrase)}

	key, err := client.GetStreamKey(ctx, &ivssdk.GetStreamKeyInput{Arn: aws.String(keyARN)})
	if err != nil {
		t.Fatal(err)
	}
	ids["GetStreamKey"] = requestID(t, key.ResultMetadata)
	secrets = append(secrets, aws.ToString(key.StreamKey.Value))

	list, err := client.ListChannels(ctx, &ivssdk.ListChannelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	ids["ListChannels"] = requestID(t, list.ResultMetadata)

	batch, err := client.BatchGetStreamKey(ctx, &ivssdk.BatchGetStreamKeyInput{Arns: []string{keyARN}})
	if err != nil {
		t.Fatal(err)
	}
	ids["BatchGetStreamKey"] = requestID(t, batch.ResultMetadata)

	// A mutating call whose answer carries the SRT passphrase.
	updated, err := client.UpdateChannel(ctx, &ivssdk.UpdateChannelInput{Arn: aws.String(channelARN), LatencyMode: types.ChannelLatencyModeNormalLatency})
	if err != nil {
		t.Fatal(err)
	}
	ids["UpdateChannel"] = requestID(t, updated.ResultMetadata)
	secrets = append(secrets, aws.ToString(updated.Channel.Srt.Passphrase))

	// Failures: a missing channel, and timed metadata (sensitive in the
	// model) on a channel that is not live.
	missingARN := "arn:aws:ivs:us-west-2:123456789012:channel/doesNotExist"
	_, err = client.GetChannel(ctx, &ivssdk.GetChannelInput{Arn: aws.String(missingARN)})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("GetChannel of a missing channel: %v", err)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) {
		t.Fatalf("no response error in %v", err)
	}
	ids["GetChannel"] = respErr.ServiceRequestID()
	const metadata = "audit-test-private-metadata-payload"
	_, err = client.PutMetadata(ctx, &ivssdk.PutMetadataInput{ChannelArn: aws.String(channelARN), Metadata: aws.String(metadata)})
	var notLive *types.ChannelNotBroadcasting
	if !errors.As(err, &notLive) || !errors.As(err, &respErr) {
		t.Fatalf("PutMetadata: %v", err)
	}
	ids["PutMetadata"] = respErr.ServiceRequestID()
	secrets = append(secrets, metadata)
	for _, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("secret %q too short to search for", s)
		}
	}

	// Every record reaches the disk promptly, before any shutdown.
	byOp := map[string]map[string]any{}
	deadline := time.Now().Add(3 * time.Second)
	for len(byOp) < len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("after 3 s the audit log holds %d of %d records: %v", len(byOp), len(ids), byOp)
		}
		time.Sleep(20 * time.Millisecond)
		byOp = map[string]map[string]any{}
		for _, r := range auditRecords(t, dir) {
			if op, _ := r["eventName"].(string); ids[op] == r["requestID"] {
				byOp[op] = r
			}
		}
	}

	for op := range ids {
		r := byOp[op]
		ident, _ := r["userIdentity"].(map[string]any)
		wantIdent := map[string]any{"type": "Root", "principalId": "123456789012", "arn": "arn:aws:iam::123456789012:root",
			"accountId": "123456789012", "accessKeyId": creds.AccessKeyID}
		for k, v := range wantIdent {
			if ident[k] != v {
				t.Errorf("%s: userIdentity.%s = %v, want %v", op, k, ident[k], v)
			}
		}
		fixed := map[string]any{
			"eventVersion": "1.08", "eventSource": "ivs.amazonaws.com", "awsRegion": "us-west-2",
			"sourceIPAddress": "127.0.0.1", "eventType": "AwsApiCall", "managementEvent": true,
			"recipientAccountId": "123456789012", "eventCategory": "Management",
			"readOnly": strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") || strings.HasPrefix(op, "BatchGet"),
		}
		for k, v := range fixed {
			if r[k] != v {
				t.Errorf("%s: %s = %v, want %v", op, k, r[k], v)
			}
		}
		if ua, _ := r["userAgent"].(string); !strings.Contains(ua, "aws-sdk-go-v2") {
			t.Errorf("%s: userAgent %q", op, ua)
		}
		at, err := time.Parse(time.RFC3339, r["eventTime"].(string))
		if err != nil || !strings.HasSuffix(r["eventTime"].(string), "Z") || at.Before(start) || at.After(time.Now()) {
			t.Errorf("%s: eventTime %v (%v)", op, r["eventTime"], err)
		}
		if id, _ := r["eventID"].(string); len(id) != 36 {
			t.Errorf("%s: eventID %q", op, id)
		}
	}

	// Per call.
	param := func(op string) map[string]any { m, _ := byOp[op]["requestParameters"].(map[string]any); return m }
	resp := func(op string) map[string]any { m, _ := byOp[op]["responseElements"].(map[string]any); return m }
	if p := param("CreateChannel"); p["name"] != "audited" || p["tags"].(map[string]any)["team"] != "video" {
		t.Errorf("CreateChannel requestParameters %v", p)
	}
	r := resp("CreateChannel")
	if ch, _ := r["channel"].(map[string]any); ch["arn"] != channelARN || ch["srt"].(map[string]any)["passphrase"] != "HIDDEN_DUE_TO_SECURITY_REASONS" {
		t.Errorf("CreateChannel responseElements.channel %v", r["channel"])
	}
	if sk, _ := r["streamKey"].(map[string]any); sk["arn"] != keyARN || sk["channelArn"] != channelARN || sk["value"] != "HIDDEN_DUE_TO_SECURITY_REASONS" {
		t.Errorf("CreateChannel responseElements.streamKey %v", r["streamKey"])
	}
	if p := param("GetStreamKey"); p["arn"] != keyARN || byOp["GetStreamKey"]["responseElements"] != nil {
		t.Errorf("GetStreamKey: requestParameters %v responseElements %v", p, byOp["GetStreamKey"]["responseElements"])
	}
	if v, ok := byOp["ListChannels"]["requestParameters"]; !ok || v != nil {
		t.Errorf("ListChannels requestParameters %v, want null", v)
	}
	if v, ok := byOp["ListChannels"]["responseElements"]; !ok || v != nil {
		t.Errorf("ListChannels responseElements %v, want null", v)
	}
	if ch, _ := resp("UpdateChannel")["channel"].(map[string]any); ch["latencyMode"] != "NORMAL" ||
		ch["srt"].(map[string]any)["passphrase"] != "HIDDEN_DUE_TO_SECURITY_REASONS" {
		t.Errorf("UpdateChannel responseElements %v", resp("UpdateChannel"))
	}
	miss := byOp["GetChannel"]
	if miss["errorCode"] != "ResourceNotFoundException" || miss["errorMessage"] != aws.ToString(notFound.ExceptionMessage) ||
		miss["errorMessage"] == "" || miss["responseElements"] != nil || param("GetChannel")["arn"] != missingARN {
		t.Errorf("GetChannel of a missing channel: %v (SDK message %q)", miss, aws.ToString(notFound.ExceptionMessage))
	}
	put := byOp["PutMetadata"]
	if put["errorCode"] != "ChannelNotBroadcasting" || param("PutMetadata")["metadata"] != "HIDDEN_DUE_TO_SECURITY_REASONS" ||
		put["readOnly"] != false {
		t.Errorf("PutMetadata: %v", put)
	}
	for op, r := range byOp {
		if _, ok := ids[op]; ok {
			if _, has := r["errorCode"]; has != (op == "GetChannel" || op == "PutMetadata") {
				t.Errorf("%s: errorCode %v", op, r["errorCode"])
			}
		}
	}

	// After shutdown every file is complete: no file, no line, holds a
	// secret the API returned.
	shutdown(t, a)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("audit dir: %v, %d files", err, len(entries))
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("audit dir mode %v", st.Mode().Perm())
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", e.Name(), st.Mode().Perm())
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("%s holds the secret %q", e.Name(), s)
			}
		}
		if bytes.Contains(raw, []byte(creds.SecretAccessKey)) {
			t.Errorf("%s holds the root secret access key", e.Name())
		}
	}
	seen := map[any]bool{}
	for _, r := range auditRecords(t, dir) {
		if seen[r["requestID"]] {
			t.Errorf("two records of request %v", r["requestID"])
		}
		seen[r["requestID"]] = true
	}
	for op, id := range ids {
		if !seen[id] {
			t.Errorf("%s's record is gone after shutdown", op)
		}
	}
}

// TestAuditLogOff: --audit-dir off writes nothing.
func TestAuditLogOff(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.AuditDir = "off"
	a := startApp(t, cfg)
	creds := a.Credentials()
	client := ivssdk.New(ivssdk.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"])),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, nil
		}),
	})
	if _, err := client.ListChannels(context.Background(), &ivssdk.ListChannelsInput{}); err != nil {
		t.Fatal(err)
	}
	shutdown(t, a)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "audit")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("audit dir exists with --audit-dir off: %v", err)
	}
}

// TestAuditLogToS3: with --audit-s3-bucket the files go to a real S3 server
// (Versity), gzipped under the CloudTrail layout, and leave the disk; no
// secret reaches the bucket either.
func TestAuditLogToS3(t *testing.T) {
	srv := s3test.Start(t)
	store, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.CreateBucket(ctx, "openivs-trail"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.AuditS3Bucket, cfg.S3Endpoint, cfg.S3Region = "openivs-trail", srv.Endpoint, srv.Region
	cfg.S3AccessKeyID, cfg.S3SecretAccessKey = srv.AccessKeyID, srv.SecretAccessKey
	a := startApp(t, cfg)
	creds := a.Credentials()
	client := ivssdk.New(ivssdk.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"])),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, nil
		}),
		Retryer: awstest.Retryer(),
	})
	created, err := client.CreateChannel(ctx, &ivssdk.CreateChannelInput{Name: aws.String("shipped")})
	if err != nil {
		t.Fatal(err)
	}
	id := requestID(t, created.ResultMetadata)
	shutdown(t, a)

	if left, _ := filepath.Glob(filepath.Join(cfg.DataDir, "audit", "*.jsonl")); len(left) != 0 {
		t.Fatalf("audit files left on disk after delivery: %v", left)
	}
	keys, err := store.List(ctx, "openivs-trail", "AWSLogs/123456789012/openivs/us-west-2/")
	if err != nil || len(keys) != 1 || !strings.HasSuffix(keys[0], ".jsonl.gz") {
		t.Fatalf("objects %v, %v", keys, err)
	}
	raw, err := store.Get(ctx, "openivs-trail", keys[0])
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(plain, []byte(`"requestID":"`+id+`"`)) || !bytes.Contains(plain, []byte(`"eventName":"CreateChannel"`)) {
		t.Fatalf("shipped file lacks the CreateChannel record: %s", plain)
	}
	for _, secret := range []string{aws.ToString(created.StreamKey.Value), aws.ToString(created.Channel.Srt.Passphrase)} {
		if bytes.Contains(plain, []byte(secret)) {
			t.Errorf("the shipped file holds the secret %q", secret)
		}
	}
}
