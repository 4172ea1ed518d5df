package chat_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/aws/smithy-go"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/chat"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/store"
	"github.com/openivs/openivs/internal/testutil/awstest"
)

const (
	testRegion   = "us-west-2"
	testAccount  = "123456789012"
	testKeyID    = "AKIATESTTESTTESTTEST"
	testSecret   = "testsecrettestsecrettestsecrettestsecret"
	otherAccount = "210987654321"
	otherKeyID   = "AKIAOTHEROTHEROTHER0"
)

type staticCreds struct{}

func (staticCreds) Lookup(id string) (string, string, bool) {
	switch id {
	case testKeyID:
		return testSecret, testAccount, true
	case otherKeyID:
		return testSecret, otherAccount, true
	}
	return "", "", false
}

// clock is the service's injectable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type options struct {
	quotas            chat.Quotas
	rateLimits        map[string]float64 // nil: chat.DefaultRateLimits
	disableRateLimits bool
	dsn               string // store DSN; "" is SQLite in a temporary directory
}

type fixture struct {
	store  store.Store
	svc    *chat.Service
	client *sdk.Client
	other  *sdk.Client // another account
	ivs    *ivssdkClient
	clock  *clock
	url    string
}

// newFixture serves the IVS Chat API (and the IVS API beside it, as the
// app does) over real HTTP and returns AWS SDK clients for it.
func newFixture(tb testing.TB, o options) *fixture {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, o.dsn, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 3, 16, 3, 44, 9, 0, time.UTC)}
	svc, err := chat.New(chat.Config{Store: st, Region: testRegion, AccountID: testAccount, Quotas: o.quotas,
		RateLimits: o.rateLimits, Now: clk.Now})
	if err != nil {
		tb.Fatal(err)
	}
	ivsSvc, err := ivs.New(ivs.Config{Store: st, Region: testRegion, AccountID: testAccount})
	if err != nil {
		tb.Fatal(err)
	}
	// Internal errors are expected (no Broadcaster): keep them out of the output.
	api := awsapi.NewServer(awsapi.Options{Region: testRegion, Credentials: staticCreds{}, DisableRateLimits: o.disableRateLimits,
		Logger: slog.New(slog.DiscardHandler)})
	if err := api.Mount(ivsSvc.API()); err != nil {
		tb.Fatal(err)
	}
	if err := api.Mount(svc.API()); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(api)
	tb.Cleanup(srv.Close)
	return &fixture{
		store: st, svc: svc, clock: clk, url: srv.URL,
		client: newClient(srv.URL, testKeyID), other: newClient(srv.URL, otherKeyID),
		ivs: newIVSClient(srv.URL),
	}
}

func newClient(url, keyID string) *sdk.Client {
	return sdk.New(sdk.Options{
		BaseEndpoint: aws.String(url),
		Region:       testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: keyID, SecretAccessKey: testSecret}, nil
		}),
		Retryer: awstest.Retryer(),
	})
}

// wantCode fails unless err is the API error code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

// wantValidation fails unless err is a ValidationException whose message
// mentions each of parts; every one IVS Chat sends here has the reason
// FIELD_VALIDATION_FAILED and names at least one field.
func wantValidation(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Fatalf("%s: got %v, want ValidationException", what, err)
	}
	if ve.Reason != types.ValidationExceptionReasonFieldValidationFailed || len(ve.FieldList) == 0 {
		t.Fatalf("%s: reason %q fieldList %+v", what, ve.Reason, ve.FieldList)
	}
	for _, p := range parts {
		if !strings.Contains(ve.ErrorMessage(), p) {
			t.Fatalf("%s: message %q does not mention %q", what, ve.ErrorMessage(), p)
		}
	}
}

// wantNotFound fails unless err is a ResourceNotFoundException naming id.
func wantNotFound(t *testing.T, what string, err error, id string, resourceType types.ResourceType) {
	t.Helper()
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("%s: got %v, want ResourceNotFoundException", what, err)
	}
	if aws.ToString(nf.ResourceId) != id || nf.ResourceType != resourceType {
		t.Fatalf("%s: resourceId %q resourceType %q; want %q %q", what, aws.ToString(nf.ResourceId), nf.ResourceType, id, resourceType)
	}
}

