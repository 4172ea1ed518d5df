package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"
)

// HTTP statuses of IVS's exceptions.
const (
	stValidation     = 400
	stAccessDenied   = 403
	stNotFound       = 404
	stConflict       = 409
	stQuota          = 402
	stThrottling     = 429
	stNotBroadcating = 404
)

var (
	channelARNRe   = regexp.MustCompile(`^arn:aws:ivs:us-west-2:123456789012:channel/([A-Za-z0-9]{12})$`)
	streamKeyARNRe = regexp.MustCompile(`^arn:aws:ivs:us-west-2:123456789012:stream-key/[A-Za-z0-9]{12}$`)
	keyPairARNRe   = regexp.MustCompile(`^arn:aws:ivs:us-west-2:123456789012:playback-key/[A-Za-z0-9]{12}$`)
	policyARNRe    = regexp.MustCompile(`^arn:aws:ivs:us-west-2:123456789012:playback-restriction-policy/[A-Za-z0-9]{12}$`)
	recordingARNRe = regexp.MustCompile(`^arn:aws:ivs:us-west-2:123456789012:recording-configuration/[A-Za-z0-9]{12}$`)
	streamKeyRe    = regexp.MustCompile(`^sk_us-west-2_[A-Za-z0-9]{12,}$`)
	fingerprintRe  = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){15}$`)
)

// ARNs of resources that do not exist.
const (
	unknownChannelARN   = "arn:aws:ivs:us-west-2:123456789012:channel/zzzzzzzzzzzz"
	unknownStreamKeyARN = "arn:aws:ivs:us-west-2:123456789012:stream-key/zzzzzzzzzzzz"
	unknownKeyPairARN   = "arn:aws:ivs:us-west-2:123456789012:playback-key/zzzzzzzzzzzz"
	unknownPolicyARN    = "arn:aws:ivs:us-west-2:123456789012:playback-restriction-policy/zzzzzzzzzzzz"
	unknownRecordingARN = "arn:aws:ivs:us-west-2:123456789012:recording-configuration/zzzzzzzzzzzz"
)

// otherAccount rewrites an ARN of the test account into another account's.
func otherAccount(arn string) string {
	return strings.Replace(arn, ":"+testAccountID+":", ":999999999999:", 1)
}

func createChannel(t testing.TB, c *ivs.Client, in *ivs.CreateChannelInput) *ivs.CreateChannelOutput {
	t.Helper()
	if in == nil {
		in = &ivs.CreateChannelInput{}
	}
	out, err := c.CreateChannel(ctx(t), in)
	must(t, err, "CreateChannel")
	if out.Channel == nil || out.StreamKey == nil {
		t.Fatalf("CreateChannel: channel or streamKey missing: %+v", out)
	}
	return out
}

func TestChannelLifecycle(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	out := createChannel(t, c, &ivs.CreateChannelInput{Name: aws.String("defaults"), Tags: map[string]string{"team": "video"}})
	ch, sk := out.Channel, out.StreamKey
	m := channelARNRe.FindStringSubmatch(aws.ToString(ch.Arn))
	if m == nil {
		t.Fatalf("channel arn %q does not match %s", aws.ToString(ch.Arn), channelARNRe)
	}
	id := m[1]
	eq(t, "name", aws.ToString(ch.Name), "defaults")
	eq(t, "type", ch.Type, types.ChannelTypeStandardChannelType)
	eq(t, "latencyMode", ch.LatencyMode, types.ChannelLatencyModeLowLatency)
	eq(t, "containerFormat", ch.ContainerFormat, types.ContainerFormatTs)
	eq(t, "authorized", ch.Authorized, false)
	eq(t, "insecureIngest", ch.InsecureIngest, false)
	eq(t, "preset", ch.Preset, types.TranscodePreset(""))
	if ch.RecordingConfigurationArn == nil || *ch.RecordingConfigurationArn != "" {
		t.Errorf("recordingConfigurationArn = %v, want present and empty", ch.RecordingConfigurationArn)
	}
	if ch.PlaybackRestrictionPolicyArn == nil || *ch.PlaybackRestrictionPolicyArn != "" {
		t.Errorf("playbackRestrictionPolicyArn = %v, want present and empty", ch.PlaybackRestrictionPolicyArn)
	}
	eq(t, "ingestEndpoint", aws.ToString(ch.IngestEndpoint), "localhost:"+strconv.Itoa(srv.RTMPS))
	eq(t, "playbackUrl", aws.ToString(ch.PlaybackUrl),
		fmt.Sprintf("http://localhost:%d/api/video/v1/us-west-2.123456789012.channel.%s.m3u8", srv.HTTP, id))
	if ch.Srt == nil {
		t.Errorf("srt missing")
	} else {
		eq(t, "srt.endpoint", aws.ToString(ch.Srt.Endpoint), "localhost:"+strconv.Itoa(srv.SRT))
		if aws.ToString(ch.Srt.Passphrase) == "" {
			t.Errorf("srt.passphrase is empty")
		}
	}
	if ch.MultitrackInputConfiguration != nil && ch.MultitrackInputConfiguration.Enabled {
		t.Errorf("multitrack enabled by default: %+v", ch.MultitrackInputConfiguration)
	}
	deepEq(t, "channel tags", ch.Tags, map[string]string{"team": "video"})
	if !streamKeyRe.MatchString(aws.ToString(sk.Value)) {
		t.Errorf("streamKey.value %q does not match %s", aws.ToString(sk.Value), streamKeyRe)
	}
	if !streamKeyARNRe.MatchString(aws.ToString(sk.Arn)) {
		t.Errorf("streamKey.arn %q does not match %s", aws.ToString(sk.Arn), streamKeyARNRe)
	}
	eq(t, "streamKey.channelArn", aws.ToString(sk.ChannelArn), aws.ToString(ch.Arn))

	// A second channel gets other ids, key and passphrase.
	out2 := createChannel(t, c, nil)
	if aws.ToString(out2.Channel.Arn) == aws.ToString(ch.Arn) || aws.ToString(out2.StreamKey.Value) == aws.ToString(sk.Value) {
		t.Errorf("two channels share an ARN or stream key: %v %v", out2.Channel.Arn, out2.StreamKey.Value)
	}
	if ch.Srt != nil && out2.Channel.Srt != nil && aws.ToString(ch.Srt.Passphrase) == aws.ToString(out2.Channel.Srt.Passphrase) {
		t.Errorf("two channels share an SRT passphrase")
	}
	eq(t, "unnamed channel name", aws.ToString(out2.Channel.Name), "")
	if out2.Channel.Tags == nil {
		t.Errorf("untagged channel: tags missing, want {}")
	}
	if id, ok := awsmiddleware.GetRequestIDMetadata(out2.ResultMetadata); !ok || id == "" {
		t.Errorf("CreateChannel response without x-amzn-RequestId")
	}

	// GetChannel returns what CreateChannel did.
	got, err := c.GetChannel(cx, &ivs.GetChannelInput{Arn: ch.Arn})
	must(t, err, "GetChannel")
	eq(t, "get arn", aws.ToString(got.Channel.Arn), aws.ToString(ch.Arn))
	eq(t, "get name", aws.ToString(got.Channel.Name), "defaults")
	eq(t, "get playbackUrl", aws.ToString(got.Channel.PlaybackUrl), aws.ToString(ch.PlaybackUrl))
	eq(t, "get ingestEndpoint", aws.ToString(got.Channel.IngestEndpoint), aws.ToString(ch.IngestEndpoint))
	if got.Channel.Srt == nil || aws.ToString(got.Channel.Srt.Passphrase) != aws.ToString(ch.Srt.Passphrase) {
		t.Errorf("get srt = %+v, want the passphrase from CreateChannel", got.Channel.Srt)
	}
	deepEq(t, "get tags", got.Channel.Tags, map[string]string{"team": "video"})

	// UpdateChannel changes only what it is given.
	up, err := c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, LatencyMode: types.ChannelLatencyModeNormalLatency})
	must(t, err, "UpdateChannel latencyMode")
	eq(t, "updated latencyMode", up.Channel.LatencyMode, types.ChannelLatencyModeNormalLatency)
	eq(t, "updated name kept", aws.ToString(up.Channel.Name), "defaults")
	eq(t, "updated type kept", up.Channel.Type, types.ChannelTypeStandardChannelType)
	deepEq(t, "updated tags kept", up.Channel.Tags, map[string]string{"team": "video"})
	up, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, Name: aws.String("renamed"), Authorized: true, InsecureIngest: true})
	must(t, err, "UpdateChannel name")
	eq(t, "renamed", aws.ToString(up.Channel.Name), "renamed")
	eq(t, "authorized", up.Channel.Authorized, true)
	eq(t, "insecureIngest", up.Channel.InsecureIngest, true)
	eq(t, "latencyMode kept", up.Channel.LatencyMode, types.ChannelLatencyModeNormalLatency)
	got, err = c.GetChannel(cx, &ivs.GetChannelInput{Arn: ch.Arn})
	must(t, err, "GetChannel after update")
	eq(t, "persisted name", aws.ToString(got.Channel.Name), "renamed")
	eq(t, "persisted latencyMode", got.Channel.LatencyMode, types.ChannelLatencyModeNormalLatency)
	eq(t, "persisted authorized", got.Channel.Authorized, true)

	// ADVANCED types default their preset; going back to STANDARD drops it.
	up, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, Type: types.ChannelTypeAdvancedHDChannelType})
	must(t, err, "UpdateChannel to ADVANCED_HD")
	eq(t, "ADVANCED_HD preset", up.Channel.Preset, types.TranscodePresetHigherBandwidthTranscodePreset)
	up, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, Preset: types.TranscodePresetConstrainedBandwidthTranscodePreset})
	must(t, err, "UpdateChannel preset")
	eq(t, "changed preset", up.Channel.Preset, types.TranscodePresetConstrainedBandwidthTranscodePreset)
	eq(t, "type kept", up.Channel.Type, types.ChannelTypeAdvancedHDChannelType)
	up, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, Type: types.ChannelTypeStandardChannelType})
	must(t, err, "UpdateChannel back to STANDARD")
	eq(t, "STANDARD preset", up.Channel.Preset, types.TranscodePreset(""))
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: ch.Arn, Preset: types.TranscodePresetHigherBandwidthTranscodePreset})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdateChannel preset on STANDARD", "preset")

	// Unknown ARNs, and ARNs of another account, are not found.
	for _, arn := range []string{unknownChannelARN, otherAccount(aws.ToString(ch.Arn))} {
		_, err = c.GetChannel(cx, &ivs.GetChannelInput{Arn: aws.String(arn)})
		wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetChannel "+arn)
		_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: aws.String(arn), Name: aws.String("x")})
		wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "UpdateChannel "+arn)
		_, err = c.DeleteChannel(cx, &ivs.DeleteChannelInput{Arn: aws.String(arn)})
		wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeleteChannel "+arn)
	}

	// BatchGetChannel: found channels plus an error per unknown ARN.
	bg, err := c.BatchGetChannel(cx, &ivs.BatchGetChannelInput{Arns: []string{aws.ToString(ch.Arn), unknownChannelARN, aws.ToString(out2.Channel.Arn)}})
	must(t, err, "BatchGetChannel")
	var found []string
	for _, bc := range bg.Channels {
		found = append(found, aws.ToString(bc.Arn))
	}
	if !sameSet(found, []string{aws.ToString(ch.Arn), aws.ToString(out2.Channel.Arn)}) {
		t.Errorf("BatchGetChannel channels = %v", found)
	}
	if len(bg.Errors) != 1 {
		t.Errorf("BatchGetChannel errors = %+v, want one", bg.Errors)
	} else {
		e := bg.Errors[0]
		eq(t, "batch error arn", aws.ToString(e.Arn), unknownChannelARN)
		eq(t, "batch error code", aws.ToString(e.Code), "ResourceNotFoundException")
		if aws.ToString(e.Message) == "" {
			t.Errorf("batch error without message")
		}
	}
	_, err = c.BatchGetChannel(cx, &ivs.BatchGetChannelInput{Arns: []string{}})
	wantErr[*types.ValidationException](t, err, stValidation, "BatchGetChannel no arns", "arns")

	// DeleteChannel removes the channel and its stream key.
	_, err = c.DeleteChannel(cx, &ivs.DeleteChannelInput{Arn: ch.Arn})
	must(t, err, "DeleteChannel")
	_, err = c.GetChannel(cx, &ivs.GetChannelInput{Arn: ch.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetChannel after delete")
	_, err = c.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: sk.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamKey of a deleted channel")
	_, err = c.DeleteChannel(cx, &ivs.DeleteChannelInput{Arn: ch.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeleteChannel twice")
	lc, err := c.ListChannels(cx, &ivs.ListChannelsInput{})
	must(t, err, "ListChannels")
	if len(lc.Channels) != 1 || aws.ToString(lc.Channels[0].Arn) != aws.ToString(out2.Channel.Arn) {
		t.Errorf("ListChannels after delete = %+v, want only %s", lc.Channels, aws.ToString(out2.Channel.Arn))
	}
}

func TestChannelCreateRules(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	for _, typ := range []types.ChannelType{types.ChannelTypeAdvancedHDChannelType, types.ChannelTypeAdvancedSDChannelType} {
		out := createChannel(t, c, &ivs.CreateChannelInput{Type: typ})
		eq(t, string(typ)+" preset", out.Channel.Preset, types.TranscodePresetHigherBandwidthTranscodePreset)
		eq(t, string(typ)+" type", out.Channel.Type, typ)
	}
	out := createChannel(t, c, &ivs.CreateChannelInput{Type: types.ChannelTypeAdvancedSDChannelType, Preset: types.TranscodePresetConstrainedBandwidthTranscodePreset})
	eq(t, "explicit preset", out.Channel.Preset, types.TranscodePresetConstrainedBandwidthTranscodePreset)

	out = createChannel(t, c, &ivs.CreateChannelInput{
		Name: aws.String("all-settings"), Type: types.ChannelTypeBasicChannelType, LatencyMode: types.ChannelLatencyModeNormalLatency,
		Authorized: true, InsecureIngest: true,
	})
	eq(t, "BASIC type", out.Channel.Type, types.ChannelTypeBasicChannelType)
	eq(t, "NORMAL latency", out.Channel.LatencyMode, types.ChannelLatencyModeNormalLatency)
	eq(t, "authorized", out.Channel.Authorized, true)
	eq(t, "insecureIngest", out.Channel.InsecureIngest, true)

	out = createChannel(t, c, &ivs.CreateChannelInput{
		ContainerFormat:              types.ContainerFormatFragmentedMP4,
		MultitrackInputConfiguration: &types.MultitrackInputConfiguration{Enabled: true, Policy: types.MultitrackPolicyRequire, MaximumResolution: types.MultitrackMaximumResolutionHd},
	})
	eq(t, "multitrack containerFormat", out.Channel.ContainerFormat, types.ContainerFormatFragmentedMP4)
	if mt := out.Channel.MultitrackInputConfiguration; mt == nil {
		t.Errorf("multitrackInputConfiguration missing")
	} else {
		eq(t, "multitrack enabled", mt.Enabled, true)
		eq(t, "multitrack policy", mt.Policy, types.MultitrackPolicyRequire)
		eq(t, "multitrack maximumResolution", mt.MaximumResolution, types.MultitrackMaximumResolutionHd)
	}

	// The limits themselves are allowed.
	fifty := map[string]string{}
	for i := 0; i < 50; i++ {
		fifty[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", 256)
	}
	fifty[strings.Repeat("K", 128)] = "long key"
	delete(fifty, "k00")
	edge := createChannel(t, c, &ivs.CreateChannelInput{Name: aws.String(strings.Repeat("n", 128)), Tags: fifty})
	eq(t, "128-char name", aws.ToString(edge.Channel.Name), strings.Repeat("n", 128))
	eq(t, "50 tags", len(edge.Channel.Tags), 50)

	before, err := c.ListChannels(cx, &ivs.ListChannelsInput{})
	must(t, err, "ListChannels")

	tooManyTags := map[string]string{}
	for i := 0; i < 51; i++ {
		tooManyTags[fmt.Sprintf("k%02d", i)] = "v"
	}
	bad := []struct {
		name    string
		in      ivs.CreateChannelInput
		mention string
	}{
		{"bad name", ivs.CreateChannelInput{Name: aws.String("bad name!")}, "name"},
		{"long name", ivs.CreateChannelInput{Name: aws.String(strings.Repeat("n", 129))}, "name"},
		{"bad type", ivs.CreateChannelInput{Type: "HUGE"}, "type"},
		{"bad latencyMode", ivs.CreateChannelInput{LatencyMode: "ULTRA"}, "latencyMode"},
		{"bad containerFormat", ivs.CreateChannelInput{ContainerFormat: "MKV"}, "containerFormat"},
		{"preset on STANDARD", ivs.CreateChannelInput{Preset: types.TranscodePresetHigherBandwidthTranscodePreset}, "preset"},
		{"preset on BASIC", ivs.CreateChannelInput{Type: types.ChannelTypeBasicChannelType, Preset: types.TranscodePresetConstrainedBandwidthTranscodePreset}, "preset"},
		{"multitrack with TS", ivs.CreateChannelInput{MultitrackInputConfiguration: &types.MultitrackInputConfiguration{Enabled: true}}, "containerFormat"},
		{"multitrack on ADVANCED_HD", ivs.CreateChannelInput{Type: types.ChannelTypeAdvancedHDChannelType, ContainerFormat: types.ContainerFormatFragmentedMP4,
			MultitrackInputConfiguration: &types.MultitrackInputConfiguration{Enabled: true}}, "multitrack"},
		{"bad recordingConfigurationArn", ivs.CreateChannelInput{RecordingConfigurationArn: aws.String("arn:nope")}, "recordingConfigurationArn"},
		{"bad playbackRestrictionPolicyArn", ivs.CreateChannelInput{PlaybackRestrictionPolicyArn: aws.String("bogus")}, "playbackRestrictionPolicyArn"},
		{"51 tags", ivs.CreateChannelInput{Tags: tooManyTags}, "tags"},
		{"aws: tag", ivs.CreateChannelInput{Tags: map[string]string{"aws:owner": "me"}}, "aws:"},
		{"129-char tag key", ivs.CreateChannelInput{Tags: map[string]string{strings.Repeat("K", 129): "v"}}, "tag"},
		{"257-char tag value", ivs.CreateChannelInput{Tags: map[string]string{"k": strings.Repeat("v", 257)}}, "tag"},
	}
	for _, b := range bad {
		_, err := c.CreateChannel(cx, &b.in)
		wantErr[*types.ValidationException](t, err, stValidation, "CreateChannel "+b.name, b.mention)
	}
	// Nothing was created by the rejected calls.
	after, err := c.ListChannels(cx, &ivs.ListChannelsInput{})
	must(t, err, "ListChannels")
	eq(t, "channels after rejected creates", len(after.Channels), len(before.Channels))

	// Malformed ARNs are validation errors naming the field.
	for _, arn := range []string{"", "not-an-arn", "arn:aws:ivs:us-west-2:123456789012:stream-key/abcdefghijkl", "arn:aws:s3:::bucket"} {
		_, err := c.GetChannel(cx, &ivs.GetChannelInput{Arn: aws.String(arn)})
		wantErr[*types.ValidationException](t, err, stValidation, fmt.Sprintf("GetChannel arn %q", arn), "arn")
	}
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: aws.String("channel/abc")})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdateChannel bad arn", "arn")
	_, err = c.DeleteChannel(cx, &ivs.DeleteChannelInput{Arn: aws.String("arn:aws:ivs:us-west-2:123456789012:channel/")})
	wantErr[*types.ValidationException](t, err, stValidation, "DeleteChannel bad arn", "arn")
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: out.Channel.Arn, Name: aws.String("bad name!")})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdateChannel bad name", "name")
	plain := createChannel(t, c, nil).Channel
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: plain.Arn, MultitrackInputConfiguration: &types.MultitrackInputConfiguration{Enabled: true}})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdateChannel enable multitrack on a TS channel", "containerFormat")
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: plain.Arn, Type: types.ChannelTypeBasicChannelType, Preset: types.TranscodePresetHigherBandwidthTranscodePreset})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdateChannel BASIC with a preset", "preset")
	up, err := c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: plain.Arn, ContainerFormat: types.ContainerFormatFragmentedMP4,
		MultitrackInputConfiguration: &types.MultitrackInputConfiguration{Enabled: true}})
	must(t, err, "UpdateChannel enable multitrack with FRAGMENTED_MP4")
	eq(t, "updated containerFormat", up.Channel.ContainerFormat, types.ContainerFormatFragmentedMP4)
	if up.Channel.MultitrackInputConfiguration == nil || !up.Channel.MultitrackInputConfiguration.Enabled {
		t.Errorf("multitrack not enabled by UpdateChannel: %+v", up.Channel.MultitrackInputConfiguration)
	}
	_, err = c.UpdateChannel(cx, &ivs.UpdateChannelInput{Arn: out.Channel.Arn, ContainerFormat: types.ContainerFormatTs})
	wantErr[*types.ValidationException](t, err, stValidation, "UpdateChannel multitrack channel to TS", "containerFormat")
}

func TestListChannels(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		out := createChannel(t, c, &ivs.CreateChannelInput{Name: aws.String(fmt.Sprintf("page-%d", i))})
		want[aws.ToString(out.Channel.Arn)] = true
	}

	// Pages of 3: 3 + 3 + 1, every channel once, no token on the last page.
	seen := map[string]int{}
	var sizes []int
	var token *string
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatalf("ListChannels did not end after %d pages", page)
		}
		out, err := c.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(3), NextToken: token})
		must(t, err, "ListChannels page")
		sizes = append(sizes, len(out.Channels))
		for _, s := range out.Channels {
			seen[aws.ToString(s.Arn)]++
		}
		if out.NextToken == nil {
			break
		}
		if *out.NextToken == "" {
			t.Fatalf("ListChannels returned an empty nextToken")
		}
		token = out.NextToken
	}
	deepEq(t, "page sizes", sizes, []int{3, 3, 1})
	for arn := range want {
		if seen[arn] != 1 {
			t.Errorf("channel %s seen %d times", arn, seen[arn])
		}
	}
	eq(t, "distinct channels listed", len(seen), 7)

	// The SDK paginator walks the same listing.
	p := ivs.NewListChannelsPaginator(c, &ivs.ListChannelsInput{MaxResults: aws.Int32(2)})
	var all []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(cx)
		must(t, err, "paginator")
		pages++
		for _, s := range out.Channels {
			all = append(all, aws.ToString(s.Arn))
		}
	}
	eq(t, "paginator pages", pages, 4)
	eq(t, "paginator channels", len(all), 7)
	for _, arn := range all {
		if !want[arn] {
			t.Errorf("paginator listed unknown channel %s", arn)
		}
	}

	// filterByName matches exactly.
	out, err := c.ListChannels(cx, &ivs.ListChannelsInput{FilterByName: aws.String("page-3")})
	must(t, err, "ListChannels filterByName")
	if len(out.Channels) != 1 || aws.ToString(out.Channels[0].Name) != "page-3" {
		t.Errorf("filterByName page-3 = %+v", out.Channels)
	}
	out, err = c.ListChannels(cx, &ivs.ListChannelsInput{FilterByName: aws.String("page")})
	must(t, err, "ListChannels filterByName prefix")
	eq(t, "filterByName is exact (prefix matches nothing)", len(out.Channels), 0)

	// Summaries carry the summary fields.
	out, err = c.ListChannels(cx, &ivs.ListChannelsInput{FilterByName: aws.String("page-0")})
	must(t, err, "ListChannels filterByName page-0")
	if len(out.Channels) != 1 {
		t.Errorf("filterByName page-0 = %+v", out.Channels)
	} else {
		s := out.Channels[0]
		eq(t, "summary type", s.Type, types.ChannelTypeStandardChannelType)
		eq(t, "summary latencyMode", s.LatencyMode, types.ChannelLatencyModeLowLatency)
		eq(t, "summary name", aws.ToString(s.Name), "page-0")
		if !want[aws.ToString(s.Arn)] {
			t.Errorf("summary arn %q is not one of the created channels", aws.ToString(s.Arn))
		}
	}

	// Filters by recording configuration and restriction policy.
	rc, err := c.CreateRecordingConfiguration(cx, &ivs.CreateRecordingConfigurationInput{
		DestinationConfiguration: &types.DestinationConfiguration{S3: &types.S3DestinationConfiguration{BucketName: aws.String("e2e-bucket")}},
	})
	must(t, err, "CreateRecordingConfiguration")
	pol, err := c.CreatePlaybackRestrictionPolicy(cx, &ivs.CreatePlaybackRestrictionPolicyInput{AllowedCountries: []string{"US"}})
	must(t, err, "CreatePlaybackRestrictionPolicy")
	withRC := createChannel(t, c, &ivs.CreateChannelInput{RecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	withPol := createChannel(t, c, &ivs.CreateChannelInput{PlaybackRestrictionPolicyArn: pol.PlaybackRestrictionPolicy.Arn})
	eq(t, "channel recordingConfigurationArn", aws.ToString(withRC.Channel.RecordingConfigurationArn), aws.ToString(rc.RecordingConfiguration.Arn))
	eq(t, "channel playbackRestrictionPolicyArn", aws.ToString(withPol.Channel.PlaybackRestrictionPolicyArn), aws.ToString(pol.PlaybackRestrictionPolicy.Arn))

	out, err = c.ListChannels(cx, &ivs.ListChannelsInput{FilterByRecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	must(t, err, "ListChannels filterByRecordingConfigurationArn")
	if len(out.Channels) != 1 || aws.ToString(out.Channels[0].Arn) != aws.ToString(withRC.Channel.Arn) {
		t.Errorf("filterByRecordingConfigurationArn = %+v, want only %s", out.Channels, aws.ToString(withRC.Channel.Arn))
	}
	out, err = c.ListChannels(cx, &ivs.ListChannelsInput{FilterByPlaybackRestrictionPolicyArn: pol.PlaybackRestrictionPolicy.Arn})
	must(t, err, "ListChannels filterByPlaybackRestrictionPolicyArn")
	if len(out.Channels) != 1 || aws.ToString(out.Channels[0].Arn) != aws.ToString(withPol.Channel.Arn) {
		t.Errorf("filterByPlaybackRestrictionPolicyArn = %+v, want only %s", out.Channels, aws.ToString(withPol.Channel.Arn))
	}

	// Two filters at once conflict.
	_, err = c.ListChannels(cx, &ivs.ListChannelsInput{FilterByName: aws.String("page-1"), FilterByRecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	wantErr[*types.ConflictException](t, err, stConflict, "ListChannels with two filters")
	_, err = c.ListChannels(cx, &ivs.ListChannelsInput{FilterByPlaybackRestrictionPolicyArn: pol.PlaybackRestrictionPolicy.Arn, FilterByRecordingConfigurationArn: rc.RecordingConfiguration.Arn})
	wantErr[*types.ConflictException](t, err, stConflict, "ListChannels with policy and recording filters")

	// Tokens only resume the listing they came from.
	first, err := c.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(3)})
	must(t, err, "ListChannels first page")
	if first.NextToken == nil {
		t.Fatalf("ListChannels maxResults 3 of 9 gave no nextToken")
	}
	_, err = c.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(3), NextToken: first.NextToken, FilterByName: aws.String("page-1")})
	wantErr[*types.ValidationException](t, err, stValidation, "ListChannels token with another filter")
	_, err = c.ListPlaybackRestrictionPolicies(cx, &ivs.ListPlaybackRestrictionPoliciesInput{NextToken: first.NextToken})
	wantErr[*types.ValidationException](t, err, stValidation, "ListPlaybackRestrictionPolicies with a ListChannels token")
	_, err = c.ListRecordingConfigurations(cx, &ivs.ListRecordingConfigurationsInput{NextToken: first.NextToken})
	wantErr[*types.ValidationException](t, err, stValidation, "ListRecordingConfigurations with a ListChannels token")
	_, err = c.ListChannels(cx, &ivs.ListChannelsInput{NextToken: aws.String("garbage-token")})
	wantErr[*types.ValidationException](t, err, stValidation, "ListChannels garbage token")
	// The token still works where it belongs.
	second, err := c.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(3), NextToken: first.NextToken})
	must(t, err, "ListChannels second page")
	eq(t, "second page size", len(second.Channels), 3)

	for _, n := range []int32{0, 101, -1} {
		_, err = c.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(n)})
		wantErr[*types.ValidationException](t, err, stValidation, fmt.Sprintf("ListChannels maxResults %d", n), "maxResults")
	}
	out, err = c.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(100)})
	must(t, err, "ListChannels maxResults 100")
	eq(t, "maxResults 100 lists all", len(out.Channels), 9)
	if out.NextToken != nil {
		t.Errorf("nextToken %q on the only page", *out.NextToken)
	}
}

func TestStreamKeys(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)

	ch := createChannel(t, c, nil)
	chARN := ch.Channel.Arn
	key := ch.StreamKey

	got, err := c.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: key.Arn})
	must(t, err, "GetStreamKey")
	eq(t, "get value", aws.ToString(got.StreamKey.Value), aws.ToString(key.Value))
	eq(t, "get channelArn", aws.ToString(got.StreamKey.ChannelArn), aws.ToString(chARN))
	eq(t, "get arn", aws.ToString(got.StreamKey.Arn), aws.ToString(key.Arn))

	// One key per channel.
	_, err = c.CreateStreamKey(cx, &ivs.CreateStreamKeyInput{ChannelArn: chARN})
	wantErr[*types.ServiceQuotaExceededException](t, err, stQuota, "second CreateStreamKey")

	ls, err := c.ListStreamKeys(cx, &ivs.ListStreamKeysInput{ChannelArn: chARN})
	must(t, err, "ListStreamKeys")
	if len(ls.StreamKeys) != 1 || aws.ToString(ls.StreamKeys[0].Arn) != aws.ToString(key.Arn) || aws.ToString(ls.StreamKeys[0].ChannelArn) != aws.ToString(chARN) {
		t.Errorf("ListStreamKeys = %+v, want only %s", ls.StreamKeys, aws.ToString(key.Arn))
	}

	_, err = c.DeleteStreamKey(cx, &ivs.DeleteStreamKeyInput{Arn: key.Arn})
	must(t, err, "DeleteStreamKey")
	_, err = c.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: key.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamKey after delete")
	_, err = c.DeleteStreamKey(cx, &ivs.DeleteStreamKeyInput{Arn: key.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeleteStreamKey twice")
	ls, err = c.ListStreamKeys(cx, &ivs.ListStreamKeysInput{ChannelArn: chARN})
	must(t, err, "ListStreamKeys after delete")
	eq(t, "keys after delete", len(ls.StreamKeys), 0)

	nk, err := c.CreateStreamKey(cx, &ivs.CreateStreamKeyInput{ChannelArn: chARN, Tags: map[string]string{"rotated": "yes"}})
	must(t, err, "CreateStreamKey after delete")
	if !streamKeyARNRe.MatchString(aws.ToString(nk.StreamKey.Arn)) || aws.ToString(nk.StreamKey.Arn) == aws.ToString(key.Arn) {
		t.Errorf("new stream key arn %q (old %q)", aws.ToString(nk.StreamKey.Arn), aws.ToString(key.Arn))
	}
	if !streamKeyRe.MatchString(aws.ToString(nk.StreamKey.Value)) || aws.ToString(nk.StreamKey.Value) == aws.ToString(key.Value) {
		t.Errorf("new stream key value %q (old %q)", aws.ToString(nk.StreamKey.Value), aws.ToString(key.Value))
	}
	eq(t, "new key channelArn", aws.ToString(nk.StreamKey.ChannelArn), aws.ToString(chARN))
	deepEq(t, "new key tags", nk.StreamKey.Tags, map[string]string{"rotated": "yes"})

	bg, err := c.BatchGetStreamKey(cx, &ivs.BatchGetStreamKeyInput{Arns: []string{aws.ToString(nk.StreamKey.Arn), aws.ToString(key.Arn)}})
	must(t, err, "BatchGetStreamKey")
	if len(bg.StreamKeys) != 1 || aws.ToString(bg.StreamKeys[0].Value) != aws.ToString(nk.StreamKey.Value) {
		t.Errorf("BatchGetStreamKey keys = %+v", bg.StreamKeys)
	}
	if len(bg.Errors) != 1 {
		t.Errorf("BatchGetStreamKey errors = %+v, want one", bg.Errors)
	} else {
		eq(t, "batch error arn", aws.ToString(bg.Errors[0].Arn), aws.ToString(key.Arn))
		eq(t, "batch error code", aws.ToString(bg.Errors[0].Code), "ResourceNotFoundException")
		if aws.ToString(bg.Errors[0].Message) == "" {
			t.Errorf("batch error without message")
		}
	}

	// Unknown channels and keys.
	_, err = c.CreateStreamKey(cx, &ivs.CreateStreamKeyInput{ChannelArn: aws.String(unknownChannelARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "CreateStreamKey unknown channel")
	_, err = c.ListStreamKeys(cx, &ivs.ListStreamKeysInput{ChannelArn: aws.String(unknownChannelARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "ListStreamKeys unknown channel")
	_, err = c.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: aws.String(unknownStreamKeyARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamKey unknown")
	_, err = c.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: aws.String(otherAccount(aws.ToString(nk.StreamKey.Arn)))})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamKey other account")
	_, err = c.DeleteStreamKey(cx, &ivs.DeleteStreamKeyInput{Arn: aws.String(unknownStreamKeyARN)})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "DeleteStreamKey unknown")
	_, err = c.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: chARN})
	wantErr[*types.ValidationException](t, err, stValidation, "GetStreamKey with a channel ARN", "arn")

	// Deleting the channel deletes its key.
	_, err = c.DeleteChannel(cx, &ivs.DeleteChannelInput{Arn: chARN})
	must(t, err, "DeleteChannel")
	_, err = c.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: nk.StreamKey.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamKey after DeleteChannel")
}

func TestStreamsOffline(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)
	ch := createChannel(t, c, nil).Channel

	_, err := c.GetStream(cx, &ivs.GetStreamInput{ChannelArn: ch.Arn})
	wantErr[*types.ChannelNotBroadcasting](t, err, stNotBroadcating, "GetStream offline")
	_, err = c.StopStream(cx, &ivs.StopStreamInput{ChannelArn: ch.Arn})
	wantErr[*types.ChannelNotBroadcasting](t, err, stNotBroadcating, "StopStream offline")
	_, err = c.PutMetadata(cx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(`{"q":1}`)})
	wantErr[*types.ChannelNotBroadcasting](t, err, stNotBroadcating, "PutMetadata offline")
	_, err = c.PutMetadata(cx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String(strings.Repeat("m", 1025))})
	wantErr[*types.ValidationException](t, err, stValidation, "PutMetadata 1025 bytes", "metadata")
	_, err = c.PutMetadata(cx, &ivs.PutMetadataInput{ChannelArn: ch.Arn, Metadata: aws.String("")})
	wantErr[*types.ValidationException](t, err, stValidation, "PutMetadata empty", "metadata")

	ls, err := c.ListStreams(cx, &ivs.ListStreamsInput{})
	must(t, err, "ListStreams")
	if ls.Streams == nil || len(ls.Streams) != 0 || ls.NextToken != nil {
		t.Errorf("ListStreams = %+v (nextToken %v), want an empty list", ls.Streams, ls.NextToken)
	}
	ls, err = c.ListStreams(cx, &ivs.ListStreamsInput{FilterBy: &types.StreamFilters{Health: types.StreamHealthStreamHealthy}})
	must(t, err, "ListStreams filterBy health")
	eq(t, "healthy streams", len(ls.Streams), 0)
	_, err = c.ListStreams(cx, &ivs.ListStreamsInput{MaxResults: aws.Int32(101)})
	wantErr[*types.ValidationException](t, err, stValidation, "ListStreams maxResults 101", "maxResults")

	lss, err := c.ListStreamSessions(cx, &ivs.ListStreamSessionsInput{ChannelArn: ch.Arn})
	must(t, err, "ListStreamSessions")
	if lss.StreamSessions == nil || len(lss.StreamSessions) != 0 {
		t.Errorf("ListStreamSessions = %+v, want an empty list", lss.StreamSessions)
	}
	_, err = c.GetStreamSession(cx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamSession without streamId on a channel never live")
	_, err = c.GetStreamSession(cx, &ivs.GetStreamSessionInput{ChannelArn: ch.Arn, StreamId: aws.String("st-1AbCdEfGhIjKlMnOpQrStUv")})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamSession unknown streamId")

	unknown := aws.String(unknownChannelARN)
	_, err = c.GetStream(cx, &ivs.GetStreamInput{ChannelArn: unknown})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStream unknown channel")
	_, err = c.StopStream(cx, &ivs.StopStreamInput{ChannelArn: unknown})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "StopStream unknown channel")
	_, err = c.PutMetadata(cx, &ivs.PutMetadataInput{ChannelArn: unknown, Metadata: aws.String("x")})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "PutMetadata unknown channel")
	_, err = c.ListStreamSessions(cx, &ivs.ListStreamSessionsInput{ChannelArn: unknown})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "ListStreamSessions unknown channel")
	_, err = c.GetStreamSession(cx, &ivs.GetStreamSessionInput{ChannelArn: unknown})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "GetStreamSession unknown channel")
	_, err = c.GetStream(cx, &ivs.GetStreamInput{ChannelArn: aws.String("bogus")})
	wantErr[*types.ValidationException](t, err, stValidation, "GetStream bad arn", "channelArn")
}

func TestViewerSessionRevocation(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	cx := ctx(t)
	ch := createChannel(t, c, nil).Channel

	_, err := c.StartViewerSessionRevocation(cx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Arn, ViewerId: aws.String("viewer-1")})
	must(t, err, "StartViewerSessionRevocation")
	_, err = c.StartViewerSessionRevocation(cx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Arn, ViewerId: aws.String("viewer-2"), ViewerSessionVersionsLessThanOrEqualTo: 3})
	must(t, err, "StartViewerSessionRevocation with version")
	_, err = c.StartViewerSessionRevocation(cx, &ivs.StartViewerSessionRevocationInput{ChannelArn: aws.String(unknownChannelARN), ViewerId: aws.String("viewer-1")})
	wantErr[*types.ResourceNotFoundException](t, err, stNotFound, "StartViewerSessionRevocation unknown channel")
	_, err = c.StartViewerSessionRevocation(cx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Arn, ViewerId: aws.String(strings.Repeat("v", 41))})
	wantErr[*types.ValidationException](t, err, stValidation, "StartViewerSessionRevocation 41-char viewerId", "viewerId")
	_, err = c.StartViewerSessionRevocation(cx, &ivs.StartViewerSessionRevocationInput{ChannelArn: ch.Arn, ViewerId: aws.String("")})
	wantErr[*types.ValidationException](t, err, stValidation, "StartViewerSessionRevocation empty viewerId", "viewerId")

	out, err := c.BatchStartViewerSessionRevocation(cx, &ivs.BatchStartViewerSessionRevocationInput{
		ViewerSessions: []types.BatchStartViewerSessionRevocationViewerSession{
			{ChannelArn: ch.Arn, ViewerId: aws.String("good-viewer")},
			{ChannelArn: aws.String(unknownChannelARN), ViewerId: aws.String("bad-viewer")},
		},
	})
	must(t, err, "BatchStartViewerSessionRevocation")
	if len(out.Errors) != 1 {
		t.Errorf("BatchStartViewerSessionRevocation errors = %+v, want exactly the unknown channel", out.Errors)
	} else {
		e := out.Errors[0]
		eq(t, "batch error channelArn", aws.ToString(e.ChannelArn), unknownChannelARN)
		eq(t, "batch error viewerId", aws.ToString(e.ViewerId), "bad-viewer")
		eq(t, "batch error code", aws.ToString(e.Code), "ResourceNotFoundException")
	}
	out, err = c.BatchStartViewerSessionRevocation(cx, &ivs.BatchStartViewerSessionRevocationInput{
		ViewerSessions: []types.BatchStartViewerSessionRevocationViewerSession{{ChannelArn: ch.Arn, ViewerId: aws.String("v")}},
	})
	must(t, err, "BatchStartViewerSessionRevocation all good")
	eq(t, "errors when all good", len(out.Errors), 0)
	_, err = c.BatchStartViewerSessionRevocation(cx, &ivs.BatchStartViewerSessionRevocationInput{
		ViewerSessions: []types.BatchStartViewerSessionRevocationViewerSession{},
	})
	wantErr[*types.ValidationException](t, err, stValidation, "BatchStartViewerSessionRevocation empty", "viewerSessions")
}

// TestRestartKeepsState restarts a server on the same data directory: the
// resources, their secrets and a pagination token all survive.
func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, serverOpts{DataDir: dir})
	c := ivsClient(t, srv)
	cx := ctx(t)
	var arns []string
	var first *ivs.CreateChannelOutput
	for i := 0; i < 3; i++ {
		out := createChannel(t, c, &ivs.CreateChannelInput{Name: aws.String(fmt.Sprintf("keep-%d", i)), Tags: map[string]string{"i": strconv.Itoa(i)}})
		arns = append(arns, aws.ToString(out.Channel.Arn))
		if first == nil {
			first = out
		}
	}
	page, err := c.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(2)})
	must(t, err, "ListChannels")
	if page.NextToken == nil {
		t.Fatalf("no nextToken with 3 channels and maxResults 2")
	}
	srv.Stop()

	srv2 := startServer(t, serverOpts{DataDir: dir})
	c2 := ivsClient(t, srv2)
	got, err := c2.GetChannel(cx, &ivs.GetChannelInput{Arn: first.Channel.Arn})
	must(t, err, "GetChannel after restart")
	eq(t, "name after restart", aws.ToString(got.Channel.Name), "keep-0")
	deepEq(t, "tags after restart", got.Channel.Tags, map[string]string{"i": "0"})
	if got.Channel.Srt == nil || aws.ToString(got.Channel.Srt.Passphrase) != aws.ToString(first.Channel.Srt.Passphrase) {
		t.Errorf("srt passphrase changed across a restart: %+v", got.Channel.Srt)
	}
	// Endpoints follow the new ports.
	eq(t, "ingestEndpoint after restart", aws.ToString(got.Channel.IngestEndpoint), "localhost:"+strconv.Itoa(srv2.RTMPS))
	sk, err := c2.GetStreamKey(cx, &ivs.GetStreamKeyInput{Arn: first.StreamKey.Arn})
	must(t, err, "GetStreamKey after restart")
	eq(t, "stream key after restart", aws.ToString(sk.StreamKey.Value), aws.ToString(first.StreamKey.Value))

	rest, err := c2.ListChannels(cx, &ivs.ListChannelsInput{MaxResults: aws.Int32(2), NextToken: page.NextToken})
	must(t, err, "ListChannels with a token from before the restart")
	seen := []string{}
	for _, s := range append(page.Channels, rest.Channels...) {
		seen = append(seen, aws.ToString(s.Arn))
	}
	if !sameSet(seen, arns) {
		t.Errorf("channels across the restart = %v, want %v", seen, arns)
	}
}
