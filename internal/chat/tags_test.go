package chat_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ivssdk "github.com/aws/aws-sdk-go-v2/service/ivs"
	ivstypes "github.com/aws/aws-sdk-go-v2/service/ivs/types"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/openivs/openivs/internal/testutil/awstest"
)

type ivssdkClient = ivssdk.Client

func newIVSClient(url string) *ivssdk.Client {
	return ivssdk.New(ivssdk.Options{
		BaseEndpoint: aws.String(url),
		Region:       testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, nil
		}),
		Retryer: awstest.Retryer(),
	})
}

func TestTags(t *testing.T) { testTags(t, options{disableRateLimits: true}) }

func testTags(t *testing.T, o options) {
	f := newFixture(t, o)
	ctx := context.Background()
	room := f.createRoom(t, &sdk.CreateRoomInput{Tags: map[string]string{"a": "1"}})
	lc := f.createLogging(t, "lc")
	for _, arn := range []string{*room.Arn, lc} {
		if _, err := f.client.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"b": "2", "c": "3"}}); err != nil {
			t.Fatalf("TagResource %s: %v", arn, err)
		}
		if _, err := f.client.UntagResource(ctx, &sdk.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"c", "absent"}}); err != nil {
			t.Fatalf("UntagResource %s: %v", arn, err)
		}
		out, err := f.client.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil || out.Tags["b"] != "2" || out.Tags["c"] != "" || (arn == *room.Arn) != (out.Tags["a"] == "1") {
			t.Fatalf("ListTagsForResource %s = %v, %v", arn, out, err)
		}
	}
	got, err := f.client.GetRoom(ctx, &sdk.GetRoomInput{Identifier: room.Arn})
	if err != nil || len(got.Tags) != 2 {
		t.Fatalf("room tags %v, %v", got.Tags, err)
	}

	// The IVS API beside it keeps its own tag routes.
	ch, err := f.ivs.CreateChannel(ctx, &ivssdk.CreateChannelInput{Tags: map[string]string{"ivs": "yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := f.ivs.ListTagsForResource(ctx, &ivssdk.ListTagsForResourceInput{ResourceArn: ch.Channel.Arn}); err != nil || out.Tags["ivs"] != "yes" {
		t.Fatalf("IVS ListTagsForResource = %v, %v", out, err)
	}
	if _, err := f.ivs.ListTagsForResource(ctx, &ivssdk.ListTagsForResourceInput{ResourceArn: room.Arn}); err == nil {
		t.Fatal("the IVS API listed a chat room's tags")
	}
	// ...and IVS Chat rejects an IVS ARN as IVS Chat does: its
	// ResourceArn pattern fails.
	_, err = f.client.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: ch.Channel.Arn})
	wantValidation(t, "IVS Chat ListTagsForResource(channel)", err, "resourceArn")
	_, err = f.client.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: ch.Channel.Arn, Tags: map[string]string{"a": "b"}})
	wantValidation(t, "IVS Chat TagResource(channel)", err, "resourceArn")

	tooMany := map[string]string{}
	for i := 0; i < 49; i++ {
		tooMany[string(rune('A'+i%26))+string(rune('a'+i/26))] = "x"
	}
	_, err = f.client.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: room.Arn, Tags: tooMany})
	wantValidation(t, "51 tags", err, "tags")
	_, err = f.client.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: room.Arn, Tags: map[string]string{"aws:k": "v"}})
	wantValidation(t, "aws: prefix", err, "aws:")

	missing := "arn:aws:ivschat:us-west-2:123456789012:room/abcdABCD1234"
	_, err = f.client.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String(missing)})
	wantNotFound(t, "missing room", err, "abcdABCD1234", types.ResourceTypeRoom)
	_, err = f.client.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: aws.String(missing), Tags: map[string]string{"a": "b"}})
	wantNotFound(t, "tag a missing room", err, "abcdABCD1234", types.ResourceTypeRoom)
	_, err = f.client.UntagResource(ctx, &sdk.UntagResourceInput{ResourceArn: aws.String(missing), TagKeys: []string{"a"}})
	wantNotFound(t, "untag a missing room", err, "abcdABCD1234", types.ResourceTypeRoom)
	_, err = f.client.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ivschat:us-west-2:123456789012:chat-token/abcd")})
	wantCode(t, "a chat token ARN", err, "ResourceNotFoundException")
	_, err = f.other.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: room.Arn})
	wantNotFound(t, "another account's room", err, *room.Id, types.ResourceTypeRoom)
	_, err = f.other.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: aws.String(lc), Tags: map[string]string{"a": "b"}})
	wantNotFound(t, "another account's logging configuration", err, idOf(lc), "LOGGING_CONFIGURATION")
}

