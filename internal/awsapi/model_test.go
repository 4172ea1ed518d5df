package awsapi

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func mustModel(t testing.TB, name string) *Model {
	t.Helper()
	m, err := LoadModel(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadModelsCompilePatterns(t *testing.T) {
	for _, name := range []string{"ivs", "ivschat", "ivsrealtime"} {
		m := mustModel(t, name)
		if len(m.Operations) < 10 {
			t.Errorf("%s: only %d operations", name, len(m.Operations))
		}
	}
}

func TestBuildInputValidation(t *testing.T) {
	m := mustModel(t, "ivs")
	cases := []struct {
		op, body string
		wantErr  string // substring of the message, "" = valid
	}{
		{"CreateChannel", `{}`, ""},
		{"CreateChannel", `{"name":"demo-1_x","type":"BASIC","latencyMode":"NORMAL","tags":{"a":"b"}}`, ""},
		{"CreateChannel", `{"name":"bad name!"}`, "at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"CreateChannel", `{"name":"` + strings.Repeat("a", 129) + `"}`, "at 'name' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"CreateChannel", `{"type":"HUGE"}`, "at 'type' failed to satisfy constraint: Member must satisfy enum value set"},
		{"CreateChannel", `{"authorized":"yes"}`, "at 'authorized' failed to satisfy constraint: Member must be a boolean"},
		{"CreateChannel", `{"recordingConfigurationArn":"arn:aws:ivs:us-west-2:1:channel/x"}`, "at 'recordingConfigurationArn'"},
		{"CreateChannel", `{"recordingConfigurationArn":""}`, ""},
		{"GetChannel", `{}`, "Value null at 'arn' failed to satisfy constraint: Member must not be null"},
		{"GetChannel", `{"arn":"arn:aws:ivs:us-west-2:123456789012:channel/abcDEF123456"}`, ""},
		{"GetChannel", `{"arn":"arn:aws:ivs:us-west-2:123456789012:stream-key/abcDEF123456"}`, "at 'arn'"},
		{"ListChannels", `{"maxResults":0}`, "at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"ListChannels", `{"maxResults":101}`, "Member must have value less than or equal to 100"},
		{"ListChannels", `{"maxResults":1.5}`, "Member must be an integer"},
		{"ListChannels", `{"nextToken":"bad token!"}`, "at 'nextToken'"},
		{"CreateRecordingConfiguration", `{"destinationConfiguration":{"s3":{"bucketName":"My_Bucket"}}}`, "at 'destinationConfiguration.s3.bucketName'"},
		{"CreateRecordingConfiguration", `{"destinationConfiguration":{"s3":{"bucketName":"ok-bucket"}},"thumbnailConfiguration":{"targetIntervalSeconds":61}}`, "at 'thumbnailConfiguration.targetIntervalSeconds'"},
		{"CreatePlaybackRestrictionPolicy", `{"allowedCountries":["USA"]}`, "at 'allowedCountries.1'"},
		{"CreateChannel", `{"tags":{"k":null}}`, "at 'tags.value'"},
		{"CreateChannel", `{"tags":{"":"v"}}`, "at 'tags.key'"},
		{"BatchGetChannel", `{"arns":[]}`, "at 'arns' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"PutMetadata", `{"channelArn":"arn:aws:ivs:us-west-2:123456789012:channel/abc","metadata":""}`, "Value '***' at 'metadata'"},
	}
	for _, c := range cases {
		op := m.Operations[c.op]
		out, err := m.BuildInput(op, []byte(c.body), nil, nil)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s %s: unexpected error %v", c.op, c.body, err)
		case c.wantErr != "" && err == nil:
			t.Errorf("%s %s: accepted, want error containing %q", c.op, c.body, c.wantErr)
		case c.wantErr != "" && !strings.Contains(err.Message, c.wantErr):
			t.Errorf("%s %s: error %q, want it to contain %q", c.op, c.body, err.Message, c.wantErr)
		case err != nil && err.Code != CodeValidation:
			t.Errorf("%s: code %s", c.op, err.Code)
		case err == nil && !json.Valid(out):
			t.Errorf("%s: invalid output %s", c.op, out)
		}
	}
}

// TestBuildInputFieldList: a validation failure lists each field it names
// with its constraint, in the order of the message, for the models whose
// ValidationException has a fieldList (IVS Chat).
func TestBuildInputFieldList(t *testing.T) {
	m := mustModel(t, "ivschat")
	body := `{"maximumMessageLength":501,"name":"bad name!","tags":{"k":null}}`
	_, err := m.BuildInput(m.Operations["CreateRoom"], []byte(body), nil, nil)
	if err == nil || err.Code != CodeValidation || !strings.HasPrefix(err.Message, "3 validation errors detected: ") {
		t.Fatalf("CreateRoom %s: %v", body, err)
	}
	if err.Fields["reason"] != ReasonFieldValidationFailed {
		t.Fatalf("reason %v", err.Fields["reason"])
	}
	got, _ := err.Fields["fieldList"].([]FieldError)
	want := []FieldError{
		{"maximumMessageLength", "Member must have value less than or equal to 500"},
		{"name", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"},
		{"tags.value", "Member must not be null"},
	}
	if len(got) != len(want) {
		t.Fatalf("fieldList %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("fieldList[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBuildInputBindsURIAndQuery(t *testing.T) {
	m := mustModel(t, "ivs")
	arn := "arn:aws:ivs:us-west-2:123456789012:channel/abcDEF123456"
	op := m.Operations["UntagResource"]
	params, ok := op.matchPath("/tags/" + url.PathEscape(arn))
	if !ok || params["resourceArn"] != arn {
		t.Fatalf("matchPath = %v, %v", params, ok)
	}
	out, err := m.BuildInput(op, nil, params, url.Values{"tagKeys": {"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		ResourceArn string   `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := json.Unmarshal(out, &in); err != nil {
		t.Fatal(err)
	}
	if in.ResourceArn != arn || strings.Join(in.TagKeys, ",") != "a,b" {
		t.Fatalf("input = %+v", in)
	}
	// A body cannot override URI-bound members.
	out, _ = m.BuildInput(m.Operations["ListTagsForResource"], []byte(`{"resourceArn":"x"}`), params, nil)
	if !strings.Contains(string(out), arn) {
		t.Fatalf("body overrode the URI label: %s", out)
	}
}

func TestBuildInputRejectsNonObjects(t *testing.T) {
	m := mustModel(t, "ivs")
	for _, body := range []string{`[]`, `"x"`, `{`, `{"a":1} {}`, `null`} {
		if _, err := m.BuildInput(m.Operations["ListChannels"], []byte(body), nil, nil); err == nil {
			t.Errorf("body %q accepted", body)
		}
	}
}

func FuzzBuildInput(f *testing.F) {
	m := mustModel(f, "ivs")
	for _, seed := range []string{`{}`, `{"name":"x","tags":{"a":"b"}}`, `{"arns":["arn:aws:ivs:us-west-2:1:channel/a"]}`,
		`{"viewerSessions":[{"channelArn":"x","viewerId":"v"}]}`, `{"maxResults":"1"}`, `[1,2]`, `{"filterBy":{"health":7}}`} {
		for _, op := range []string{"CreateChannel", "BatchGetChannel", "BatchStartViewerSessionRevocation", "ListStreams", "CreateRecordingConfiguration"} {
			f.Add(op, []byte(seed), "tagKeys=a")
		}
	}
	f.Fuzz(func(t *testing.T, opName string, body []byte, rawQuery string) {
		op, ok := m.Operations[opName]
		if !ok {
			op = m.Operations["CreateChannel"]
		}
		q, _ := url.ParseQuery(rawQuery)
		out, err := m.BuildInput(op, body, map[string]string{"resourceArn": rawQuery}, q)
		if err == nil && !json.Valid(out) {
			t.Fatalf("valid input produced invalid JSON %q", out)
		}
		if err != nil && err.Code == "" {
			t.Fatal("error without a code")
		}
	})
}

func TestQuoteValueRendersListsAndMaps(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"abc", "'abc'"},
		{json.Number("7"), "'7'"},
		{[]any{"a", "b", json.Number("3")}, "'[a, b, 3]'"},
		{map[string]any{"b": "2", "a": "1"}, "'{a=1, b=2}'"},
		{[]any{map[string]any{"k": true}}, "'[{k=true}]'"},
		{nil, "of the wrong type"},
	} {
		if got := quoteValue(tc.in, false); got != tc.want {
			t.Errorf("quoteValue(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := quoteValue([]any{"secret"}, true); got != "'***'" {
		t.Errorf("sensitive list rendered %s", got)
	}
}
