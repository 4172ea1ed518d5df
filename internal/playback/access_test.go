package playback

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/clientip"
	"github.com/openivs/openivs/internal/geoip"
	"github.com/openivs/openivs/internal/geoip/geoiptest"
)

// fakeRules is the control plane: one channel's rules, changeable.
type fakeRules struct {
	mu    sync.Mutex
	rules map[string]*Rules
	loads int
}

func (f *fakeRules) PlaybackRules(_ context.Context, arn string) (*Rules, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	r, ok := f.rules[arn]
	if !ok {
		return nil, ErrNoChannel
	}
	copied := *r
	return &copied, nil
}

func (f *fakeRules) set(arn string, r *Rules) {
	f.mu.Lock()
	f.rules[arn] = r
	f.mu.Unlock()
}

// testKey is a playback key pair, its public half as Rules hold it.
func testKey(t testing.TB) (*ecdsa.PrivateKey, PublicKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, PublicKey{Key: &k.PublicKey, DER: string(der)}
}

func mint(t testing.TB, k *ecdsa.PrivateKey, c Claims) string {
	t.Helper()
	if c.ChannelARN == "" {
		c.ChannelARN = channelARN
	}
	if c.Exp == 0 {
		c.Exp = time.Now().Add(5 * time.Minute).Unix()
	}
	tok, err := SignToken(k, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// childURI finds the rendition URI of a multivariant playlist.
var childURI = regexp.MustCompile(`(?m)^(\S+/source/playlist\.m3u8)$`)

// privateSetup serves the live test channel as an authorized channel.
func privateSetup(t *testing.T) (*Handler, *fakeRules, *ecdsa.PrivateKey) {
	t.Helper()
	k, pub := testKey(t)
	src := &fakeRules{rules: map[string]*Rules{channelARN: {Authorized: true, Keys: []PublicKey{pub}}}}
	h := &Handler{Region: region, Streams: startLive(t), Viewers: NewViewers(), Rules: src}
	return h, src, k
}

// play fetches the multivariant playlist and returns the status and the
// child playlist's path (empty when refused).
func play(t *testing.T, h http.Handler, query string, header ...string) (int, string) {
	t.Helper()
	resp, body := get(t, h, streamPath+".m3u8"+query, header...)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	m := childURI.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("multivariant without the source rendition:\n%s", body)
	}
	return resp.StatusCode, Prefix + m[1]
}

func status(t *testing.T, h http.Handler, target string, header ...string) int {
	t.Helper()
	resp, _ := get(t, h, target, header...)
	return resp.StatusCode
}

func TestPrivateChannelNeedsAValidToken(t *testing.T) {
	h, _, k := privateSetup(t)
	other, _ := testKey(t)
	for name, query := range map[string]string{
		"no token":         "",
		"empty token":      "?token=",
		"garbage":          "?token=abc.def.ghi",
		"unimported key":   "?token=" + mint(t, other, Claims{}),
		"other channel":    "?token=" + mint(t, k, Claims{ChannelARN: "arn:aws:ivs:us-west-2:123456789012:channel/other"}),
		"expired":          "?token=" + mint(t, k, Claims{Exp: time.Now().Add(-time.Second).Unix()}),
		"exp milliseconds": "?token=" + mint(t, k, Claims{Exp: time.Now().Add(time.Minute).UnixMilli()}),
	} {
		resp, body := get(t, h, streamPath+".m3u8"+query)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/json" ||
			!strings.Contains(body, `"message":"Forbidden`) {
			t.Errorf("%s: %d %s, want 403 with the JSON error", name, resp.StatusCode, body)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("%s: the 403 is not readable cross-origin (players must tell it from a network error)", name)
		}
	}
	// A valid token plays, and its child URLs carry the session, not the token.
	tok := mint(t, k, Claims{})
	code, child := play(t, h, "?token="+tok)
	if code != http.StatusOK {
		t.Fatalf("valid token: %d", code)
	}
	if strings.Contains(child, tok) || strings.Contains(child, "token=") {
		t.Fatalf("the child URL carries the token: %s", child)
	}
	if c := status(t, h, child); c != http.StatusOK {
		t.Fatalf("child playlist with the session: %d", c)
	}
	// Its segments, relative to the playlist, inherit the session.
	_, playlist := get(t, h, child)
	seg := regexp.MustCompile(`(?m)^(seg\d+\.\w+)`).FindString(playlist)
	if seg == "" {
		t.Fatalf("no segment in\n%s", playlist)
	}
	base := child[:strings.LastIndex(child, "/")+1]
	if c := status(t, h, base+seg); c != http.StatusOK {
		t.Errorf("segment with the session: %d", c)
	}
	// Without, or with a forged session, child requests are refused.
	param := strings.Split(strings.TrimPrefix(child, streamPath+"/"), "/")[0]
	forged := []byte(param)
	forged[20] ^= 1
	for name, target := range map[string]string{
		"no session":        streamPath + "/source/playlist.m3u8",
		"no session, media": streamPath + "/source/" + seg,
		"forged session":    streamPath + "/" + string(forged) + "/source/playlist.m3u8",
		"garbage session":   streamPath + "/" + strings.Repeat("A", 3000) + "/source/" + seg,
	} {
		if c := status(t, h, target); c != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, c)
		}
	}
}

