package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/openivs/openivs/internal/awsapi"
)

func mustRedactor(t *testing.T) *Redactor {
	t.Helper()
	r, err := NewRedactor()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRedaction checks the documents of the operations that carry secrets,
// as the services answer them.
func TestRedaction(t *testing.T) {
	r := mustRedactor(t)
	cases := []struct {
		api, op string
		dir     Direction
		in      string
		want    string // "" means null (nothing recorded)
	}{
		{"ivs", "CreateChannel", Output,
			`{"channel":{"arn":"arn:ch","name":"n","srt":{"endpoint":"h:9000","passphrase":"PASS"},"tags":{}},` +
				`"streamKey":{"arn":"arn:sk","channelArn":"arn:ch","value":"sk_us-west-2_SECRET","tags":{"team":"video"}}}`,
			`{"channel":{"arn":"arn:ch","name":"n","srt":{"endpoint":"h:9000","passphrase":"HIDDEN_DUE_TO_SECURITY_REASONS"},"tags":{}},` +
				`"streamKey":{"arn":"arn:sk","channelArn":"arn:ch","tags":{"team":"video"},"value":"HIDDEN_DUE_TO_SECURITY_REASONS"}}`},
		{"ivs", "CreateStreamKey", Output,
			`{"streamKey":{"arn":"arn:sk","channelArn":"arn:ch","value":"sk_SECRET"}}`,
			`{"streamKey":{"arn":"arn:sk","channelArn":"arn:ch","value":"HIDDEN_DUE_TO_SECURITY_REASONS"}}`},
		{"ivs", "GetStreamKey", Output,
			`{"streamKey":{"arn":"arn:sk","value":"sk_SECRET"}}`,
			`{"streamKey":{"arn":"arn:sk","value":"HIDDEN_DUE_TO_SECURITY_REASONS"}}`},
		{"ivs", "BatchGetStreamKey", Output,
			`{"streamKeys":[{"arn":"a1","value":"sk_1"},{"arn":"a2","value":"sk_2"}],"errors":[]}`,
			`{"errors":[],"streamKeys":[{"arn":"a1","value":"HIDDEN_DUE_TO_SECURITY_REASONS"},{"arn":"a2","value":"HIDDEN_DUE_TO_SECURITY_REASONS"}]}`},
		{"ivs", "ListStreamKeys", Output,
			`{"streamKeys":[{"arn":"a1","channelArn":"c","tags":{}}],"nextToken":"nt"}`,
			`{"nextToken":"nt","streamKeys":[{"arn":"a1","channelArn":"c","tags":{}}]}`},
		{"ivs", "GetChannel", Output,
			`{"channel":{"arn":"arn:ch","srt":{"endpoint":"h:9000","passphrase":"PASS"},"insecureIngest":false,"latencyMode":"LOW"}}`,
			`{"channel":{"arn":"arn:ch","insecureIngest":false,"latencyMode":"LOW","srt":{"endpoint":"h:9000","passphrase":"HIDDEN_DUE_TO_SECURITY_REASONS"}}}`},
		{"ivs", "BatchGetChannel", Output,
			`{"channels":[{"arn":"a","srt":{"passphrase":"P1"}}]}`,
			`{"channels":[{"arn":"a","srt":{"passphrase":"HIDDEN_DUE_TO_SECURITY_REASONS"}}]}`},
		{"ivs", "UpdateChannel", Output,
			`{"channel":{"arn":"a","srt":{"passphrase":"P1"}}}`,
			`{"channel":{"arn":"a","srt":{"passphrase":"HIDDEN_DUE_TO_SECURITY_REASONS"}}}`},
		{"ivs", "PutMetadata", Input,
			`{"channelArn":"arn:ch","metadata":"private payload"}`,
			`{"channelArn":"arn:ch","metadata":"HIDDEN_DUE_TO_SECURITY_REASONS"}`},
		{"ivs", "ImportPlaybackKeyPair", Input,
			`{"name":"k","publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"}`,
			`{"name":"k","publicKeyMaterial":"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"}`},
		{"ivs", "CreateChannel", Input, `{"name":"default","type":"STANDARD","tags":{"a":"b"}}`,
			`{"name":"default","tags":{"a":"b"},"type":"STANDARD"}`},
		{"ivs", "ListChannels", Input, `{}`, ``},
		{"ivs", "ListChannels", Input, ``, ``},
		{"ivs", "GetChannel", Input, `not json`, ``},
		{"ivschat", "CreateChatToken", Input,
			`{"roomIdentifier":"arn:room","userId":"alice","attributes":{"name":"Alice"},"capabilities":["SEND_MESSAGE"]}`,
			`{"attributes":"HIDDEN_DUE_TO_SECURITY_REASONS","capabilities":["SEND_MESSAGE"],"roomIdentifier":"arn:room","userId":"HIDDEN_DUE_TO_SECURITY_REASONS"}`},
		{"ivschat", "CreateChatToken", Output,
			`{"token":"chat-token","tokenExpirationTime":"2020-01-01T00:00:00Z","sessionExpirationTime":"2020-01-01T00:00:00Z"}`,
			`{"sessionExpirationTime":"2020-01-01T00:00:00Z","token":"HIDDEN_DUE_TO_SECURITY_REASONS","tokenExpirationTime":"2020-01-01T00:00:00Z"}`},
		{"ivsrealtime", "CreateParticipantToken", Output,
			`{"participantToken":{"participantId":"p","token":"eyJ...","userId":"u","expirationTime":"2020-01-01T00:00:00Z"}}`,
			`{"participantToken":{"expirationTime":"2020-01-01T00:00:00Z","participantId":"p","token":"HIDDEN_DUE_TO_SECURITY_REASONS","userId":"u"}}`},
		{"ivsrealtime", "CreateIngestConfiguration", Output,
			`{"ingestConfiguration":{"arn":"a","streamKey":"rt_SECRET","redundantIngestCredentials":[{"streamKey":"rt_2"}]}}`,
			`{"ingestConfiguration":{"arn":"a","redundantIngestCredentials":[{"streamKey":"HIDDEN_DUE_TO_SECURITY_REASONS"}],"streamKey":"HIDDEN_DUE_TO_SECURITY_REASONS"}}`},
		{"ivsrealtime", "ImportPublicKey", Input,
			`{"publicKeyMaterial":"-----BEGIN PUBLIC KEY-----","name":"pk"}`,
			`{"name":"pk","publicKeyMaterial":"-----BEGIN PUBLIC KEY-----"}`},
		// Name rules catch what no model marks: an unknown API or member.
		{"unknown", "Whatever", Output,
			`{"privateKey":"-----BEGIN EC PRIVATE KEY-----","nested":{"passphrase":"p","secretAccessKey":"s","token":"t","list":[{"password":"x"}]},"streamKey":{"value":"v"},"value":"kept"}`,
			`{"nested":{"list":[{"password":"HIDDEN_DUE_TO_SECURITY_REASONS"}],"passphrase":"HIDDEN_DUE_TO_SECURITY_REASONS","secretAccessKey":"HIDDEN_DUE_TO_SECURITY_REASONS","token":"HIDDEN_DUE_TO_SECURITY_REASONS"},"privateKey":"HIDDEN_DUE_TO_SECURITY_REASONS","streamKey":{"value":"HIDDEN_DUE_TO_SECURITY_REASONS"},"value":"kept"}`},
		// An extra member the model does not have, under a stream key.
		{"ivs", "GetStreamKey", Output,
			`{"streamKey":{"arn":"a","extra":{"value":"deep"}}}`,
			`{"streamKey":{"arn":"a","extra":{"value":"HIDDEN_DUE_TO_SECURITY_REASONS"}}}`},
		// Numbers pass through exactly; null members stay null.
		{"ivs", "CreateChannel", Output,
			`{"channel":{"arn":"a","big":12345678901234567890,"recordingConfigurationArn":null}}`,
			`{"channel":{"arn":"a","big":12345678901234567890,"recordingConfigurationArn":null}}`},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s.%s.%d", c.api, c.op, c.dir), func(t *testing.T) {
			got := r.Document(c.api, c.op, c.dir, []byte(c.in))
			if c.want == "" {
				if got != nil {
					t.Fatalf("got %s, want nil", got)
				}
				return
			}
			if string(got) != c.want {
				t.Fatalf("got\n %s\nwant\n %s", got, c.want)
			}
		})
	}
}

