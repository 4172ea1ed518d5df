package app

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ivssdk "github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/testutil/awstest"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

func sdkClient(a *App) *ivssdk.Client {
	return ivssdk.New(ivssdk.Options{
		Region:       a.cfg.Region,
		BaseEndpoint: aws.String(apiEndpoint(a)),
		Credentials:  apiCredentials(a),
		Retryer:      awstest.Retryer(),
	})
}

// apiEndpoint is the app's API on its HTTP port.
func apiEndpoint(a *App) string { return "http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"]) }

// apiCredentials signs AWS SDK calls with the app's root credentials.
func apiCredentials(a *App) aws.CredentialsProvider {
	creds := a.Credentials()
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, nil
	})
}

// recordingState creates a recording configuration for bucket, checks it
// starts CREATING and returns the state it settles in.
func recordingState(t *testing.T, c *ivssdk.Client, bucket string) types.RecordingConfigurationState {
	t.Helper()
	ctx := context.Background()
	out, err := c.CreateRecordingConfiguration(ctx, &ivssdk.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.RecordingConfiguration.State != types.RecordingConfigurationStateCreating {
		t.Errorf("%s: created %s, want CREATING", bucket, out.RecordingConfiguration.State)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := c.GetRecordingConfiguration(ctx, &ivssdk.GetRecordingConfigurationInput{Arn: out.RecordingConfiguration.Arn})
		if err != nil {
			t.Fatal(err)
		}
		if s := got.RecordingConfiguration.State; s != types.RecordingConfigurationStateCreating {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still CREATING after 10 s", bucket)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRecordingsToLocalDisk: without S3 settings recordings go to
// DATA_DIR/recordings, where any valid bucket is a directory.
func TestRecordingsToLocalDisk(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.DisableRateLimits = true // recordingState polls
	a := startApp(t, cfg)
	local, ok := a.recordings.(*blob.Local)
	if !ok || local.Root() != filepath.Join(cfg.DataDir, "recordings") {
		t.Fatalf("recordings store %T %+v, want Local at DATA_DIR/recordings", a.recordings, a.recordings)
	}
	if s := recordingState(t, sdkClient(a), "my-recordings"); s != types.RecordingConfigurationStateActive {
		t.Fatalf("state %s, want ACTIVE", s)
	}
	if st, err := os.Stat(filepath.Join(cfg.DataDir, "recordings", "my-recordings")); err != nil || !st.IsDir() {
		t.Fatalf("bucket directory: %v", err)
	}
}

// TestRecordingsToS3: with --s3-* credentials the bucket of a recording
// configuration is checked on the S3 server (Versity).
func TestRecordingsToS3(t *testing.T) {
	srv := s3test.Start(t)
	s3, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.CreateBucket(context.Background(), "ivs-recordings"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.S3Endpoint, cfg.S3Region = srv.Endpoint, srv.Region
	cfg.S3AccessKeyID, cfg.S3SecretAccessKey = srv.AccessKeyID, srv.SecretAccessKey
	cfg.DisableRateLimits = true // recordingState polls
	a := startApp(t, cfg)
	if _, ok := a.recordings.(*blob.S3); !ok {
		t.Fatalf("recordings store %T, want S3", a.recordings)
	}
	c := sdkClient(a)
	if s := recordingState(t, c, "ivs-recordings"); s != types.RecordingConfigurationStateActive {
		t.Errorf("existing bucket: %s, want ACTIVE", s)
	}
	if s := recordingState(t, c, "no-such-bucket"); s != types.RecordingConfigurationStateCreateFailed {
		t.Errorf("missing bucket: %s, want CREATE_FAILED", s)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "recordings")); !os.IsNotExist(err) {
		t.Errorf("DATA_DIR/recordings exists with an S3 store: %v", err)
	}
}
