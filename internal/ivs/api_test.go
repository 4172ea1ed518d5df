package ivs_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/playback"
	"github.com/openivs/openivs/internal/store"
	"github.com/openivs/openivs/internal/testutil/awstest"
)

const (
	testRegion  = "us-west-2"
	testAccount = "123456789012"
	testKeyID   = "AKIATESTTESTTESTTEST"
	testSecret  = "testsecrettestsecrettestsecrettestsecret"
)

type staticCreds struct{}

func (staticCreds) Lookup(id string) (string, string, bool) {
	if id == testKeyID {
		return testSecret, testAccount, true
	}
	return "", "", false
}

type fixture struct {
	store   store.Store
	client  *sdk.Client
	url     string
	viewers *playback.Viewers
}

// newFixture serves the IVS API over real HTTP on an SQLite store and
// returns an AWS SDK client for it.
func newFixture(tb testing.TB, disableRateLimits bool) *fixture {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	api := awsapi.NewServer(awsapi.Options{Region: testRegion, Credentials: staticCreds{}, DisableRateLimits: disableRateLimits})
	svc, err := ivs.New(ivs.Config{Store: st, Region: testRegion, AccountID: testAccount,
		IngestEndpoint: "localhost:1936", SRTEndpoint: "localhost:9000", PlaybackBaseURL: "http://localhost:8080"})
	if err != nil {
		tb.Fatal(err)
	}
	viewers := playback.NewViewers()
	svc.SetViewerCounter(viewers)
	if err := api.Mount(svc.API()); err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(api)
	tb.Cleanup(srv.Close)
	client := sdk.New(sdk.Options{
		BaseEndpoint: aws.String(srv.URL),
		Region:       testRegion,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, nil
		}),
		Retryer: awstest.Retryer(),
	})
	return &fixture{store: st, client: client, url: srv.URL, viewers: viewers}
}

