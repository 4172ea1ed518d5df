package ivs

import (
	"context"
	"errors"
	"strings"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// maxTags is AWS's per-resource tag limit.
const maxTags = 50

// validateTags applies the AWS tagging rules the model cannot express
// (lengths and characters are checked against the model already).
func validateTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return awsapi.Validation("tags: at most %d tags are allowed per resource.", maxTags)
	}
	for k := range tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return awsapi.Validation("tags: the aws: prefix is reserved for AWS use (key %q).", k)
		}
	}
	return nil
}

// taggable resolves a tag route's ARN to one of the caller's resources.
func (s *Service) taggable(ctx context.Context, call *awsapi.Call, arn string) (*store.Resource, error) {
	a, ok := parseARN(arn)
	if !ok {
		return nil, awsapi.NotFound("Resource %s not found.", arn)
	}
	if _, ok := kindNames[a.Kind]; !ok || a.Kind == KindStreamSession {
		return nil, awsapi.NotFound("Resource %s not found.", arn)
	}
	return s.lookup(ctx, call, a.Kind, arn)
}

func (s *Service) tagResource(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ResourceArn string            `json:"resourceArn"`
		Tags        map[string]string `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	r, err := s.taggable(ctx, call, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	_, err = s.store.Update(ctx, r.ARN, func(r *store.Resource) error {
		merged := make(map[string]string, len(r.Tags)+len(in.Tags))
		for k, v := range r.Tags {
			merged[k] = v
		}
		for k, v := range in.Tags {
			merged[k] = v
		}
		if len(merged) > maxTags {
			return awsapi.Validation("tags: the resource would have %d tags; at most %d are allowed.", len(merged), maxTags)
		}
		r.Tags = merged
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, awsapi.NotFound("Resource %s not found.", in.ResourceArn)
	}
	return struct{}{}, storeError(err)
}

func (s *Service) untagResource(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ResourceArn string   `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.taggable(ctx, call, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	_, err = s.store.Update(ctx, r.ARN, func(r *store.Resource) error {
		for _, k := range in.TagKeys {
			delete(r.Tags, k)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, awsapi.NotFound("Resource %s not found.", in.ResourceArn)
	}
	return struct{}{}, storeError(err)
}

func (s *Service) listTagsForResource(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.taggable(ctx, call, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": tagsOrEmpty(r.Tags)}, nil
}