func TestTokenKeysFollowTheControlPlane(t *testing.T) {
	h, src, k := privateSetup(t)
	tok := mint(t, k, Claims{})
	if code, _ := play(t, h, "?token="+tok); code != http.StatusOK {
		t.Fatalf("valid token: %d", code)
	}
	// The key is deleted: its tokens, even cached as verified, stop working.
	src.set(channelARN, &Rules{Authorized: true})
	h.Invalidate("")
	if code, _ := play(t, h, "?token="+tok); code != http.StatusForbidden {
		t.Fatalf("token of a deleted key: %d, want 403", code)
	}
	// The channel is made public: no token needed.
	src.set(channelARN, &Rules{})
	h.Invalidate(channelARN)
	if code, _ := play(t, h, ""); code != http.StatusOK {
		t.Fatalf("public channel: %d", code)
	}
	// An unknown channel is 404, like an offline one.
	if c := status(t, h, Prefix+"us-west-2.123456789012.channel.nothere.m3u8"); c != http.StatusNotFound {
		t.Fatalf("unknown channel: %d", c)
	}
}

func TestMaximumResolutionHidesHigherRenditions(t *testing.T) {
	h, _, k := privateSetup(t)
	// The source is 1080p: FULL_HD lists it, HD and SD leave it out.
	code, child := play(t, h, "?token="+mint(t, k, Claims{MaximumResolution: "FULL_HD"}))
	if code != http.StatusOK {
		t.Fatalf("FULL_HD: %d", code)
	}
	if c := status(t, h, child); c != http.StatusOK {
		t.Fatalf("FULL_HD child: %d", c)
	}
	for _, res := range []string{"HD", "SD"} {
		resp, body := get(t, h, streamPath+".m3u8?allow_audio_only=true&token="+mint(t, k, Claims{MaximumResolution: res}))
		if resp.StatusCode != http.StatusOK || strings.Contains(body, "/source/") || !strings.Contains(body, "/audio_only/") {
			t.Fatalf("%s: %d\n%s\nwant only the audio-only rendition", res, resp.StatusCode, body)
		}
		// The hidden rendition cannot be fetched with that session either.
		m := regexp.MustCompile(`(?m)^(\S+)/audio_only/playlist\.m3u8$`).FindStringSubmatch(body)
		if c := status(t, h, Prefix+m[1]+"/source/playlist.m3u8"); c != http.StatusForbidden {
			t.Fatalf("%s session fetching the 1080p rendition: %d, want 403", res, c)
		}
		if c := status(t, h, Prefix+m[1]+"/audio_only/playlist.m3u8"); c != http.StatusOK {
			t.Fatalf("%s session fetching audio only: %d", res, c)
		}
	}
	// Nothing at all to play within SD (no audio-only asked for): refused.
	if code, _ := play(t, h, "?token="+mint(t, k, Claims{MaximumResolution: "SD"})); code != http.StatusForbidden {
		t.Fatalf("SD without any SD rendition: %d, want 403", code)
	}
}