// goLive writes the records the live-stream manager keeps for a live
// channel, so the read side of the stream operations can be exercised.
func (f *fixture) goLive(t *testing.T, channelARN, streamID, health string, seqStart time.Time) {
	t.Helper()
	doc, _ := json.Marshal(ivs.Stream{StreamID: streamID, StartTime: seqStart, State: "LIVE", Health: health})
	a, _ := ivs.ParseChannelARN(channelARN)
	err := f.store.Insert(context.Background(), &store.Resource{
		ARN: "arn:aws:ivs:" + testRegion + ":" + testAccount + ":stream/" + a.ID, Kind: ivs.KindStream,
		Account: testAccount, Parent: channelARN, Doc: doc,
	}, store.Quota{})
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := json.Marshal(ivs.StreamSession{StreamID: streamID, StartTime: &seqStart})
	err = f.store.Insert(context.Background(), &store.Resource{
		ARN: "arn:aws:ivs:" + testRegion + ":" + testAccount + ":stream-session/" + streamID, Kind: ivs.KindStreamSession,
		Account: testAccount, Parent: channelARN, Doc: sess,
	}, store.Quota{})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLiveStreamReads(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	var arns []string
	for i := 0; i < 3; i++ {
		out, err := f.client.CreateChannel(ctx, &sdk.CreateChannelInput{})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, *out.Channel.Arn)
	}
	start := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f.goLive(t, arns[0], "st-1AAAAAAAAAAAAAAAAAAAAAA", "HEALTHY", start)
	f.goLive(t, arns[1], "st-1BBBBBBBBBBBBBBBBBBBBBB", "STARVING", start)
	// Three viewer sessions are watching the first channel.
	for _, session := range []string{"viewer-a", "viewer-b", "viewer-c"} {
		f.viewers.Touch(arns[0], session, "")
	}

	got, err := f.client.GetStream(ctx, &sdk.GetStreamInput{ChannelArn: &arns[0]})
	if err != nil {
		t.Fatal(err)
	}
	if *got.Stream.StreamId != "st-1AAAAAAAAAAAAAAAAAAAAAA" || got.Stream.State != types.StreamStateStreamLive ||
		got.Stream.Health != types.StreamHealthStreamHealthy || !got.Stream.StartTime.Equal(start) || got.Stream.ViewerCount != 3 ||
		*got.Stream.ChannelArn != arns[0] || *got.Stream.PlaybackUrl == "" {
		t.Fatalf("GetStream = %+v", got.Stream)
	}
	var nb *types.ChannelNotBroadcasting
	if _, err := f.client.GetStream(ctx, &sdk.GetStreamInput{ChannelArn: &arns[2]}); !errors.As(err, &nb) {
		t.Fatalf("offline GetStream: %v", err)
	}

	all, err := f.client.ListStreams(ctx, &sdk.ListStreamsInput{})
	if err != nil || len(all.Streams) != 2 {
		t.Fatalf("ListStreams = %+v, %v", all, err)
	}
	starving, err := f.client.ListStreams(ctx, &sdk.ListStreamsInput{FilterBy: &types.StreamFilters{Health: types.StreamHealthStarving}})
	if err != nil || len(starving.Streams) != 1 || *starving.Streams[0].ChannelArn != arns[1] {
		t.Fatalf("ListStreams(STARVING) = %+v, %v", starving, err)
	}
	page, err := f.client.ListStreams(ctx, &sdk.ListStreamsInput{MaxResults: aws.Int32(1)})
	if err != nil || len(page.Streams) != 1 || page.NextToken == nil {
		t.Fatalf("ListStreams page 1 = %+v, %v", page, err)
	}
	page2, err := f.client.ListStreams(ctx, &sdk.ListStreamsInput{MaxResults: aws.Int32(1), NextToken: page.NextToken})
	if err != nil || len(page2.Streams) != 1 || page2.NextToken != nil || *page2.Streams[0].ChannelArn == *page.Streams[0].ChannelArn {
		t.Fatalf("ListStreams page 2 = %+v, %v", page2, err)
	}

	// A live channel can be neither updated nor deleted.
	var conflict *types.ConflictException
	if _, err := f.client.DeleteChannel(ctx, &sdk.DeleteChannelInput{Arn: &arns[0]}); !errors.As(err, &conflict) {
		t.Fatalf("DeleteChannel(live) = %v", err)
	}
	if _, err := f.client.UpdateChannel(ctx, &sdk.UpdateChannelInput{Arn: &arns[0], Name: aws.String("x")}); !errors.As(err, &conflict) {
		t.Fatalf("UpdateChannel(live) = %v", err)
	}

	sess, err := f.client.GetStreamSession(ctx, &sdk.GetStreamSessionInput{ChannelArn: &arns[0]})
	if err != nil || *sess.StreamSession.StreamId != "st-1AAAAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("GetStreamSession = %+v, %v", sess, err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := f.client.GetStreamSession(ctx, &sdk.GetStreamSessionInput{ChannelArn: &arns[0], StreamId: aws.String("st-1BBBBBBBBBBBBBBBBBBBBBB")}); !errors.As(err, &nf) {
		t.Fatalf("GetStreamSession(other channel's stream) = %v", err)
	}
	sessions, err := f.client.ListStreamSessions(ctx, &sdk.ListStreamSessionsInput{ChannelArn: &arns[1]})
	if err != nil || len(sessions.StreamSessions) != 1 {
		t.Fatalf("ListStreamSessions = %+v, %v", sessions, err)
	}
	// Sessions list newest first, page by page.
	for i, id := range []string{"st-1CCCCCCCCCCCCCCCCCCCCC1", "st-1CCCCCCCCCCCCCCCCCCCCC2", "st-1CCCCCCCCCCCCCCCCCCCCC3"} {
		at := start.Add(time.Duration(i) * time.Hour)
		doc, _ := json.Marshal(ivs.StreamSession{StreamID: id, StartTime: &at})
		if err := f.store.Insert(ctx, &store.Resource{ARN: "arn:aws:ivs:us-west-2:" + testAccount + ":stream-session/" + id,
			Kind: ivs.KindStreamSession, Account: testAccount, Parent: arns[2], Doc: doc}, store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	var token *string
	for pages := 0; ; pages++ {
		out, err := f.client.ListStreamSessions(ctx, &sdk.ListStreamSessionsInput{ChannelArn: &arns[2], MaxResults: aws.Int32(2), NextToken: token})
		if err != nil || pages > 2 {
			t.Fatalf("ListStreamSessions page %d: %v", pages, err)
		}
		for _, ss := range out.StreamSessions {
			order = append(order, *ss.StreamId)
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	if want := "st-1CCCCCCCCCCCCCCCCCCCCC3 st-1CCCCCCCCCCCCCCCCCCCCC2 st-1CCCCCCCCCCCCCCCCCCCCC1"; strings.Join(order, " ") != want {
		t.Fatalf("sessions %v, want %s", order, want)
	}
	latest, err := f.client.GetStreamSession(ctx, &sdk.GetStreamSessionInput{ChannelArn: &arns[2]})
	if err != nil || *latest.StreamSession.StreamId != "st-1CCCCCCCCCCCCCCCCCCCCC3" {
		t.Fatalf("latest session = %+v, %v", latest, err)
	}

	// Without a live-stream side wired, a live channel's stream cannot be reached.
	var unavailable *types.StreamUnavailable
	if _, err := f.client.StopStream(ctx, &sdk.StopStreamInput{ChannelArn: &arns[0]}); !errors.As(err, &unavailable) {
		t.Fatalf("StopStream = %v", err)
	}
}

// BenchmarkGetChannel measures GetChannel through the whole path: the AWS
// SDK client signs, net/http carries it over loopback, the server verifies
// SigV4, validates, reads SQLite and answers. Client and server share the
// machine's cores.
func BenchmarkGetChannel(b *testing.B) {
	f := newFixture(b, true)
	ctx := context.Background()
	out, err := f.client.CreateChannel(ctx, &sdk.CreateChannelInput{Name: aws.String("bench")})
	if err != nil {
		b.Fatal(err)
	}
	arn := out.Channel.Arn
	b.ReportAllocs()
	// Several requests in flight per core, as many API clients would have.
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.client.GetChannel(ctx, &sdk.GetChannelInput{Arn: arn}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func TestPruneStreamSessions(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	svc, err := ivs.New(ivs.Config{Store: f.store, Region: testRegion, AccountID: testAccount})
	if err != nil {
		t.Fatal(err)
	}
	arn, _, err := svc.CreateChannel(ctx, testAccount, "prune", "STANDARD", false)
	if err != nil {
		t.Fatal(err)
	}
	ended := time.Now().Add(-time.Hour)
	for _, id := range []string{"st-1PRUNEAAAAAAAAAAAAAAAAA", "st-1PRUNEBBBBBBBBBBBBBBBBB"} {
		doc, _ := json.Marshal(ivs.StreamSession{StreamID: id, StartTime: &ended, EndTime: &ended})
		if err := f.store.Insert(ctx, &store.Resource{ARN: "arn:aws:ivs:us-west-2:" + testAccount + ":stream-session/" + id,
			Kind: ivs.KindStreamSession, Account: testAccount, Parent: arn, Doc: doc}, store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is older than a cut-off in the past.
	if n, err := svc.PruneStreamSessions(ctx, time.Now().Add(-ivs.SessionRetention)); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v; want 0", n, err)
	}
	// With the cut-off in the future, both ended sessions go.
	if n, err := svc.PruneStreamSessions(ctx, time.Now().Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2", n, err)
	}
	out, err := f.client.ListStreamSessions(ctx, &sdk.ListStreamSessionsInput{ChannelArn: &arn})
	if err != nil || len(out.StreamSessions) != 0 {
		t.Fatalf("sessions left: %+v, %v", out, err)
	}
}
