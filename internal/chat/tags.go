package chat

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
// (lengths and the 50-tag bound of one request are model checks).
func validateTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return validation("tags", "at most %d tags are allowed per resource.", maxTags)
	}
	for k := range tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return validation("tags", "the aws: prefix is reserved for AWS use (key %q).", k)
		}
	}
	return nil
}

// taggable resolves a tag route's ARN to one of the caller's rooms or
// logging configurations (chat tokens are no API resource).
func (s *Service) taggable(ctx context.Context, account, arn string) (*store.Resource, error) {
	a, _ := parseARN(arn)
	switch a.Kind {
	case KindRoom, KindLoggingConfiguration:
		return s.lookup(ctx, account, a.Kind, arn)
	}
	return nil, &awsapi.Error{
		Code: awsapi.CodeNotFound, Message: "Resource " + arn + " not found.",
		Fields: map[string]any{"resourceId": idOf(arn)},
	}
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
	r, err := s.taggable(ctx, call.Account, in.ResourceArn)
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
			return validation("tags", "the resource would have %d tags; at most %d are allowed.", len(merged), maxTags)
		}
		r.Tags = merged
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(r.Kind, in.ResourceArn)
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
	r, err := s.taggable(ctx, call.Account, in.ResourceArn)
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
		return nil, notFound(r.Kind, in.ResourceArn)
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
	r, err := s.taggable(ctx, call.Account, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": tagsOrEmpty(r.Tags)}, nil
}