func TestSingleUseToken(t *testing.T) {
	h, _, k := privateSetup(t)
	tok := mint(t, k, Claims{SingleUseUUID: "5f0c5d53-1c0a-4d6b-9a43-0e8f4c1b2a77"})
	code, child := play(t, h, "?token="+tok)
	if code != http.StatusOK {
		t.Fatalf("first use: %d", code)
	}
	if code, _ := play(t, h, "?token="+tok); code != http.StatusForbidden {
		t.Fatalf("replay: %d, want 403", code)
	}
	// The session it opened keeps playing.
	if c := status(t, h, child); c != http.StatusOK {
		t.Fatalf("the first viewer's session: %d", c)
	}
	// A token asked for an offline channel is not spent.
	h2, _, k2 := privateSetup(t)
	live := h2.Streams
	h2.Streams = &liveStreams{}
	tok2 := mint(t, k2, Claims{SingleUseUUID: "0d9d7b0e-8d0b-4f3e-9a5a-3b1f2f6c7d88"})
	if code, _ := play(t, h2, "?token="+tok2); code != http.StatusNotFound {
		t.Fatalf("offline: %d", code)
	}
	h2.Streams = live
	if code, _ := play(t, h2, "?token="+tok2); code != http.StatusOK {
		t.Fatalf("first use once live: %d", code)
	}
}

func TestRevocationStopsPlayingSessions(t *testing.T) {
	h, src, k := privateSetup(t)
	keyed := func(version int64) string {
		return "?token=" + mint(t, k, Claims{ViewerID: "viewer-7", ViewerSessionVersion: version})
	}
	code, child := play(t, h, keyed(5))
	if code != http.StatusOK {
		t.Fatalf("before revocation: %d", code)
	}
	_, other := play(t, h, "?token="+mint(t, k, Claims{ViewerID: "viewer-8"}))
	src.set(channelARN, &Rules{Authorized: true, Keys: src.rules[channelARN].Keys, Revoked: map[string]int64{"viewer-7": 5}})
	h.Invalidate(channelARN)
	if c := status(t, h, child); c != http.StatusForbidden {
		t.Fatalf("playing session after its revocation: %d, want 403", c)
	}
	if code, _ := play(t, h, keyed(5)); code != http.StatusForbidden {
		t.Fatalf("new playback with a revoked version: %d, want 403", code)
	}
	if code, _ := play(t, h, keyed(4)); code != http.StatusForbidden {
		t.Fatalf("new playback with a lower version: %d, want 403", code)
	}
	if code, _ := play(t, h, keyed(6)); code != http.StatusOK {
		t.Fatalf("a newer version: %d, want 200", code)
	}
	if c := status(t, h, other); c != http.StatusOK {
		t.Fatalf("another viewer: %d, want 200", c)
	}
}

