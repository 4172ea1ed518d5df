package ivs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestParseARN(t *testing.T) {
	cases := []struct {
		in   string
		want ARN
		ok   bool
	}{
		{"arn:aws:ivs:us-west-2:123456789012:channel/abcDEF123456", ARN{"us-west-2", "123456789012", "channel", "abcDEF123456"}, true},
		{"arn:aws:ivs:eu-west-1:1:stream-key/x", ARN{"eu-west-1", "1", "stream-key", "x"}, true},
		{"arn:aws:ivschat:us-west-2:1:room/x", ARN{}, false},
		{"arn:aws:ivs:us-west-2:1:channel", ARN{}, false},
		{"arn:aws:ivs:us-west-2:1:channel/", ARN{}, false},
		{"arn:aws:ivs::1:channel/x", ARN{}, false},
		{"", ARN{}, false},
		{"arn:aws:ivs:us-west-2:1:a/b:c", ARN{"us-west-2", "1", "a", "b:c"}, true},
	}
	for _, c := range cases {
		got, ok := parseARN(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("parseARN(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseARN(f *testing.F) {
	for _, s := range []string{"arn:aws:ivs:us-west-2:123456789012:channel/abcDEF123456", "arn:aws:ivs:::/", "arn", "arn:aws:ivs:r:a:k/i/j"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := parseARN(s)
		if !ok {
			return
		}
		// A parsed ARN rebuilds to the input.
		if got := "arn:aws:ivs:" + a.Region + ":" + a.Account + ":" + a.Kind + "/" + a.ID; got != s {
			t.Fatalf("parseARN(%q) round trips to %q", s, got)
		}
	})
}

func TestRandomID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := randomID(12)
		if len(id) != 12 || strings.Trim(id, idAlphabet) != "" {
			t.Fatalf("bad id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func pemPublicKey(t *testing.T, curve elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestParsePlaybackPublicKey(t *testing.T) {
	good := pemPublicKey(t, elliptic.P384())
	if _, der, err := parsePlaybackPublicKey(good); err != nil {
		t.Fatalf("P-384 key rejected: %v", err)
	} else if fp := fingerprint(der); len(fp) != 47 || strings.Count(fp, ":") != 15 {
		t.Fatalf("fingerprint %q", fp)
	}
	for name, bad := range map[string]string{
		"P-256":   pemPublicKey(t, elliptic.P256()),
		"garbage": "hello",
		"two":     good + good,
		"private": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
	} {
		if _, _, err := parsePlaybackPublicKey(bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestOriginAndCountryRules(t *testing.T) {
	for o, want := range map[string]bool{
		"https://example.com": true, "http://localhost:3000": true, "*": true,
		"example.com": false, "https://example.com/path": false, "ftp://x": false, "https://": false,
	} {
		if isOrigin(o) != want {
			t.Errorf("isOrigin(%q) != %v", o, want)
		}
	}
	for c, want := range map[string]bool{"US": true, "DE": true, "XX": false, "us": false, "D ": false, "USA": false, "": false} {
		if isISOCountry(c) != want {
			t.Errorf("isISOCountry(%q) != %v", c, want)
		}
	}
}