// TestRedactionCoversEveryModel builds a sample input and output document
// for every operation of the three models, a distinct value in every member,
// and checks that no value of a sensitive shape survives, and which other
// values the name rules hide besides.
func TestRedactionCoversEveryModel(t *testing.T) {
	r := mustRedactor(t)
	// Members the name rules hide although no model marks them sensitive:
	// kept short and deliberate.
	overRedacted := map[string]bool{}
	secrets := 0
	for api, m := range r.models {
		for name, op := range m.Operations {
			for _, dir := range []Direction{Input, Output} {
				ref := op.Input
				if dir == Output {
					ref = op.Output
				}
				if ref == nil {
					continue
				}
				doc := sample(m, m.Shapes[ref.Shape], ref.Shape, 0)
				raw, _ := json.Marshal(doc)
				secrets += strings.Count(string(raw), "SECRET")
				out := r.Document(api, name, dir, raw)
				if strings.Contains(string(out), "SECRET") {
					t.Errorf("%s %s (%v): a sensitive value survived:\n%s", api, name, dir, out)
				}
				for _, leaf := range leaves(raw) {
					if !strings.HasPrefix(leaf, "SECRET") && !strings.Contains(string(out), `"`+leaf+`"`) {
						member := leaf[strings.LastIndex(leaf, ".")+1:]
						overRedacted[member] = true
					}
				}
			}
		}
	}
	var names []string
	for n := range overRedacted {
		names = append(names, n)
	}
	sort.Strings(names)
	// The models mark every secret the name rules know of: nothing else
	// is hidden.
	if len(names) > 0 {
		t.Errorf("non-sensitive members hidden by the name rules: %v", names)
	}
	// Stream key values (4 operations), SRT passphrases (5), PutMetadata,
	// chat tokens, user IDs and attributes, participant tokens, ingest
	// stream keys: the samples must have reached them.
	if secrets < 15 {
		t.Errorf("only %d sensitive values in the samples: the walk misses shapes", secrets)
	}
	t.Logf("%d sensitive values hidden", secrets)
}

