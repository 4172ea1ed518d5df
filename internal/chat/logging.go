package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/store"
)

// LoggingStateActive is the state of every logging configuration here:
// creating and updating one is synchronous, as the Create and Update
// responses' state enums (only ACTIVE) say.
const LoggingStateActive = "ACTIVE"

// DestinationConfiguration is the API union of the same name: exactly one
// member is set.
type DestinationConfiguration struct {
	CloudWatchLogs *CloudWatchLogsDestination `json:"cloudWatchLogs,omitempty"`
	Firehose       *FirehoseDestination       `json:"firehose,omitempty"`
	S3             *S3Destination             `json:"s3,omitempty"`
}

// CloudWatchLogsDestination names a CloudWatch Logs log group.
type CloudWatchLogsDestination struct {
	LogGroupName string `json:"logGroupName"`
}

// FirehoseDestination names a Kinesis Data Firehose delivery stream.
type FirehoseDestination struct {
	DeliveryStreamName string `json:"deliveryStreamName"`
}

// S3Destination names an S3 bucket.
type S3Destination struct {
	BucketName string `json:"bucketName"`
}

// check enforces the union rule and S3's bucket-name rules beyond the
// model's pattern.
func (d *DestinationConfiguration) check() error {
	n := 0
	for _, set := range []bool{d.CloudWatchLogs != nil, d.Firehose != nil, d.S3 != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return validation("destinationConfiguration", "exactly one of cloudWatchLogs, firehose and s3 must be set.")
	}
	if d.S3 != nil {
		if err := blob.CheckBucketName(d.S3.BucketName); err != nil {
			return validation("destinationConfiguration.s3.bucketName", "%v.", err)
		}
	}
	return nil
}

type loggingDoc struct {
	Name                     string                   `json:"name"`
	DestinationConfiguration DestinationConfiguration `json:"destinationConfiguration"`
	State                    string                   `json:"state"`
}

// LoggingConfiguration is the API shape (Create/Get/Update responses and
// LoggingConfigurationSummary).
type LoggingConfiguration struct {
	Arn                      string                   `json:"arn"`
	ID                       string                   `json:"id"`
	Name                     string                   `json:"name"`
	CreateTime               string                   `json:"createTime"`
	UpdateTime               string                   `json:"updateTime"`
	DestinationConfiguration DestinationConfiguration `json:"destinationConfiguration"`
	State                    string                   `json:"state"`
	Tags                     map[string]string        `json:"tags"`
}

func loggingOut(r *store.Resource) (*LoggingConfiguration, error) {
	var d loggingDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return nil, err
	}
	return &LoggingConfiguration{
		Arn: r.ARN, ID: idOf(r.ARN), Name: d.Name,
		CreateTime: isoTime(r.CreatedAt), UpdateTime: isoTime(r.UpdatedAt),
		DestinationConfiguration: d.DestinationConfiguration, State: d.State, Tags: tagsOrEmpty(r.Tags),
	}, nil
}

func (s *Service) createLoggingConfiguration(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Name                     string                   `json:"name"`
		DestinationConfiguration DestinationConfiguration `json:"destinationConfiguration"`
		Tags                     map[string]string        `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if err := in.DestinationConfiguration.check(); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	doc, _ := json.Marshal(loggingDoc{Name: in.Name, DestinationConfiguration: in.DestinationConfiguration, State: LoggingStateActive})
	r := &store.Resource{
		ARN: s.arn(call.Account, KindLoggingConfiguration, randomID(12)), Kind: KindLoggingConfiguration,
		Account: call.Account, Name: in.Name, Tags: in.Tags, Doc: doc,
	}
	err := s.store.Insert(ctx, r, store.Quota{Max: s.cfg.Quotas.LoggingConfigurations})
	if errors.Is(err, store.ErrQuotaExceeded) {
		return nil, quotaExceeded(KindLoggingConfiguration, call.Account, s.cfg.Quotas.LoggingConfigurations)
	} else if err != nil {
		return nil, storeError(err)
	}
	return loggingOut(r)
}

func (s *Service) getLoggingConfiguration(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Identifier string `json:"identifier"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.lookup(ctx, call.Account, KindLoggingConfiguration, in.Identifier)
	if err != nil {
		return nil, err
	}
	return loggingOut(r)
}

func (s *Service) updateLoggingConfiguration(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Identifier               string                    `json:"identifier"`
		Name                     *string                   `json:"name"`
		DestinationConfiguration *DestinationConfiguration `json:"destinationConfiguration"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if in.DestinationConfiguration != nil {
		if err := in.DestinationConfiguration.check(); err != nil {
			return nil, err
		}
	}
	if _, err := s.lookup(ctx, call.Account, KindLoggingConfiguration, in.Identifier); err != nil {
		return nil, err
	}
	r, err := s.store.Update(ctx, in.Identifier, func(r *store.Resource) error {
		var d loggingDoc
		if err := json.Unmarshal(r.Doc, &d); err != nil {
			return err
		}
		if in.Name != nil {
			d.Name = *in.Name
		}
		if in.DestinationConfiguration != nil {
			d.DestinationConfiguration = *in.DestinationConfiguration
		}
		r.Doc, _ = json.Marshal(d)
		r.Name = d.Name
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(KindLoggingConfiguration, in.Identifier)
	} else if err != nil {
		return nil, storeError(err)
	}
	return loggingOut(r)
}

func (s *Service) deleteLoggingConfiguration(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Identifier string `json:"identifier"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call.Account, KindLoggingConfiguration, in.Identifier); err != nil {
		return nil, err
	}
	err := s.store.Delete(ctx, in.Identifier)
	var referenced *store.ReferencedError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &referenced):
		// The conflicting resource is the room that still uses it.
		return nil, &awsapi.Error{
			Code: awsapi.CodeConflict,
			Message: fmt.Sprintf("The logging configuration %s is attached to room %s; detach it from every room first.",
				in.Identifier, referenced.By),
			Fields: map[string]any{"resourceId": idOf(referenced.By), "resourceType": resourceTypes[KindRoom]},
		}
	case errors.Is(err, store.ErrNotFound):
		return nil, notFound(KindLoggingConfiguration, in.Identifier)
	}
	return nil, storeError(err)
}

func (s *Service) listLoggingConfigurations(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		MaxResults *int    `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	q := store.Query{Kind: KindLoggingConfiguration, Account: call.Account}
	items, next, err := s.paginate(ctx, call, q, "", in.MaxResults, in.NextToken, nil)
	if err != nil {
		return nil, err
	}
	list := make([]*LoggingConfiguration, 0, len(items))
	for _, r := range items {
		c, err := loggingOut(r)
		if err != nil {
			return nil, err
		}
		list = append(list, c)
	}
	return listOut("loggingConfigurations", list, next), nil
}

// LoggingDestination returns where a logging configuration sends a room's
// messages (for whatever delivers chat logs); ErrNotFound-wrapping store
// errors when it does not exist.
func (s *Service) LoggingDestination(ctx context.Context, arn string) (*DestinationConfiguration, error) {
	r, err := s.store.Get(ctx, arn)
	if err != nil {
		return nil, err
	}
	if r.Kind != KindLoggingConfiguration {
		return nil, fmt.Errorf("%w: %s is not a logging configuration", store.ErrNotFound, arn)
	}
	c, err := loggingOut(r)
	if err != nil {
		return nil, err
	}
	return &c.DestinationConfiguration, nil
}