// rawCall POSTs a signed JSON body, for inputs the SDK would not send; it
// returns the status and the error code.
func (f *fixture) rawCall(t *testing.T, path, body string) (int, string) {
	t.Helper()
	status, code, _ := f.rawRequest(t, "ivschat", http.MethodPost, path, body)
	return status, code
}

// rawRequest sends a request signed for signingName and returns the
// status, the error code and the body as JSON (nil when it is none).
func (f *fixture) rawRequest(t *testing.T, signingName, method, path, body string) (int, string, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), signingName, testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), doc
}

func idOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

func (f *fixture) createRoom(t *testing.T, in *sdk.CreateRoomInput) *sdk.CreateRoomOutput {
	t.Helper()
	if in == nil {
		in = &sdk.CreateRoomInput{}
	}
	out, err := f.client.CreateRoom(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	return out
}

func (f *fixture) createLogging(t *testing.T, name string) string {
	t.Helper()
	out, err := f.client.CreateLoggingConfiguration(context.Background(), &sdk.CreateLoggingConfigurationInput{
		Name: aws.String(name),
		DestinationConfiguration: &types.DestinationConfigurationMemberS3{
			Value: types.S3DestinationConfiguration{BucketName: aws.String("chat-logs")}},
	})
	if err != nil {
		t.Fatalf("CreateLoggingConfiguration: %v", err)
	}
	return *out.Arn
}

func TestCreateRoomDefaults(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	out := f.createRoom(t, nil)
	if !strings.HasPrefix(*out.Arn, "arn:aws:ivschat:"+testRegion+":"+testAccount+":room/") || len(*out.Id) != 12 || idOf(*out.Arn) != *out.Id {
		t.Fatalf("arn %s id %s", *out.Arn, *out.Id)
	}
	if *out.MaximumMessageLength != 500 || *out.MaximumMessageRatePerSecond != 10 {
		t.Fatalf("defaults: length %d rate %d", *out.MaximumMessageLength, *out.MaximumMessageRatePerSecond)
	}
	if out.MessageReviewHandler != nil || len(out.LoggingConfigurationIdentifiers) != 0 || out.Tags == nil || len(out.Tags) != 0 {
		t.Fatalf("room %+v", out)
	}
	if out.CreateTime == nil || out.UpdateTime == nil || time.Since(*out.CreateTime) > time.Minute {
		t.Fatalf("times %v %v", out.CreateTime, out.UpdateTime)
	}
}

func TestRoomLifecycle(t *testing.T) { testRoomLifecycle(t, options{disableRateLimits: true}) }

func testRoomLifecycle(t *testing.T, o options) {
	f := newFixture(t, o)
	ctx := context.Background()
	lc := f.createLogging(t, "logs")
	lambda := "arn:aws:lambda:us-west-2:123456789012:function:review"
	out := f.createRoom(t, &sdk.CreateRoomInput{
		Name: aws.String("lobby"), MaximumMessageLength: aws.Int32(200), MaximumMessageRatePerSecond: aws.Int32(100),
		MessageReviewHandler:            &types.MessageReviewHandler{Uri: aws.String(lambda)},
		LoggingConfigurationIdentifiers: []string{lc, lc},
		Tags:                            map[string]string{"team": "chat"},
	})
	if *out.Name != "lobby" || *out.MaximumMessageLength != 200 || *out.MaximumMessageRatePerSecond != 100 ||
		*out.MessageReviewHandler.Uri != lambda || out.MessageReviewHandler.FallbackResult != types.FallbackResultAllow ||
		len(out.LoggingConfigurationIdentifiers) != 1 || out.LoggingConfigurationIdentifiers[0] != lc || out.Tags["team"] != "chat" {
		t.Fatalf("CreateRoom = %+v", out)
	}

	got, err := f.client.GetRoom(ctx, &sdk.GetRoomInput{Identifier: out.Arn})
	if err != nil || *got.Arn != *out.Arn || *got.Name != "lobby" || *got.MaximumMessageLength != 200 || got.Tags["team"] != "chat" {
		t.Fatalf("GetRoom = %+v, %v", got, err)
	}

	// Messaging sees the same settings.
	room, err := f.svc.Room(ctx, *out.Arn)
	if err != nil || room.MaximumMessageLength != 200 || room.MaximumMessageRatePerSecond != 100 ||
		room.ReviewHandler == nil || room.ReviewHandler.URI != lambda || room.ReviewHandler.FallbackResult != "ALLOW" ||
		len(room.LoggingConfigurationARNs) != 1 {
		t.Fatalf("Room = %+v, %v", room, err)
	}

	var changed []string
	f.svc.SetRoomListener(func(arn string) { changed = append(changed, arn) })
	up, err := f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{
		Identifier: out.Arn, Name: aws.String("lobby-2"), MaximumMessageLength: aws.Int32(1),
		MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(lambda), FallbackResult: types.FallbackResultDeny},
	})
	if err != nil || *up.Name != "lobby-2" || *up.MaximumMessageLength != 1 || *up.MaximumMessageRatePerSecond != 100 ||
		up.MessageReviewHandler.FallbackResult != types.FallbackResultDeny || len(up.LoggingConfigurationIdentifiers) != 1 || up.Tags["team"] != "chat" {
		t.Fatalf("UpdateRoom = %+v, %v", up, err)
	}
	// An empty uri removes the handler; an empty list detaches logging.
	up, err = f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{
		Identifier: out.Arn, MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String("")},
		LoggingConfigurationIdentifiers: []string{},
	})
	if err != nil || up.MessageReviewHandler != nil || len(up.LoggingConfigurationIdentifiers) != 0 || *up.Name != "lobby-2" {
		t.Fatalf("UpdateRoom (detach) = %+v, %v", up, err)
	}
	if room, err := f.svc.Room(ctx, *out.Arn); err != nil || room.ReviewHandler != nil || len(room.LoggingConfigurationARNs) != 0 {
		t.Fatalf("Room after detach = %+v, %v", room, err)
	}

	if _, err := f.client.DeleteRoom(ctx, &sdk.DeleteRoomInput{Identifier: out.Arn}); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	if len(changed) != 3 || changed[2] != *out.Arn {
		t.Fatalf("room listener saw %v", changed)
	}
	_, err = f.client.GetRoom(ctx, &sdk.GetRoomInput{Identifier: out.Arn})
	wantNotFound(t, "GetRoom after delete", err, *out.Id, types.ResourceTypeRoom)
	_, err = f.client.DeleteRoom(ctx, &sdk.DeleteRoomInput{Identifier: out.Arn})
	wantNotFound(t, "DeleteRoom twice", err, *out.Id, types.ResourceTypeRoom)
	_, err = f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{Identifier: out.Arn, Name: aws.String("x")})
	wantNotFound(t, "UpdateRoom after delete", err, *out.Id, types.ResourceTypeRoom)
	if _, err := f.svc.Room(ctx, *out.Arn); !errors.Is(err, chat.ErrRoomNotFound) {
		t.Fatalf("Room after delete: %v", err)
	}
	if _, err := f.svc.Room(ctx, "not an arn"); !errors.Is(err, chat.ErrRoomNotFound) {
		t.Fatalf("Room(bad arn): %v", err)
	}
}

