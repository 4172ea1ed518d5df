package chat_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/openivs/openivs/internal/chat"
)

func TestLoggingConfigurations(t *testing.T) {
	testLoggingConfigurations(t, options{disableRateLimits: true})
}

func testLoggingConfigurations(t *testing.T, o options) {
	f := newFixture(t, o)
	ctx := context.Background()
	dests := []types.DestinationConfiguration{
		&types.DestinationConfigurationMemberS3{Value: types.S3DestinationConfiguration{BucketName: aws.String("chat-logs")}},
		&types.DestinationConfigurationMemberCloudWatchLogs{Value: types.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("/ivs/chat")}},
		&types.DestinationConfigurationMemberFirehose{Value: types.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("chat-stream")}},
	}
	var arns []string
	for i, d := range dests {
		out, err := f.client.CreateLoggingConfiguration(ctx, &sdk.CreateLoggingConfigurationInput{
			Name: aws.String("lc"), DestinationConfiguration: d, Tags: map[string]string{"n": "v"},
		})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if out.State != types.CreateLoggingConfigurationStateActive || len(*out.Id) != 12 || *out.Name != "lc" ||
			out.Tags["n"] != "v" || out.CreateTime == nil || out.UpdateTime == nil || idOf(*out.Arn) != *out.Id {
			t.Fatalf("create %d = %+v", i, out)
		}
		arns = append(arns, *out.Arn)
	}
	got, err := f.client.GetLoggingConfiguration(ctx, &sdk.GetLoggingConfigurationInput{Identifier: &arns[1]})
	if err != nil || got.State != types.LoggingConfigurationStateActive {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if cw, ok := got.DestinationConfiguration.(*types.DestinationConfigurationMemberCloudWatchLogs); !ok || *cw.Value.LogGroupName != "/ivs/chat" {
		t.Fatalf("destination %#v", got.DestinationConfiguration)
	}
	if d, err := f.svc.LoggingDestination(ctx, arns[2]); err != nil || d.Firehose == nil || d.Firehose.DeliveryStreamName != "chat-stream" {
		t.Fatalf("LoggingDestination = %+v, %v", d, err)
	}

	up, err := f.client.UpdateLoggingConfiguration(ctx, &sdk.UpdateLoggingConfigurationInput{
		Identifier: &arns[0], Name: aws.String("renamed"), DestinationConfiguration: dests[2],
	})
	if err != nil || *up.Name != "renamed" || up.State != types.UpdateLoggingConfigurationStateActive || up.Tags["n"] != "v" {
		t.Fatalf("Update = %+v, %v", up, err)
	}
	if _, ok := up.DestinationConfiguration.(*types.DestinationConfigurationMemberFirehose); !ok {
		t.Fatalf("updated destination %#v", up.DestinationConfiguration)
	}
	// Only the name: the destination stays.
	up, err = f.client.UpdateLoggingConfiguration(ctx, &sdk.UpdateLoggingConfigurationInput{Identifier: &arns[0], Name: aws.String("again")})
	if _, ok := up.DestinationConfiguration.(*types.DestinationConfigurationMemberFirehose); err != nil || !ok || *up.Name != "again" {
		t.Fatalf("Update name = %+v, %v", up, err)
	}

	// Pages of two.
	var listed []string
	var token *string
	for pages := 0; ; pages++ {
		out, err := f.client.ListLoggingConfigurations(ctx, &sdk.ListLoggingConfigurationsInput{MaxResults: aws.Int32(2), NextToken: token})
		if err != nil || pages > 3 {
			t.Fatalf("List: %v", err)
		}
		for _, c := range out.LoggingConfigurations {
			if c.State != types.LoggingConfigurationStateActive || c.DestinationConfiguration == nil || c.Tags["n"] != "v" {
				t.Fatalf("summary %+v", c)
			}
			listed = append(listed, *c.Arn)
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	if len(listed) != 3 || listed[0] != arns[0] || listed[2] != arns[2] {
		t.Fatalf("listed %v", listed)
	}
	if out, err := f.other.ListLoggingConfigurations(ctx, &sdk.ListLoggingConfigurationsInput{}); err != nil || len(out.LoggingConfigurations) != 0 {
		t.Fatalf("other account lists %+v, %v", out, err)
	}
	_, err = f.client.ListLoggingConfigurations(ctx, &sdk.ListLoggingConfigurationsInput{MaxResults: aws.Int32(51)})
	wantValidation(t, "maxResults 51", err, "maxResults")

	// A configuration a room uses cannot be deleted.
	room := f.createRoom(t, &sdk.CreateRoomInput{LoggingConfigurationIdentifiers: []string{arns[1]}})
	_, err = f.client.DeleteLoggingConfiguration(ctx, &sdk.DeleteLoggingConfigurationInput{Identifier: &arns[1]})
	var conflict *types.ConflictException
	if !errors.As(err, &conflict) || *conflict.ResourceId != *room.Id || conflict.ResourceType != types.ResourceTypeRoom {
		t.Fatalf("delete in use: %v", err)
	}
	if _, err := f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{Identifier: room.Arn, LoggingConfigurationIdentifiers: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.DeleteLoggingConfiguration(ctx, &sdk.DeleteLoggingConfigurationInput{Identifier: &arns[1]}); err != nil {
		t.Fatalf("delete after detach: %v", err)
	}
	id := idOf(arns[1])
	_, err = f.client.GetLoggingConfiguration(ctx, &sdk.GetLoggingConfigurationInput{Identifier: &arns[1]})
	wantNotFound(t, "Get after delete", err, id, "LOGGING_CONFIGURATION")
	_, err = f.client.DeleteLoggingConfiguration(ctx, &sdk.DeleteLoggingConfigurationInput{Identifier: &arns[1]})
	wantNotFound(t, "Delete twice", err, id, "LOGGING_CONFIGURATION")
	_, err = f.client.UpdateLoggingConfiguration(ctx, &sdk.UpdateLoggingConfigurationInput{Identifier: &arns[1], Name: aws.String("x")})
	wantNotFound(t, "Update after delete", err, id, "LOGGING_CONFIGURATION")
	_, err = f.other.GetLoggingConfiguration(ctx, &sdk.GetLoggingConfigurationInput{Identifier: &arns[0]})
	wantNotFound(t, "another account's", err, idOf(arns[0]), "LOGGING_CONFIGURATION")
}

func TestLoggingConfigurationValidation(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	ctx := context.Background()
	_, err := f.client.CreateLoggingConfiguration(ctx, &sdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfigurationMemberS3{Value: types.S3DestinationConfiguration{BucketName: aws.String("Bad_Bucket")}},
	})
	wantValidation(t, "bucket pattern", err, "destinationConfiguration.s3.bucketName")
	_, err = f.client.CreateLoggingConfiguration(ctx, &sdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfigurationMemberS3{Value: types.S3DestinationConfiguration{BucketName: aws.String("a..b")}},
	})
	var ve *types.ValidationException
	if !errors.As(err, &ve) || ve.Reason != types.ValidationExceptionReasonFieldValidationFailed ||
		len(ve.FieldList) != 1 || *ve.FieldList[0].Name != "destinationConfiguration.s3.bucketName" {
		t.Fatalf("bucket rules: %v", err)
	}
	_, err = f.client.CreateLoggingConfiguration(ctx, &sdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfigurationMemberCloudWatchLogs{Value: types.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("bad group!")}},
	})
	wantValidation(t, "log group pattern", err, "logGroupName")
	_, err = f.client.CreateLoggingConfiguration(ctx, &sdk.CreateLoggingConfigurationInput{
		Name:                     aws.String("bad name"),
		DestinationConfiguration: &types.DestinationConfigurationMemberFirehose{Value: types.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("s")}},
	})
	wantValidation(t, "name pattern", err, "'name'")
	_, err = f.client.GetLoggingConfiguration(ctx, &sdk.GetLoggingConfigurationInput{Identifier: aws.String("arn:aws:ivschat:us-west-2:123456789012:room/abcdABCD1234")})
	wantValidation(t, "room ARN as identifier", err, "identifier")
}

