package chatlog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/chat/chatlog"
	"github.com/openivs/openivs/internal/testutil/s3test"
)

// destErrors records what a Logger's OnDestinationError is told.
type destErrors struct {
	mu   sync.Mutex
	errs map[string][]error // by logging configuration ARN
}

func (d *destErrors) record(config string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.errs == nil {
		d.errs = map[string][]error{}
	}
	d.errs[config] = append(d.errs[config], err)
}

func (d *destErrors) of(config string) []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.errs[config]...)
}

// TestDestinationErrorsReported: every way records fail to reach a
// destination is reported with the logging configuration it was for (IVS
// Chat's LogDestinationErrors), and a destination that works is not.
func TestDestinationErrorsReported(t *testing.T) {
	t.Run("local files cannot be written", func(t *testing.T) {
		var got destErrors
		file := filepath.Join(t.TempDir(), "a-file")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		e := start(t, func(c *chatlog.Config) {
			c.Dir = filepath.Join(file, "chat-logs") // under a file: never a directory
			c.OnDestinationError = got.record
		})
		e.ctl.setRoom(roomA, cwARN, fhARN)
		e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
		e.ctl.setDest(fhARN, chat.DestinationConfiguration{Firehose: &chat.FirehoseDestination{DeliveryStreamName: "s"}})
		e.publish(t, roomA, messageFrame("msg000000001", "lost"))
		if err := e.logger.Flush(context.Background()); err == nil {
			t.Fatal("Flush succeeded writing under a file")
		}
		for _, config := range []string{cwARN, fhARN} {
			if errs := got.of(config); len(errs) != 1 {
				t.Errorf("%s: errors %v, want one", config, errs)
			}
		}
	})
	t.Run("nowhere to write", func(t *testing.T) {
		var got destErrors
		e := start(t, func(c *chatlog.Config) { c.Dir = ""; c.OnDestinationError = got.record }) // and no Buckets
		e.ctl.setRoom(roomA, cwARN, s3ARN)
		e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
		e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "logs"}})
		e.publish(t, roomA, messageFrame("msg000000001", "one"))
		e.publish(t, roomA, messageFrame("msg000000002", "two"))
		e.flush(t)
		if errs := got.of(cwARN); len(errs) != 2 || !errors.Is(errs[0], chatlog.ErrNoLocalDir) {
			t.Errorf("CloudWatch configuration: errors %v, want ErrNoLocalDir twice", errs)
		}
		if errs := got.of(s3ARN); len(errs) != 2 || !errors.Is(errs[0], chatlog.ErrNoObjectStore) {
			t.Errorf("S3 configuration: errors %v, want ErrNoObjectStore twice", errs)
		}
	})
	t.Run("S3 bucket missing", func(t *testing.T) {
		srv := s3test.Start(t)
		s3, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s3.CreateBucket(ctx, "chat-logs-bucket"); err != nil {
			t.Fatal(err)
		}
		var got destErrors
		e := start(t, func(c *chatlog.Config) { c.Buckets = s3; c.OnDestinationError = got.record })
		e.ctl.setRoom(roomA, s3ARN, cwARN)
		e.ctl.setDest(s3ARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "no-such-bucket"}})
		e.ctl.setDest(cwARN, chat.DestinationConfiguration{CloudWatchLogs: &chat.CloudWatchLogsDestination{LogGroupName: "g"}})
		e.publish(t, roomA, messageFrame("msg000000001", "lost"))
		if err := e.logger.Flush(ctx); !errors.Is(err, blob.ErrNoSuchBucket) {
			t.Fatalf("Flush to a missing bucket: %v", err)
		}
		if errs := got.of(s3ARN); len(errs) != 1 || !errors.Is(errs[0], blob.ErrNoSuchBucket) {
			t.Errorf("S3 configuration: errors %v, want one ErrNoSuchBucket", errs)
		}
		if errs := got.of(cwARN); len(errs) != 0 {
			t.Errorf("the working CloudWatch configuration got errors %v", errs)
		}

		// A configuration whose bucket exists reports nothing.
		const okARN = "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/ok0000000001"
		e.ctl.setDest(okARN, chat.DestinationConfiguration{S3: &chat.S3Destination{BucketName: "chat-logs-bucket"}})
		e.ctl.setRoom(roomB, okARN)
		e.publish(t, roomB, messageFrame("msg000000002", "kept"))
		e.flush(t)
		if errs := got.of(okARN); len(errs) != 0 {
			t.Errorf("the working S3 configuration got errors %v", errs)
		}
	})
}