func TestRoomValidation(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true})
	ctx := context.Background()
	room := f.createRoom(t, nil)
	cases := []struct {
		name  string
		in    *sdk.CreateRoomInput
		parts []string
	}{
		{"length 501", &sdk.CreateRoomInput{MaximumMessageLength: aws.Int32(501)}, []string{"maximumMessageLength", "less than or equal to 500"}},
		{"length 0", &sdk.CreateRoomInput{MaximumMessageLength: aws.Int32(0)}, []string{"maximumMessageLength", "greater than or equal to 1"}},
		{"rate 101", &sdk.CreateRoomInput{MaximumMessageRatePerSecond: aws.Int32(101)}, []string{"maximumMessageRatePerSecond", "less than or equal to 100"}},
		{"name", &sdk.CreateRoomInput{Name: aws.String("bad name!")}, []string{"'name'", "pattern"}},
		{"handler uri", &sdk.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String("https://example.com/review")}}, []string{"messageReviewHandler.uri"}},
		{"fallback", &sdk.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{FallbackResult: "MAYBE"}}, []string{"messageReviewHandler.fallbackResult", "ALLOW, DENY"}},
		{"logging ARN", &sdk.CreateRoomInput{LoggingConfigurationIdentifiers: []string{"arn:aws:ivs:us-west-2:123456789012:recording-configuration/abcdABCD1234"}}, []string{"loggingConfigurationIdentifiers.1"}},
		{"4 logging", &sdk.CreateRoomInput{LoggingConfigurationIdentifiers: []string{"a", "b", "c", "d"}}, []string{"less than or equal to 3"}},
		{"aws: tag", &sdk.CreateRoomInput{Tags: map[string]string{"aws:x": "y"}}, []string{"aws:"}},
	}
	for _, c := range cases {
		_, err := f.client.CreateRoom(ctx, c.in)
		wantValidation(t, c.name, err, c.parts...)
	}
	_, err := f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{Identifier: room.Arn, MaximumMessageLength: aws.Int32(501)})
	wantValidation(t, "UpdateRoom length 501", err, "maximumMessageLength")
	_, err = f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{Identifier: room.Arn, MaximumMessageRatePerSecond: aws.Int32(101)})
	wantValidation(t, "UpdateRoom rate 101", err, "maximumMessageRatePerSecond")
	// Identifiers are ARNs only (the model's RoomIdentifier pattern).
	_, err = f.client.GetRoom(ctx, &sdk.GetRoomInput{Identifier: room.Id})
	wantValidation(t, "GetRoom by id", err, "identifier")
	_, err = f.client.GetRoom(ctx, &sdk.GetRoomInput{Identifier: aws.String("arn:aws:ivs:us-west-2:123456789012:channel/abcdABCD1234")})
	wantValidation(t, "GetRoom with an IVS ARN", err, "identifier")

	// A logging configuration that does not exist, or is another account's.
	missing := "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/abcdABCD1234"
	_, err = f.client.CreateRoom(ctx, &sdk.CreateRoomInput{LoggingConfigurationIdentifiers: []string{missing}})
	wantNotFound(t, "CreateRoom with a missing logging configuration", err, "abcdABCD1234", "LOGGING_CONFIGURATION")
	_, err = f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{Identifier: room.Arn, LoggingConfigurationIdentifiers: []string{missing}})
	wantNotFound(t, "UpdateRoom with a missing logging configuration", err, "abcdABCD1234", "LOGGING_CONFIGURATION")
	theirs, err := f.other.CreateLoggingConfiguration(ctx, &sdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfigurationMemberFirehose{Value: types.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("s")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.client.CreateRoom(ctx, &sdk.CreateRoomInput{LoggingConfigurationIdentifiers: []string{*theirs.Arn}})
	wantNotFound(t, "CreateRoom with another account's logging configuration", err, *theirs.Id, "LOGGING_CONFIGURATION")

	// Rooms of another account, region or that never existed are not found.
	for _, arn := range []string{
		"arn:aws:ivschat:us-west-2:123456789012:room/abcdABCD1234",
		"arn:aws:ivschat:eu-west-1:123456789012:room/" + *room.Id,
	} {
		_, err = f.client.GetRoom(ctx, &sdk.GetRoomInput{Identifier: aws.String(arn)})
		wantNotFound(t, "GetRoom "+arn, err, idOf(arn), types.ResourceTypeRoom)
	}
	_, err = f.other.GetRoom(ctx, &sdk.GetRoomInput{Identifier: room.Arn})
	wantNotFound(t, "GetRoom of another account", err, *room.Id, types.ResourceTypeRoom)
	_, err = f.other.DeleteRoom(ctx, &sdk.DeleteRoomInput{Identifier: room.Arn})
	wantNotFound(t, "DeleteRoom of another account", err, *room.Id, types.ResourceTypeRoom)
}

func TestRoomQuota(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true, quotas: chat.Quotas{Rooms: 2, LoggingConfigurations: 1}})
	ctx := context.Background()
	f.createRoom(t, nil)
	f.createRoom(t, nil)
	_, err := f.client.CreateRoom(ctx, &sdk.CreateRoomInput{})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) || qe.Limit != 2 || qe.ResourceType != types.ResourceTypeRoom {
		t.Fatalf("third room: %v", err)
	}
	// The quota is per account.
	if _, err := f.other.CreateRoom(ctx, &sdk.CreateRoomInput{}); err != nil {
		t.Fatalf("other account: %v", err)
	}
}

