package blob

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config says where an S3-compatible store is and how to sign for it.
type S3Config struct {
	// Endpoint is the store's base URL (http://127.0.0.1:7070); empty means
	// AWS S3 itself. Buckets are addressed path-style (endpoint/bucket/key),
	// which every S3-compatible server understands.
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
}

// S3 is a client of one S3-compatible store.
type S3 struct {
	client *s3.Client
}

// NewS3 returns a client; it does not contact the store.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Region == "" {
		return nil, errors.New("blob: S3 region is required")
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("blob: S3 access key ID and secret access key are required")
	}
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: true,
		Credentials:  aws.NewCredentialsCache(staticCredentials{cfg.AccessKeyID, cfg.SecretAccessKey}),
		// Checksums only where S3 requires them: S3-compatible servers do
		// not all speak the SDK's default trailing CRC32 (aws-chunked).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("blob: S3 endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return &S3{client: s3.New(opts)}, nil
}

type staticCredentials struct{ id, secret string }

func (c staticCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, Source: "openivs config"}, nil
}

// Object describes an object to write.
type Object struct {
	ContentType     string
	ContentEncoding string
}

// Put writes body (read from its start) as bucket/key. It does not retry:
// its callers do, at their own pace.
func (s *S3) Put(ctx context.Context, bucket, key string, body io.ReadSeeker, obj Object) error {
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("blob: putting s3://%s/%s: rewinding the body: %w", bucket, key, err)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body}
	if obj.ContentType != "" {
		in.ContentType = aws.String(obj.ContentType)
	}
	if obj.ContentEncoding != "" {
		in.ContentEncoding = aws.String(obj.ContentEncoding)
	}
	if _, err := s.client.PutObject(ctx, in, noRetries); err != nil {
		return fmt.Errorf("blob: putting s3://%s/%s: %w", bucket, key, classify(err, nil))
	}
	return nil
}

func noRetries(o *s3.Options) { o.Retryer = aws.NopRetryer{} }

// Get reads bucket/key whole; ErrNotFound when the key does not exist,
// ErrNoSuchBucket when the bucket does not.
func (s *S3) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("blob: getting s3://%s/%s: %w", bucket, key, classify(err, ErrNotFound))
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("blob: reading s3://%s/%s: %w", bucket, key, err)
	}
	return body, nil
}

// List returns the keys under prefix, in key order.
func (s *S3) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("blob: listing s3://%s/%s: %w", bucket, prefix, classify(err, nil))
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	// S3 lists in byte order; not every S3-compatible server does (Versity's
	// posix backend lists "a/b" before "a.b").
	slices.Sort(keys)
	return keys, nil
}

// writeCheckPrefix is where CheckBucket puts its probe objects.
const writeCheckPrefix = ".openivs-write-check/"

// CheckBucket reports whether bucket exists (HeadBucket) and takes objects:
// it puts a small probe object under .openivs-write-check/ and deletes it
// again. A probe that cannot be deleted is left behind without failing the
// check: writing is what recordings need, and write-only credentials are
// a sound way to give them.
func (s *S3) CheckBucket(ctx context.Context, bucket string) error {
	if err := CheckBucketName(bucket); err != nil {
		return fmt.Errorf("blob: checking s3://%s: %w: %w", bucket, ErrNoSuchBucket, err)
	}
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		// HEAD answers carry no error code: a 404 is the bucket's.
		return fmt.Errorf("blob: checking s3://%s: %w", bucket, classify(err, ErrNoSuchBucket))
	}
	key := writeCheckPrefix + rand.Text()
	body := strings.NewReader("openivs write check\n")
	if err := s.Put(ctx, bucket, key, body, Object{ContentType: "text/plain"}); err != nil {
		return fmt.Errorf("blob: checking s3://%s is writable: %w", bucket, err)
	}
	_, _ = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return nil
}

// classify wraps an S3 error with the Store error it means: ErrNoSuchBucket
// for NoSuchBucket, ErrNotFound for NoSuchKey, ErrAccessDenied for any 403,
// and notFound (when not nil) for another 404. The SDK's error stays in the
// chain.
func classify(err error, notFound error) error {
	var code string
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		code = apiErr.ErrorCode()
	}
	status := 0
	if respErr, ok := errors.AsType[*awshttp.ResponseError](err); ok {
		status = respErr.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchBucket":
		return fmt.Errorf("%w: %w", ErrNoSuchBucket, err)
	case code == "NoSuchKey":
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case status == http.StatusForbidden || code == "AccessDenied":
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case status == http.StatusNotFound && notFound != nil:
		return fmt.Errorf("%w: %w", notFound, err)
	}
	return err
}

// CreateBucket makes a bucket; one that already exists and is ours is fine.
func (s *S3) CreateBucket(ctx context.Context, bucket string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region := s.client.Options().Region; region != "us-east-1" {
		// AWS wants the region named outside us-east-1.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	_, err := s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("blob: creating bucket %s: %w", bucket, err)
	}
	return nil
}
