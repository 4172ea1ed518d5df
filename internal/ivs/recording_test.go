package ivs_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/store"
	"github.com/openivs/openivs/internal/testutil/awstest"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

// serveIVS serves a service with buckets on st over real HTTP and returns
// an SDK client; the service is closed before st.
func serveIVS(t *testing.T, st store.Store, buckets ivs.BucketChecker) (*sdk.Client, *ivs.Service) {
	t.Helper()
	svc, err := ivs.New(ivs.Config{Store: st, Region: testRegion, AccountID: testAccount,
		IngestEndpoint: "localhost:1936", SRTEndpoint: "localhost:9000", PlaybackBaseURL: "http://localhost:8080",
		Buckets: buckets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	api := awsapi.NewServer(awsapi.Options{Region: testRegion, Credentials: staticCreds{}, DisableRateLimits: true})
	if err := api.Mount(svc.API()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client := sdk.New(sdk.Options{
		BaseEndpoint: aws.String(srv.URL),
		Region:       testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, nil
		}),
		Retryer: awstest.Retryer(),
	})
	return client, svc
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func createRecording(t *testing.T, c *sdk.Client, bucket string) *types.RecordingConfiguration {
	t.Helper()
	out, err := c.CreateRecordingConfiguration(context.Background(), &sdk.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(bucket)}},
	})
	if err != nil {
		t.Fatalf("CreateRecordingConfiguration %s: %v", bucket, err)
	}
	return out.RecordingConfiguration
}

// waitRecordingState polls GetRecordingConfiguration until the state
// leaves CREATING and returns it.
func waitRecordingState(t *testing.T, c *sdk.Client, arn *string) types.RecordingConfigurationState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := c.GetRecordingConfiguration(context.Background(), &sdk.GetRecordingConfigurationInput{Arn: arn})
		if err != nil {
			t.Fatal(err)
		}
		if s := out.RecordingConfiguration.State; s != types.RecordingConfigurationStateCreating {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still CREATING after 10 s", aws.ToString(arn))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRecordingConfigurationStateOnS3(t *testing.T) {
	srv := s3test.Start(t)
	s3, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.CreateBucket(context.Background(), "ivs-recordings"); err != nil {
		t.Fatal(err)
	}
	c, _ := serveIVS(t, openStore(t), s3)

	good := createRecording(t, c, "ivs-recordings")
	missing := createRecording(t, c, "no-such-bucket")
	for _, rc := range []*types.RecordingConfiguration{good, missing} {
		if rc.State != types.RecordingConfigurationStateCreating {
			t.Errorf("%s: created %s, want CREATING", aws.ToString(rc.DestinationConfiguration.S3.BucketName), rc.State)
		}
	}
	if s := waitRecordingState(t, c, good.Arn); s != types.RecordingConfigurationStateActive {
		t.Errorf("existing bucket: %s, want ACTIVE", s)
	}
	if s := waitRecordingState(t, c, missing.Arn); s != types.RecordingConfigurationStateCreateFailed {
		t.Errorf("missing bucket: %s, want CREATE_FAILED", s)
	}
	ls, err := c.ListRecordingConfigurations(context.Background(), &sdk.ListRecordingConfigurationsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ls.RecordingConfigurations {
		want := types.RecordingConfigurationStateActive
		if aws.ToString(s.Arn) == aws.ToString(missing.Arn) {
			want = types.RecordingConfigurationStateCreateFailed
		}
		if s.State != want {
			t.Errorf("listed %s as %s, want %s", aws.ToString(s.Arn), s.State, want)
		}
	}
	// The write check left nothing behind.
	if keys, err := s3.List(context.Background(), "ivs-recordings", ""); err != nil || len(keys) != 0 {
		t.Errorf("bucket holds %v, %v after the check", keys, err)
	}
}

func TestRecordingConfigurationStateOnLocal(t *testing.T) {
	root := filepath.Join(t.TempDir(), "recordings")
	c, _ := serveIVS(t, openStore(t), blob.NewLocal(root))
	rc := createRecording(t, c, "my.recordings-1")
	if rc.State != types.RecordingConfigurationStateCreating {
		t.Errorf("created %s, want CREATING", rc.State)
	}
	if s := waitRecordingState(t, c, rc.Arn); s != types.RecordingConfigurationStateActive {
		t.Errorf("local bucket: %s, want ACTIVE", s)
	}
	if st, err := os.Stat(filepath.Join(root, "my.recordings-1")); err != nil || !st.IsDir() {
		t.Errorf("the bucket directory was not made: %v", err)
	}
}

func TestRecordingConfigurationWithoutChecker(t *testing.T) {
	c, _ := serveIVS(t, openStore(t), nil)
	if rc := createRecording(t, c, "any-bucket"); rc.State != types.RecordingConfigurationStateActive {
		t.Errorf("created %s, want ACTIVE at once without a bucket checker", rc.State)
	}
}

func TestRecordingConfigurationBucketNames(t *testing.T) {
	c, _ := serveIVS(t, openStore(t), blob.NewLocal(t.TempDir()))
	for _, name := range []string{"-abc", "abc-", ".abc", "abc.", "a..b", "192.168.5.4", "Bad_Bucket!", "ab", strings.Repeat("a", 64)} {
		_, err := c.CreateRecordingConfiguration(context.Background(), &sdk.CreateRecordingConfigurationInput{
			DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String(name)}},
		})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.ExceptionMessage), "bucketName") {
			t.Errorf("bucket %q: %v, want a ValidationException naming bucketName", name, err)
		}
	}
	ls, err := c.ListRecordingConfigurations(context.Background(), &sdk.ListRecordingConfigurationsInput{})
	if err != nil || len(ls.RecordingConfigurations) != 0 {
		t.Fatalf("invalid configurations were stored: %v, %v", ls, err)
	}
}