func TestListRooms(t *testing.T) { testListRooms(t, options{disableRateLimits: true}) }

func testListRooms(t *testing.T, o options) {
	f := newFixture(t, o)
	ctx := context.Background()
	lc := f.createLogging(t, "logs")
	lambda := "arn:aws:lambda:us-west-2:123456789012:function:review"
	var arns []string
	for i := 0; i < 7; i++ {
		in := &sdk.CreateRoomInput{Name: aws.String("plain")}
		if i%2 == 0 {
			in = &sdk.CreateRoomInput{Name: aws.String("reviewed"), MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(lambda)}}
		}
		if i%3 == 0 {
			in.LoggingConfigurationIdentifiers = []string{lc}
		}
		arns = append(arns, *f.createRoom(t, in).Arn)
	}
	if _, err := f.other.CreateRoom(ctx, &sdk.CreateRoomInput{Name: aws.String("plain")}); err != nil {
		t.Fatal(err)
	}

	// list pages through a listing and returns the ARNs in order.
	list := func(in sdk.ListRoomsInput) []string {
		t.Helper()
		var got []string
		for pages := 0; ; pages++ {
			out, err := f.client.ListRooms(ctx, &in)
			if err != nil || pages > 10 {
				t.Fatalf("ListRooms %+v: %v", in, err)
			}
			for _, r := range out.Rooms {
				got = append(got, *r.Arn)
			}
			if out.NextToken == nil {
				return got
			}
			in.NextToken = out.NextToken
		}
	}
	want := func(name string, got []string, idx ...int) {
		t.Helper()
		var w []string
		for _, i := range idx {
			w = append(w, arns[i])
		}
		if strings.Join(got, " ") != strings.Join(w, " ") {
			t.Fatalf("%s: got %v, want %v", name, got, w)
		}
	}
	want("all", list(sdk.ListRoomsInput{}), 0, 1, 2, 3, 4, 5, 6)
	want("all, pages of 2", list(sdk.ListRoomsInput{MaxResults: aws.Int32(2)}), 0, 1, 2, 3, 4, 5, 6)
	want("name", list(sdk.ListRoomsInput{Name: aws.String("plain"), MaxResults: aws.Int32(1)}), 1, 3, 5)
	want("handler", list(sdk.ListRoomsInput{MessageReviewHandlerUri: aws.String(lambda), MaxResults: aws.Int32(3)}), 0, 2, 4, 6)
	want("logging", list(sdk.ListRoomsInput{LoggingConfigurationIdentifier: aws.String(lc), MaxResults: aws.Int32(1)}), 0, 3, 6)
	want("name and logging", list(sdk.ListRoomsInput{Name: aws.String("plain"), LoggingConfigurationIdentifier: aws.String(lc)}), 3)
	want("no match", list(sdk.ListRoomsInput{Name: aws.String("none")}))

	page, err := f.client.ListRooms(ctx, &sdk.ListRoomsInput{MaxResults: aws.Int32(1)})
	if err != nil || len(page.Rooms) != 1 || page.NextToken == nil {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	r := page.Rooms[0]
	if r.Id == nil || *r.Name != "reviewed" || r.MessageReviewHandler == nil || len(r.LoggingConfigurationIdentifiers) != 1 || r.CreateTime == nil || r.Tags == nil {
		t.Fatalf("summary %+v", r)
	}
	// A token belongs to its listing.
	_, err = f.client.ListRooms(ctx, &sdk.ListRoomsInput{Name: aws.String("plain"), NextToken: page.NextToken})
	wantValidation(t, "token of another listing", err, "nextToken")
	_, err = f.other.ListRooms(ctx, &sdk.ListRoomsInput{NextToken: page.NextToken})
	wantValidation(t, "token of another account", err, "nextToken")
	_, err = f.client.ListRooms(ctx, &sdk.ListRoomsInput{MaxResults: aws.Int32(51)})
	wantValidation(t, "maxResults 51", err, "maxResults")
	_, err = f.client.ListRooms(ctx, &sdk.ListRoomsInput{LoggingConfigurationIdentifier: aws.String("arn:aws:ivschat:us-west-2:123456789012:logging-configuration/abcdABCD1234")})
	wantNotFound(t, "missing logging filter", err, "abcdABCD1234", "LOGGING_CONFIGURATION")
}

