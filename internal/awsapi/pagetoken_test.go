package awsapi

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

// pageTokenPattern is the IVS PaginationToken pattern.
var pageTokenPattern = regexp.MustCompile(`^[a-zA-Z0-9+/=_-]*$`)

func TestPageTokenRoundTrip(t *testing.T) {
	p := NewPageTokens([]byte("k"))
	for _, cursor := range []int64{0, 1, 42, 1 << 40, math.MaxInt64, -1, math.MinInt64} {
		for _, scope := range []string{"", "123456789012\x00ivs\x00ListChannels\x00", "acct\x00op\x00filter=name:x"} {
			tok := p.Encode(scope, cursor)
			if !pageTokenPattern.MatchString(tok) || len(tok) == 0 || len(tok) > 1024 {
				t.Fatalf("token %q does not fit the PaginationToken pattern", tok)
			}
			got, err := p.Decode(scope, tok)
			if err != nil || got != cursor {
				t.Fatalf("Decode(Encode(%q, %d)) = %d, %v", scope, cursor, got, err)
			}
			if strings.Contains(tok, scope) && scope != "" {
				t.Fatalf("token %q embeds its scope", tok)
			}
		}
	}
}

func TestPageTokenRejects(t *testing.T) {
	p := NewPageTokens([]byte("secret"))
	const scope = "123456789012\x00ivs\x00ListChannels\x00"
	tok := p.Encode(scope, 100)

	wrong := []struct{ name, scope, token string }{
		{"other operation", "123456789012\x00ivs\x00ListStreamKeys\x00", tok},
		{"other account", "210987654321\x00ivs\x00ListChannels\x00", tok},
		{"other filters", scope + "x", tok},
		// The length prefix keeps scope and cursor from sliding into each
		// other.
		{"scope prefix", scope[:len(scope)-1], tok},
		{"empty", scope, ""},
		{"garbage", scope, "not a token"},
		{"too long", scope, strings.Repeat("A", 2000)},
		{"padded", scope, tok + "=="},
		{"std alphabet", scope, strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+"},
		{"truncated", scope, tok[:len(tok)-1]},
		{"extended", scope, tok + "A"},
		{"made with another secret", scope, NewPageTokens([]byte("other")).Encode(scope, 100)},
		{"random-key instance", scope, NewPageTokens(nil).Encode(scope, 100)},
	}
	for _, tc := range wrong {
		if c, err := p.Decode(tc.scope, tc.token); err == nil {
			t.Errorf("%s: Decode accepted %q as cursor %d", tc.name, tc.token, c)
		}
	}

	// Every single-character change is caught.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, c := range alphabet {
			if byte(c) == tok[i] {
				continue
			}
			tampered := tok[:i] + string(c) + tok[i+1:]
			if cur, err := p.Decode(scope, tampered); err == nil {
				t.Fatalf("tampered token %q (position %d) accepted as cursor %d", tampered, i, cur)
			}
		}
	}
}

func TestPageTokenSecretIsCopied(t *testing.T) {
	secret := []byte("secret")
	p := NewPageTokens(secret)
	tok := p.Encode("s", 7)
	secret[0] = 'X'
	if c, err := p.Decode("s", tok); err != nil || c != 7 {
		t.Fatalf("changing the caller's slice broke decoding: %d, %v", c, err)
	}
}

func FuzzPageTokenDecode(f *testing.F) {
	p := NewPageTokens([]byte("fuzz"))
	f.Add("scope", p.Encode("scope", 5))
	f.Add("scope", p.Encode("other", 5))
	f.Add("", "")
	f.Add("s", "AQAAAAAAAAAF")
	f.Add("s", "====")
	f.Add("s", strings.Repeat("_", 34))
	f.Fuzz(func(t *testing.T, scope, token string) {
		cur, err := p.Decode(scope, token)
		if err != nil {
			return
		}
		// A token that decodes is exactly the one Encode makes: no second
		// spelling of a valid token exists.
		if again := p.Encode(scope, cur); again != token {
			t.Fatalf("Decode(%q) = %d, but Encode gives %q", token, cur, again)
		}
	})
}
