package chat

import (
	"strings"
	"testing"
)

func TestParseARN(t *testing.T) {
	cases := []struct {
		in   string
		want ARN
		ok   bool
	}{
		{"arn:aws:ivschat:us-west-2:123456789012:room/abcDEF123456", ARN{"us-west-2", "123456789012", "room", "abcDEF123456"}, true},
		{"arn:aws:ivschat:eu-west-1:1:logging-configuration/x", ARN{"eu-west-1", "1", "logging-configuration", "x"}, true},
		{"arn:aws:ivs:us-west-2:1:channel/x", ARN{}, false},
		{"arn:aws:ivschat:us-west-2:1:room", ARN{}, false},
		{"arn:aws:ivschat:us-west-2:1:room/", ARN{}, false},
		{"arn:aws:ivschat::1:room/x", ARN{}, false},
		{"", ARN{}, false},
	}
	for _, c := range cases {
		got, ok := parseARN(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseARN(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseARN(f *testing.F) {
	for _, s := range []string{"arn:aws:ivschat:us-west-2:123456789012:room/abcDEF123456", "arn:aws:ivschat:::/", "arn", "arn:aws:ivschat:r:a:k/i/j"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := parseARN(s)
		if !ok {
			return
		}
		// A parsed ARN rebuilds to the input.
		if got := "arn:aws:ivschat:" + a.Region + ":" + a.Account + ":" + a.Kind + "/" + a.ID; got != s {
			t.Fatalf("parseARN(%q) round trips to %q", s, got)
		}
	})
}

func TestOwnsARN(t *testing.T) {
	for arn, want := range map[string]bool{
		"arn:aws:ivschat:us-west-2:1:room/x":          true,
		"arn:aws:ivschat:us-west-2:1:whatever/x":      true, // ours to answer "not found"
		"not-an-arn":                                  true, // ours to answer "invalid"
		"arn:aws:ivs:us-west-2:1:channel/x":           false,
		"arn:aws:ivsrealtime:us-west-2:1:stage/x":     false,
		"arn:aws:lambda:us-west-2:1:function:handler": false,
	} {
		if got := ownsARN(arn); got != want {
			t.Errorf("ownsARN(%q) = %v", arn, got)
		}
	}
}

func TestRandomID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := randomID(12)
		if len(id) != 12 || strings.Trim(id, idAlphabet) != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