// TestThrottling: IVS Chat's room operations allow 5 requests per second.
func TestThrottling(t *testing.T) {
	f := newFixture(t, options{})
	ctx := context.Background()
	var throttled error
	for i := 0; i < 20 && throttled == nil; i++ {
		_, throttled = f.client.ListRooms(ctx, &sdk.ListRoomsInput{})
	}
	wantCode(t, "ListRooms at 20 rps", throttled, "ThrottlingException")
	// Another operation has its own bucket.
	if _, err := f.client.ListLoggingConfigurations(ctx, &sdk.ListLoggingConfigurationsInput{}); err != nil {
		t.Fatal(err)
	}
}

// TestThrottlingShape: the moderation calls, whose model declares
// ThrottlingException, get it with the rate as limit and their room.
func TestThrottlingShape(t *testing.T) {
	limits := chat.DefaultRateLimits()
	limits["SendEvent"], limits["DisconnectUser"] = 2, 2.6
	f := newFixture(t, options{rateLimits: limits})
	f.svc.SetBroadcaster(&fakeBroadcaster{})
	ctx := context.Background()
	room := f.createRoom(t, nil)
	for _, c := range []struct {
		call  func() error
		limit int32
	}{
		{func() error {
			_, err := f.client.SendEvent(ctx, &sdk.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("e")})
			return err
		}, 2},
		{func() error {
			_, err := f.client.DisconnectUser(ctx, &sdk.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("u")})
			return err
		}, 3},
	} {
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			err = c.call()
		}
		var te *types.ThrottlingException
		if !errors.As(err, &te) || te.Limit != c.limit || te.ResourceType != types.ResourceTypeRoom || aws.ToString(te.ResourceId) != *room.Id {
			t.Fatalf("got %v (%+v), want ThrottlingException with limit %d on room %s", err, te, c.limit, *room.Id)
		}
	}
}