// TestTagRoutesAcrossServices: IVS and IVS Chat, mounted on one awsapi
// server as the app mounts them, share the /tags/{resourceArn} paths. An
// ARN of the other service gets, whatever the method, the exception AWS
// answers (the model's ResourceArn pattern fails: ValidationException),
// never MethodNotAllowed; an IVS ARN of a kind that no mounted API owns
// (a Real-Time stage) is not found.
func TestTagRoutesAcrossServices(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	ctx := context.Background()
	ch, err := f.ivs.CreateChannel(ctx, &ivssdk.CreateChannelInput{})
	if err != nil {
		t.Fatal(err)
	}
	channelARN, roomARN := ch.Channel.Arn, f.createRoom(t, nil).Arn

	// IVS Chat, given an IVS ARN: GET, POST and DELETE.
	_, err = f.client.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: channelARN})
	wantValidation(t, "IVS Chat ListTagsForResource(channel)", err, "resourceArn")
	_, err = f.client.TagResource(ctx, &sdk.TagResourceInput{ResourceArn: channelARN, Tags: map[string]string{"a": "b"}})
	wantValidation(t, "IVS Chat TagResource(channel)", err, "resourceArn")
	_, err = f.client.UntagResource(ctx, &sdk.UntagResourceInput{ResourceArn: channelARN, TagKeys: []string{"a"}})
	wantValidation(t, "IVS Chat UntagResource(channel)", err, "resourceArn")
	var ve *types.ValidationException
	_ = errors.As(err, &ve) // wantValidation made sure it is one
	if len(ve.FieldList) != 1 || aws.ToString(ve.FieldList[0].Name) != "resourceArn" {
		t.Fatalf("fieldList %+v", ve.FieldList)
	}

	// IVS, given an IVS Chat ARN, then a stage ARN.
	stageARN := aws.String("arn:aws:ivs:us-west-2:123456789012:stage/abcdABCD1234")
	ivsCalls := func(arn *string) []error {
		_, e1 := f.ivs.ListTagsForResource(ctx, &ivssdk.ListTagsForResourceInput{ResourceArn: arn})
		_, e2 := f.ivs.TagResource(ctx, &ivssdk.TagResourceInput{ResourceArn: arn, Tags: map[string]string{"a": "b"}})
		_, e3 := f.ivs.UntagResource(ctx, &ivssdk.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"a"}})
		return []error{e1, e2, e3}
	}
	for i, err := range ivsCalls(roomARN) {
		var ve *ivstypes.ValidationException
		if !errors.As(err, &ve) || aws.ToString(ve.ExceptionMessage) == "" {
			t.Fatalf("IVS tag call %d with a room ARN: got %v, want ValidationException with its exceptionMessage", i, err)
		}
	}
	for i, err := range ivsCalls(stageARN) {
		var nf *ivstypes.ResourceNotFoundException
		if !errors.As(err, &nf) || aws.ToString(nf.ExceptionMessage) == "" {
			t.Fatalf("IVS tag call %d with a stage ARN: got %v, want ResourceNotFoundException with its exceptionMessage", i, err)
		}
	}

	// On the wire: IVS's ValidationException has no reason or fieldList
	// member, IVS Chat's has both.
	status, code, body := f.rawRequest(t, "ivs", http.MethodGet, "/tags/"+url.PathEscape(*roomARN), "")
	if status != 400 || code != "ValidationException" || body["exceptionMessage"] == nil || body["reason"] != nil || body["fieldList"] != nil {
		t.Fatalf("IVS: %d %s %v", status, code, body)
	}
	status, code, body = f.rawRequest(t, "ivschat", http.MethodDelete, "/tags/"+url.PathEscape(*channelARN), "")
	if status != 400 || code != "ValidationException" || body["reason"] != "FIELD_VALIDATION_FAILED" || body["fieldList"] == nil || body["exceptionMessage"] != nil {
		t.Fatalf("IVS Chat: %d %s %v", status, code, body)
	}
	// A method that no tag route has is still MethodNotAllowed.
	if status, code, _ := f.rawRequest(t, "ivschat", http.MethodPut, "/tags/"+url.PathEscape(*roomARN), "{}"); status != 405 || code != "MethodNotAllowedException" {
		t.Fatalf("PUT /tags/room: %d %s", status, code)
	}
}