// stuckChecker never answers before its context ends.
type stuckChecker struct{ started chan string }

func (c stuckChecker) CheckBucket(ctx context.Context, bucket string) error {
	c.started <- bucket
	<-ctx.Done()
	return ctx.Err()
}

// TestRecordingConfigurationCheckResumes: a check cut short by Close
// leaves the configuration CREATING (usable by channels meanwhile, as the
// IVS documentation does not forbid it), and the next start checks it.
func TestRecordingConfigurationCheckResumes(t *testing.T) {
	st := openStore(t)
	stuck := stuckChecker{started: make(chan string, 1)}
	c, svc := serveIVS(t, st, stuck)
	rc := createRecording(t, c, "later-bucket")
	select {
	case b := <-stuck.started:
		if b != "later-bucket" {
			t.Fatalf("checked %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no bucket check started")
	}
	ch, err := c.CreateChannel(context.Background(), &sdk.CreateChannelInput{RecordingConfigurationArn: rc.Arn})
	if err != nil {
		t.Fatalf("CreateChannel with a CREATING recording configuration: %v", err)
	}
	if aws.ToString(ch.Channel.RecordingConfigurationArn) != aws.ToString(rc.Arn) {
		t.Fatalf("channel recordingConfigurationArn %q", aws.ToString(ch.Channel.RecordingConfigurationArn))
	}
	done := make(chan struct{})
	go func() { svc.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the bucket check")
	}
	got, err := c.GetRecordingConfiguration(context.Background(), &sdk.GetRecordingConfigurationInput{Arn: rc.Arn})
	if err != nil || got.RecordingConfiguration.State != types.RecordingConfigurationStateCreating {
		t.Fatalf("after Close: %v, %v; want CREATING", got, err)
	}

	c2, svc2 := serveIVS(t, st, blob.NewLocal(t.TempDir()))
	n, err := svc2.ResumeBucketChecks(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ResumeBucketChecks: %d, %v; want 1", n, err)
	}
	if s := waitRecordingState(t, c2, rc.Arn); s != types.RecordingConfigurationStateActive {
		t.Errorf("after the resumed check: %s, want ACTIVE", s)
	}
	if n, err := svc2.ResumeBucketChecks(context.Background()); err != nil || n != 0 {
		t.Errorf("ResumeBucketChecks again: %d, %v; want 0", n, err)
	}
}