// TestErrorShapes: IVS Chat's exceptions carry the members of its model,
// read here by the SDK into its typed errors.
func TestErrorShapes(t *testing.T) {
	f := newFixture(t, options{disableRateLimits: true, quotas: chat.Quotas{Rooms: 1, LoggingConfigurations: 1}})
	ctx := context.Background()
	fieldList := func(what string, err error) []types.ValidationExceptionField {
		t.Helper()
		var ve *types.ValidationException
		if !errors.As(err, &ve) || ve.Reason != types.ValidationExceptionReasonFieldValidationFailed {
			t.Fatalf("%s: got %v, want ValidationException with reason FIELD_VALIDATION_FAILED", what, err)
		}
		return ve.FieldList
	}
	wantFields := func(what string, err error, names ...string) {
		t.Helper()
		list := fieldList(what, err)
		var got []string
		for _, fe := range list {
			if aws.ToString(fe.Message) == "" {
				t.Errorf("%s: field %s without a message", what, aws.ToString(fe.Name))
			}
			got = append(got, aws.ToString(fe.Name))
		}
		if strings.Join(got, ",") != strings.Join(names, ",") {
			t.Fatalf("%s: fieldList names %v, want %v", what, got, names)
		}
	}

	// Model rules: one entry per broken constraint.
	_, err := f.client.CreateRoom(ctx, &sdk.CreateRoomInput{MaximumMessageLength: aws.Int32(501), Name: aws.String("bad name!")})
	wantFields("model rules", err, "maximumMessageLength", "name")
	if fe := fieldList("model rules", err)[0]; aws.ToString(fe.Message) != "Member must have value less than or equal to 500" {
		t.Fatalf("fieldList message %q", aws.ToString(fe.Message))
	}
	// The service's own rules.
	_, err = f.client.CreateRoom(ctx, &sdk.CreateRoomInput{Tags: map[string]string{"aws:k": "v"}})
	wantFields("aws: tag", err, "tags")
	room := f.createRoom(t, nil)
	_, err = f.client.CreateChatToken(ctx, &sdk.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"),
		Attributes: map[string]string{"a": strings.Repeat("x", 1100)}})
	wantFields("attributes too long", err, "attributes")
	_, err = f.client.ListRooms(ctx, &sdk.ListRoomsInput{NextToken: aws.String("AQAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAA")})
	wantFields("forged nextToken", err, "nextToken")

	// Quotas name the resource type and the limit.
	_, err = f.client.CreateRoom(ctx, &sdk.CreateRoomInput{})
	var qe *types.ServiceQuotaExceededException
	if !errors.As(err, &qe) || qe.Limit != 1 || qe.ResourceType != types.ResourceTypeRoom || aws.ToString(qe.ResourceId) != testAccount {
		t.Fatalf("room quota: %v (%+v)", err, qe)
	}
	lc := f.createLogging(t, "lc")
	_, err = f.client.CreateLoggingConfiguration(ctx, &sdk.CreateLoggingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfigurationMemberS3{Value: types.S3DestinationConfiguration{BucketName: aws.String("bucket")}}})
	if !errors.As(err, &qe) || qe.Limit != 1 || qe.ResourceType != "LOGGING_CONFIGURATION" {
		t.Fatalf("logging configuration quota: %v (%+v)", err, qe)
	}

	// A conflict names the resource in the way: the room that uses the
	// logging configuration.
	if _, err := f.client.UpdateRoom(ctx, &sdk.UpdateRoomInput{Identifier: room.Arn, LoggingConfigurationIdentifiers: []string{lc}}); err != nil {
		t.Fatal(err)
	}
	_, err = f.client.DeleteLoggingConfiguration(ctx, &sdk.DeleteLoggingConfigurationInput{Identifier: aws.String(lc)})
	var ce *types.ConflictException
	if !errors.As(err, &ce) || aws.ToString(ce.ResourceId) != *room.Id || ce.ResourceType != types.ResourceTypeRoom {
		t.Fatalf("DeleteLoggingConfiguration in use: %v (%+v)", err, ce)
	}
	_, err = f.client.GetLoggingConfiguration(ctx, &sdk.GetLoggingConfigurationInput{Identifier: aws.String(lc + "x")})
	wantNotFound(t, "GetLoggingConfiguration", err, idOf(lc)+"x", "LOGGING_CONFIGURATION")
}