func TestTokenOrigins(t *testing.T) {
	h, _, k := privateSetup(t)
	lax := "?token=" + mint(t, k, Claims{AllowOrigins: []string{"https://example.com", "https://*.example.net"}})
	strict := "?token=" + mint(t, k, Claims{AllowOrigins: []string{"https://*.example.net"}, StrictOrigin: true})
	cases := []struct {
		name, query, origin string
		want                int
	}{
		{"lax, allowed origin", lax, "https://example.com", 200},
		{"lax, wildcard origin", lax, "https://app.example.net", 200},
		{"lax, apex of a wildcard", lax, "https://example.net", 403},
		{"lax, other scheme", lax, "http://example.com", 403},
		{"lax, other origin", lax, "https://evil.example", 403},
		{"lax, no origin (not a browser)", lax, "", 200},
		{"strict, allowed", strict, "https://a.b.example.net", 200},
		{"strict, no origin", strict, "", 403},
		{"strict, other", strict, "https://example.com", 403},
	}
	for _, c := range cases {
		var hdr []string
		if c.origin != "" {
			hdr = []string{"Origin", c.origin}
		}
		resp, _ := get(t, h, streamPath+".m3u8"+c.query, hdr...)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want == 200 && c.origin != "" && resp.Header.Get("Access-Control-Allow-Origin") != c.origin {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want the origin", c.name, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	// Lax: child requests are not checked. Strict: every one must carry
	// the origin the session started with.
	_, child := play(t, h, lax, "Origin", "https://example.com")
	if c := status(t, h, child, "Origin", "https://evil.example"); c != http.StatusOK {
		t.Errorf("lax child from another origin: %d, want 200", c)
	}
	_, child = play(t, h, strict, "Origin", "https://app.example.net")
	for origin, want := range map[string]int{"https://app.example.net": 200, "": 403, "https://other.example.net": 403} {
		var hdr []string
		if origin != "" {
			hdr = []string{"Origin", origin}
		}
		if c := status(t, h, child, hdr...); c != want {
			t.Errorf("strict child with Origin %q: %d, want %d", origin, c, want)
		}
	}
}

func TestRestrictionPolicyOrigins(t *testing.T) {
	src := &fakeRules{rules: map[string]*Rules{channelARN: {Policy: &Policy{AllowedOrigins: []string{"https://*.example.com"}}}}}
	h := &Handler{Region: region, Streams: startLive(t), Viewers: NewViewers(), Rules: src}
	if code, _ := play(t, h, "", "Origin", "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("other origin: %d", code)
	}
	code, child := play(t, h, "", "Origin", "https://www.example.com")
	if code != http.StatusOK {
		t.Fatalf("allowed origin: %d", code)
	}
	if code, _ := play(t, h, ""); code != http.StatusOK {
		t.Errorf("no origin, not strict: %d", code)
	}
	if c := status(t, h, child, "Origin", "https://evil.example"); c != http.StatusOK {
		t.Errorf("not strict: a child from another origin is not checked: %d", c)
	}
	// Strict: every request, the rendition playlist included, needs it.
	src.set(channelARN, &Rules{Policy: &Policy{AllowedOrigins: []string{"https://*.example.com"}, StrictOrigin: true}})
	h.Invalidate(channelARN)
	if code, _ := play(t, h, ""); code != http.StatusForbidden {
		t.Errorf("strict, no origin: %d", code)
	}
	for origin, want := range map[string]int{"https://www.example.com": 200, "": 403, "https://evil.example": 403} {
		var hdr []string
		if origin != "" {
			hdr = []string{"Origin", origin}
		}
		if c := status(t, h, child, hdr...); c != want {
			t.Errorf("strict child with Origin %q: %d, want %d", origin, c, want)
		}
	}
}

// countryDB maps documentation networks to countries.
func countryDB(t *testing.T) *geoip.DB {
	t.Helper()
	db, err := geoip.Open(geoiptest.Write(t, map[string]string{
		"203.0.113.0/24": "FR", "198.51.100.0/24": "US", "2001:db8:1::/48": "JP",
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// from fetches target as if from peer, with X-Forwarded-For when xff != "".
func from(t *testing.T, h http.Handler, target, peer, xff string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = peer
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestRestrictionPolicyCountries(t *testing.T) {
	src := &fakeRules{rules: map[string]*Rules{channelARN: {Policy: &Policy{AllowedCountries: []string{"FR", "JP"}}}}}
	proxies, err := clientip.ParseTrusted([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Region: region, Streams: startLive(t), Viewers: NewViewers(), Rules: src, GeoIP: countryDB(t), ClientIP: proxies}
	mv := streamPath + ".m3u8"
	for _, c := range []struct {
		name, peer, xff string
		want            int
	}{
		{"allowed country", "203.0.113.9:5000", "", 200},
		{"allowed country, IPv6", "[2001:db8:1::5]:5000", "", 200},
		{"other country", "198.51.100.7:5000", "", 403},
		{"unknown country is allowed", "192.0.2.1:5000", "", 200},
		{"trusted proxy forwards an allowed viewer", "10.1.2.3:5000", "203.0.113.9", 200},
		{"trusted proxy forwards a refused viewer", "10.1.2.3:5000", "198.51.100.7", 403},
		{"chain of trusted proxies", "10.1.2.3:5000", "198.51.100.7, 10.9.9.9", 403},
		{"untrusted peer's X-Forwarded-For is ignored", "198.51.100.7:5000", "203.0.113.9", 403},
		{"untrusted peer cannot forge a refusal either", "203.0.113.9:5000", "198.51.100.7", 200},
	} {
		if got := from(t, h, mv, c.peer, c.xff); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// Countries apply to every request, not only the multivariant playlist.
	req := httptest.NewRequest(http.MethodGet, mv, nil)
	req.RemoteAddr = "203.0.113.9:5000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	child := Prefix + childURI.FindStringSubmatch(rec.Body.String())[1]
	if got := from(t, h, child, "198.51.100.7:5000", ""); got != http.StatusForbidden {
		t.Errorf("session URL used from a refused country: %d", got)
	}
	// Without a database every country is unknown, hence allowed.
	h2 := &Handler{Region: region, Streams: h.Streams, Rules: src}
	if got := from(t, h2, mv, "198.51.100.7:5000", ""); got != http.StatusOK {
		t.Errorf("no GeoIP database: %d, want 200", got)
	}
}

func TestOriginAllowed(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		origin   string
		want     bool
	}{
		{[]string{"*"}, "https://any.example", true},
		{[]string{"https://example.com"}, "https://example.com", true},
		{[]string{"https://example.com"}, "HTTPS://EXAMPLE.COM", true},
		{[]string{"https://example.com"}, "https://example.com:8443", false},
		{[]string{"https://example.com:8443"}, "https://example.com:8443", true},
		{[]string{"https://*.example.com"}, "https://a.example.com", true},
		{[]string{"https://*.example.com"}, "https://a.b.example.com", true},
		{[]string{"https://*.example.com"}, "https://example.com", false},
		{[]string{"https://*.example.com"}, "https://aexample.com", false},
		{[]string{"https://*.example.com"}, "http://a.example.com", false},
		{[]string{"https://*.example.com"}, "https://a.example.com.evil.net", false},
		{[]string{"https://*.example.com"}, "https://evil.net/.example.com", false},
		{[]string{"https://*.example.com"}, "https://user@a.example.com", false},
		{[]string{"https://*.example.com:8443"}, "https://a.example.com:8443", true},
		{[]string{"https://*.example.com:8443"}, "https://a.example.com", false},
		{nil, "https://example.com", false},
		{[]string{"https://example.com"}, "", false},
	} {
		if got := originAllowed(c.patterns, c.origin); got != c.want {
			t.Errorf("originAllowed(%q, %q) = %v, want %v", c.patterns, c.origin, got, c.want)
		}
	}
}

func TestSessionSigner(t *testing.T) {
	s := NewSessionSigner([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Now()
	in := Session{Expires: now.Add(time.Hour), StrictOrigin: true, OriginHash: hashOrigin("https://a.example"),
		ViewerID: "viewer-é-42", ViewerSessionVersion: -7, MaximumResolution: "HD"}
	param := s.Mint(channelARN, in)
	out, ok := s.Verify(channelARN, param, now)
	if !ok {
		t.Fatal("a minted session does not verify")
	}
	in.ID, in.Expires = out.ID, out.Expires
	if out != in {
		t.Fatalf("round trip: %+v, want %+v", out, in)
	}
	if len(param) > 120 {
		t.Errorf("session parameter of %d characters; keep URLs short", len(param))
	}
	if _, ok := s.Verify("arn:aws:ivs:us-west-2:123456789012:channel/other", param, now); ok {
		t.Error("a session verifies for another channel")
	}
	if _, ok := s.Verify(channelARN, param, now.Add(2*time.Hour)); ok {
		t.Error("an expired session verifies")
	}
	if _, ok := NewSessionSigner([]byte("another key, another cluster....")).Verify(channelARN, param, now); ok {
		t.Error("a session verifies with another key")
	}
	raw := []byte(param)
	for i := range raw {
		tampered := append([]byte(nil), raw...)
		tampered[i] = "AB"[min(1, int(tampered[i]-'A')&1)]
		if string(tampered) == param {
			tampered[i] = 'C'
		}
		if _, ok := s.Verify(channelARN, string(tampered), now); ok {
			t.Fatalf("a session changed at %d still verifies", i)
		}
	}
}

// FuzzSessionVerify: session parameters come from URLs; no input may
// panic or verify without the key.
func FuzzSessionVerify(f *testing.F) {
	s := NewSessionSigner([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Unix(1_800_000_000, 0)
	f.Add(s.Mint(channelARN, Session{Expires: now.Add(time.Hour)}))
	f.Add(s.Mint(channelARN, Session{Expires: now.Add(time.Hour), ViewerID: "v", StrictOrigin: true, MaximumResolution: "SD"}))
	f.Add("")
	f.Add("AQ")
	f.Add(strings.Repeat("_", 200))
	f.Fuzz(func(t *testing.T, param string) {
		sess, ok := s.Verify(channelARN, param, now)
		if ok && s.Mint(channelARN, sess) != param {
			t.Fatalf("%q verified but does not re-mint identically", param)
		}
	})
}

// BenchmarkMultivariantAuthorization: a private channel's multivariant
// request with a token not seen before (ES384 verification included),
// through to the playlist written. Target ≤ 1 ms. With three keys the
// signing key is the last imported; after the first token it is tried
// first.
func BenchmarkMultivariantAuthorization(b *testing.B) {
	for _, nkeys := range []int{1, 3} {
		b.Run(fmt.Sprintf("%d keys", nkeys), func(b *testing.B) {
			var keys []PublicKey
			var k *ecdsa.PrivateKey
			for range nkeys {
				var pub PublicKey
				k, pub = testKey(b)
				keys = append(keys, pub)
			}
			h := &Handler{Region: region, Streams: startLive(b), Viewers: NewViewers(),
				Rules: &fakeRules{rules: map[string]*Rules{channelARN: {Authorized: true, Keys: keys}}}}
			base := time.Now().Add(5 * time.Minute).Unix()
			tokens := make([]string, b.N)
			for i := range tokens {
				tokens[i] = mint(b, k, Claims{Exp: base + int64(i)}) // distinct: no cache hit
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, streamPath+".m3u8?token="+tokens[i], nil)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkChildAuthorization: the checks of a private channel's child
// request (signed session, revocation, strict origin, resolution).
// Target ≤ 5 µs.
func BenchmarkChildAuthorization(b *testing.B) {
	k, pub := testKey(b)
	live := startLive(b)
	rules := &Rules{Authorized: true, Keys: []PublicKey{pub}, Revoked: map[string]int64{"someone-else": 9}}
	h := &Handler{Region: region, Streams: live, Rules: &fakeRules{rules: map[string]*Rules{channelARN: rules}}}
	origin := "https://app.example.net"
	req := httptest.NewRequest(http.MethodGet, streamPath+".m3u8?token="+mint(b, k, Claims{
		ViewerID: "viewer-1", AllowOrigins: []string{"https://*.example.net"}, StrictOrigin: true, MaximumResolution: "FULL_HD",
	}), nil)
	req.Header.Set("Origin", origin)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	m := childURI.FindStringSubmatch(rec.Body.String())
	if m == nil {
		b.Fatalf("multivariant %d %s", rec.Code, rec.Body.String())
	}
	param := strings.Split(m[1], "/")[1]
	child := httptest.NewRequest(http.MethodGet, Prefix+m[1], nil)
	child.Header.Set("Origin", origin)
	variants, _ := live.Playback(channelARN)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok, why := h.authorizeChild(child, channelARN, rules, param, origin, &variants[0]); !ok || why != "" {
			b.Fatalf("refused: %s", why)
		}
	}
}

// TestRulesReloadAfterTTL: changes made on another node (no Invalidate
// here) reach playback within RulesTTL plus one request: stale rules are
// served while one background reload runs, and a source outage keeps the
// last rules.
func TestRulesReloadAfterTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := &fakeRules{rules: map[string]*Rules{channelARN: {}}}
	c := &rulesCache{source: src, now: clock}
	get := func() *Rules {
		r, err := c.get(context.Background(), channelARN)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if get().Authorized {
		t.Fatal("first load")
	}
	src.set(channelARN, &Rules{Authorized: true})
	if get().Authorized || src.loads != 1 {
		t.Fatalf("within the TTL the cached rules serve (loads %d)", src.loads)
	}
	mu.Lock()
	now = now.Add(RulesTTL + time.Millisecond)
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for !get().Authorized {
		if time.Now().After(deadline) {
			t.Fatal("the change never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	// The control plane fails: the last rules stay.
	src.mu.Lock()
	src.rules = nil
	src.mu.Unlock()
	failing := &failingRules{}
	c.source = failing
	mu.Lock()
	now = now.Add(2 * RulesTTL)
	mu.Unlock()
	for range 50 {
		if !get().Authorized {
			t.Fatal("a store outage dropped the channel's rules")
		}
		time.Sleep(time.Millisecond)
	}
	if failing.calls.Load() == 0 {
		t.Fatal("no reload was attempted")
	}
}

type failingRules struct{ calls atomic.Int64 }

func (f *failingRules) PlaybackRules(context.Context, string) (*Rules, error) {
	f.calls.Add(1)
	return nil, errors.New("store unreachable")
}

// TestLastVerifyingKeyFirst: with several keys, the one that verified
// the last new token is tried first (one ES384 verification per token).
func TestLastVerifyingKeyFirst(t *testing.T) {
	_, a := testKey(t)
	_, b := testKey(t)
	kc, c := testKey(t)
	h := &Handler{Region: region, Streams: startLive(t),
		Rules: &fakeRules{rules: map[string]*Rules{channelARN: {Authorized: true, Keys: []PublicKey{a, b, c}}}}}
	if code, _ := play(t, h, "?token="+mint(t, kc, Claims{})); code != http.StatusOK {
		t.Fatalf("token of the third key: %d", code)
	}
	if last := h.lastKey.Load(); last == nil || *last != c.DER {
		t.Fatal("the verifying key was not remembered")
	}
	// Its next token verifies with the keys reordered, and still only with it.
	v, err := h.verify(mint(t, kc, Claims{Exp: time.Now().Add(time.Minute).Unix()}), []PublicKey{a, b, c}, time.Now())
	if err != nil || v.Key != c.DER {
		t.Fatalf("second token: %v, %v", v, err)
	}
}

// TestRulesCacheIsBounded: requests for made-up channel ids do not grow
// the cache without bound.
func TestRulesCacheIsBounded(t *testing.T) {
	c := &rulesCache{source: &fakeRules{rules: map[string]*Rules{}}, now: time.Now}
	for i := range maxRulesEntries + 100 {
		if _, err := c.get(context.Background(), fmt.Sprintf("arn:aws:ivs:us-west-2:1:channel/%d", i)); err != ErrNoChannel {
			t.Fatalf("unknown channel: %v", err)
		}
	}
	if n := c.size.Load(); n > maxRulesEntries || n <= 0 {
		t.Fatalf("%d entries, want at most %d", n, maxRulesEntries)
	}
}
