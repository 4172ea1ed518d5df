package awsapi

import (
	"strings"
	"testing"
)

func TestParseARN(t *testing.T) {
	cases := []struct {
		service, in string
		want        ARN
		ok          bool
	}{
		{"ivs", "arn:aws:ivs:us-west-2:123456789012:channel/abcDEF123456", ARN{"us-west-2", "123456789012", "channel", "abcDEF123456"}, true},
		{"ivs", "arn:aws:ivs:eu-west-1:1:stream-key/x", ARN{"eu-west-1", "1", "stream-key", "x"}, true},
		{"ivs", "arn:aws:ivs:us-west-2:1:a/b:c", ARN{"us-west-2", "1", "a", "b:c"}, true},
		{"ivs", "arn:aws:ivschat:us-west-2:1:room/x", ARN{}, false},
		{"ivschat", "arn:aws:ivschat:us-west-2:123456789012:room/abcDEF123456", ARN{"us-west-2", "123456789012", "room", "abcDEF123456"}, true},
		{"ivschat", "arn:aws:ivschat:eu-west-1:1:logging-configuration/x", ARN{"eu-west-1", "1", "logging-configuration", "x"}, true},
		{"ivschat", "arn:aws:ivs:us-west-2:1:channel/x", ARN{}, false},
		{"ivschat", "arn:aws-cn:ivschat:cn-north-1:1:room/x", ARN{}, false},
		{"ivschat", "arn:aws:ivschat:us-west-2:1:room", ARN{}, false},
		{"ivschat", "arn:aws:ivschat:us-west-2:1:room/", ARN{}, false},
		{"ivschat", "arn:aws:ivschat:us-west-2:1:/x", ARN{}, false},
		{"ivschat", "arn:aws:ivschat::1:room/x", ARN{}, false},
		{"ivschat", "arn:aws:ivschat:us-west-2::room/x", ARN{}, false},
		{"ivschat", "", ARN{}, false},
	}
	for _, c := range cases {
		got, ok := ParseARN(c.service, c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseARN(%q, %q) = %+v, %v; want %+v, %v", c.service, c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseARN(f *testing.F) {
	for _, s := range []string{"arn:aws:ivs:us-west-2:123456789012:channel/abcDEF123456",
		"arn:aws:ivschat:us-west-2:123456789012:room/abcDEF123456", "arn:aws:ivs:::/", "arn", "arn:aws:ivschat:r:a:k/i/j"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, service := range []string{"ivs", "ivschat"} {
			a, ok := ParseARN(service, s)
			if !ok {
				continue
			}
			// A parsed ARN rebuilds to the input.
			r := Resources{Service: service, Region: a.Region}
			if got := r.ARN(a.Account, a.Kind, a.ID); got != s {
				t.Fatalf("ParseARN(%q, %q) round trips to %q", service, s, got)
			}
		}
	})
}

func TestRandomID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := RandomID(12)
		if len(id) != 12 || strings.Trim(id, idAlphabet) != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	if id := RandomID(41); len(id) != 41 {
		t.Fatalf("RandomID(41) = %q", id)
	}
}