// sample makes a document for shape with every member set; strings are
// their member path, prefixed SECRET when the shape is sensitive.
func sample(m *awsapi.Model, s *awsapi.Shape, path string, depth int) any {
	if s == nil || depth > 8 {
		return nil
	}
	secret := ""
	if s.Sensitive {
		secret = "SECRET"
	}
	switch s.Type {
	case "structure":
		obj := map[string]any{}
		for name, ref := range s.Members {
			if ref.Location != "" && ref.Location != "uri" && ref.Location != "querystring" {
				continue // headers are not in the document
			}
			sub := m.Shapes[ref.Shape]
			v := sample(m, sub, path+"."+name, depth+1)
			if v == nil {
				continue
			}
			if secret != "" {
				if str, ok := v.(string); ok {
					v = secret + str
				}
			}
			obj[name] = v
		}
		return obj
	case "list":
		v := sample(m, m.Shapes[s.Member.Shape], path, depth+1)
		if str, ok := v.(string); ok && secret != "" {
			v = secret + str
		}
		return []any{v}
	case "map":
		v := sample(m, m.Shapes[s.Value.Shape], path+".mapvalue", depth+1)
		if str, ok := v.(string); ok && secret != "" {
			v = secret + str
		}
		return map[string]any{"k": v}
	case "string":
		if len(s.Enum) > 0 {
			return s.Enum[0]
		}
		return secret + path
	case "integer", "long":
		return 1
	case "float", "double":
		return 1.5
	case "boolean":
		return true
	case "timestamp":
		return "2020-01-01T00:00:00Z"
	case "blob":
		return secret + "blob"
	}
	return nil
}

// leaves lists the string leaves of a JSON document that are member paths.
func leaves(raw []byte) []string {
	var doc any
	_ = json.Unmarshal(raw, &doc)
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for _, x := range t {
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		case string:
			if strings.Contains(t, ".") && !strings.Contains(t, ":") {
				out = append(out, t)
			}
		}
	}
	walk(doc)
	return out
}

// FuzzRedactDocument: any document comes out as valid JSON (or nil) with
// no secret-named member left readable, and redacting twice changes
// nothing.
func FuzzRedactDocument(f *testing.F) {
	f.Add("ivs", "CreateChannel", `{"channel":{"srt":{"passphrase":"p"}},"streamKey":{"value":"v"}}`)
	f.Add("ivschat", "CreateChatToken", `{"token":"t","attributes":{"a":"b"}}`)
	f.Add("ivsrealtime", "CreateIngestConfiguration", `{"ingestConfiguration":{"streamKey":"k"}}`)
	f.Add("x", "y", `[{"token":1},{"Password":{"a":[1,2]}}]`)
	f.Add("ivs", "ListChannels", `{}`)
	r, err := NewRedactor()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, api, op, doc string) {
		for _, dir := range []Direction{Input, Output} {
			out := r.Document(api, op, dir, []byte(doc))
			if out == nil {
				continue
			}
			var v any
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("output %q is not JSON: %v", out, err)
			}
			var check func(v any)
			check = func(v any) {
				switch x := v.(type) {
				case map[string]any:
					for k, val := range x {
						if val != nil && secretByName(k, val, false) && val != Hidden {
							t.Fatalf("%s left readable in %s", k, out)
						}
						check(val)
					}
				case []any:
					for _, e := range x {
						check(e)
					}
				}
			}
			check(v)
			if again := r.Document(api, op, dir, out); string(again) != string(out) {
				t.Fatalf("not idempotent:\n%s\n%s", out, again)
			}
		}
	})
}
