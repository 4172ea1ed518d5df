// Package blob owns object storage: writing, reading and listing objects in
// S3-compatible buckets (AWS S3, MinIO, Versity, Ceph, ...) for the audit
// log and, later, recordings. A local-directory store joins it when
// recordings need one.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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

// Put writes body (read from its start) as bucket/key.
func (s *S3) Put(ctx context.Context, bucket, key string, body io.ReadSeeker, obj Object) error {
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body}
	if obj.ContentType != "" {
		in.ContentType = aws.String(obj.ContentType)
	}
	if obj.ContentEncoding != "" {
		in.ContentEncoding = aws.String(obj.ContentEncoding)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("blob: putting s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// Get reads bucket/key whole.
func (s *S3) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("blob: getting s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// List returns the keys under prefix, in key order.
func (s *S3) List(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("blob: listing s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
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
