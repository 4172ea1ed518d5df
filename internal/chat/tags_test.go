package chat_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ivssdk "github.com/aws/aws-sdk-go-v2/service/ivs"
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
	// ...and IVS Chat does not claim an IVS ARN. (awsapi answers
	// MethodNotAllowedException here: its router checks the method of the
	// POST /tags route before asking OwnsARN.)
	if _, err = f.client.ListTagsForResource(ctx, &sdk.ListTagsForResourceInput{ResourceArn: ch.Channel.Arn}); err == nil {
		t.Fatal("the IVS Chat API listed an IVS channel's tags")
	}

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