func TestRateLimitsAndQuotaNames(t *testing.T) {
	limits := chat.DefaultRateLimits()
	model, err := awsapi.LoadModel("ivschat")
	if err != nil {
		t.Fatal(err)
	}
	for op := range model.Operations {
		if limits[op] <= 0 {
			t.Errorf("no rate limit for %s", op)
		}
	}
	if limits["CreateChatToken"] != 200 || limits["SendEvent"] != 100 || limits["CreateRoom"] != 5 || limits["GetLoggingConfiguration"] != 3 {
		t.Fatalf("limits %v", limits)
	}
	q := chat.DefaultQuotas()
	for _, name := range chat.QuotaNames() {
		if err := q.Set(name, 7); err != nil {
			t.Fatal(err)
		}
	}
	if q != (chat.Quotas{Rooms: 7, LoggingConfigurations: 7, ConcurrentConnections: 7}) {
		t.Fatalf("QuotaNames and Set disagree: %+v", q)
	}
	if q.Set("channels", 1) == nil || q.Set("chat-rooms", -1) == nil {
		t.Fatal("Set accepted a bad quota")
	}
	// The model marks the secrets the audit log must redact.
	for _, shape := range []string{"ChatToken", "UserID", "ChatTokenAttributes"} {
		if !model.Shapes[shape].Sensitive {
			t.Errorf("%s is not sensitive in the model", shape)
		}
	}
}