// TestLoggingDestinationUnion sends what the SDK cannot: no destination,
// and two destinations at once.
func TestLoggingDestinationUnion(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	for _, body := range []string{
		`{"destinationConfiguration":{}}`,
		`{"destinationConfiguration":{"s3":{"bucketName":"abc"},"firehose":{"deliveryStreamName":"s"}}}`,
	} {
		status, code := f.rawCall(t, "/CreateLoggingConfiguration", body)
		if status != 400 || code != "ValidationException" {
			t.Fatalf("%s: %d %s", body, status, code)
		}
	}
}

func TestLoggingQuota(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true, quotas: chat.Quotas{Rooms: 10, LoggingConfigurations: 2}})
	f.createLogging(t, "a")
	f.createLogging(t, "b")
	_, err := f.client.CreateLoggingConfiguration(context.Background(), &sdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfigurationMemberS3{Value: types.S3DestinationConfiguration{BucketName: aws.String("abc")}},
	})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) || qe.Limit != 2 || qe.ResourceType != "LOGGING_CONFIGURATION" {
		t.Fatalf("third logging configuration: %v", err)
	}
}

func TestDefaultLoggingQuota(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	for i := 0; i < 10; i++ {
		f.createLogging(t, "lc")
	}
	_, err := f.client.CreateLoggingConfiguration(context.Background(), &sdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfigurationMemberS3{Value: types.S3DestinationConfiguration{BucketName: aws.String("abc")}},
	})
	wantCode(t, "eleventh logging configuration", err, "ServiceQuotaExceededException")
}
