package srt

import (
	"errors"
	"strings"
	"testing"
)

func TestParseStreamID(t *testing.T) {
	cases := []struct {
		in      string
		want    streamID
		wantErr error
	}{
		{"sk_us-west-2_abcd1234efgh5678ijkl", streamID{Key: "sk_us-west-2_abcd1234efgh5678ijkl"}, nil},
		{"#!::u=sk_k1,priority=7", streamID{Key: "sk_k1", Priority: 7, HasPriority: true}, nil},
		{"#!::priority=2147483647,u=sk_k1", streamID{Key: "sk_k1", Priority: 2147483647, HasPriority: true}, nil},
		{"#!::r=sk_k1,m=publish", streamID{Key: "sk_k1"}, nil},
		{"#!::u=sk_k1,r=live/other,m=publish,t=stream", streamID{Key: "sk_k1"}, nil},
		{"#!::u=sk_k1", streamID{Key: "sk_k1"}, nil},
		// Out-of-range priorities are the takeover rules' to refuse.
		{"#!::u=sk_k1,priority=0", streamID{Key: "sk_k1", Priority: 0, HasPriority: true}, nil},
		{"#!::u=sk_k1,m=request", streamID{}, errBadMode},
		{"#!::u=sk_k1,m=bidirectional", streamID{}, errBadMode},
		{"", streamID{}, errBadStreamID},
		{"#!::", streamID{}, errBadStreamID},
		{"#!::u=", streamID{}, errBadStreamID},
		{"#!::m=publish", streamID{}, errBadStreamID},
		{"#!::u=sk_k1,priority=x", streamID{}, errBadStreamID},
		{"#!::u=sk_k1,priority=99999999999999999999", streamID{}, errBadStreamID},
		{"#!::u=sk_k1,u=sk_k2", streamID{}, errBadStreamID},
		{"#!::u=sk_k1,,priority=1", streamID{}, errBadStreamID},
		{"#!::u=sk k1", streamID{}, errBadStreamID},
		{"sk_k1?priority=3", streamID{}, errBadStreamID},
		{"sk_k1\x00", streamID{}, errBadStreamID},
		{"../etc/passwd", streamID{}, errBadStreamID},
		{strings.Repeat("a", 513), streamID{}, errBadStreamID},
	}
	for _, tc := range cases {
		got, err := parseStreamID(tc.in)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("parseStreamID(%q) = %+v, %v; want %v", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseStreamID(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"sk_us-west-2_abcd", "#!::u=sk_k1,priority=7", "#!::r=k,m=publish", "#!::u=a,m=request", "#!::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseStreamID(s)
		if err != nil {
			if id != (streamID{}) {
				t.Fatalf("error %v with a non-zero result %+v", err, id)
			}
			return
		}
		if !validKey(id.Key) {
			t.Fatalf("accepted %q with invalid key %q", s, id.Key)
		}
		if !strings.Contains(s, id.Key) {
			t.Fatalf("key %q does not come from %q", id.Key, s)
		}
	})
}
