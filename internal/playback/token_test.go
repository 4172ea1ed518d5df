package playback

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The keys are fixed rather than generated so that fuzz workers (separate
// processes) verify the seed tokens the coordinator signed.
var tokKeyPEMs = []string{`-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDCT9VLtwZZa2Y1LYdzJD44BFjq36XCNfO2an6H0tG8QUaQqxvQ2dxMr
wq6jc95j9Q+gBwYFK4EEACKhZANiAATcyHJY/i7nI36uymFAxpFgfedSX6yQFZJA
IyJINDiuKCpCRPUibgp0uvCLSCLo5iTYF1tNu2QvT+JsVZPGIoUfEY3QgVCysfZY
t2+LEgrZ7iMqzyRjFPVRD+CbIsQYH8M=
-----END EC PRIVATE KEY-----`, `-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDC/PiqGS6JOf/YZbjF5Vek96rKPnwvlSbCES6WRCQ6PLqTLb/OfLZwz
+5tlxgKYwBugBwYFK4EEACKhZANiAASm/Rp+EZd9GwJ998vLEpNeD5ccFixLD9CM
c1l1yBl16zejZUoDMRBQ+UpLXAOJCsS5yYnSYev0qcO5C5BtHfpOnilT0lfDaeGh
Ap3CDaq3YCM5Qmw5piSuqDbinFRTFic=
-----END EC PRIVATE KEY-----`, `-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDBamOvE8dX8qZq5p7H+Pqjg9G17Hasro7eyh5XjYd54Yt2O/Zlkhyiw
lzC1hV1tvXagBwYFK4EEACKhZANiAARIfwb8VwZ/8BVOhqWcSoQ0mT1QmHZdibFX
XpcLbkstI8fF3Dwo0TSvYns8w2nlv7tTITRGsjWsR8PNBQvAk5izEBLDQgc8Pr/7
BSES1Wrp+w2dJPDaTxHFrNSgkNl6kio=
-----END EC PRIVATE KEY-----`}

const tokARN = "arn:aws:ivs:us-west-2:123456789012:channel/abcdEFGH1234"

// tokNow is the fixed clock of these tests; tokens expire relative to it.
var tokNow = time.Unix(1_750_000_000, 0)

// tokExp is an exp n seconds after tokNow.
func tokExp(n int64) int64 { return tokNow.Unix() + n }

var tokKeys = sync.OnceValue(func() []*ecdsa.PrivateKey {
	var keys []*ecdsa.PrivateKey
	for _, p := range tokKeyPEMs {
		b, _ := pem.Decode([]byte(p))
		k, err := x509.ParseECPrivateKey(b.Bytes)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

// Keys that are not imported: another P-384 key, a P-256 key and an RSA
// key, generated once per process (only hostile tokens use them).
var (
	tokOtherKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		return k
	})
	tokP256Key = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	})
	tokRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		return k
	})
)

// tokPublic is the imported form of keys, as the API layer builds it.
func tokPublic(keys ...*ecdsa.PrivateKey) []PublicKey {
	var out []PublicKey
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			panic(err)
		}
		out = append(out, PublicKey{Key: &k.PublicKey, DER: string(der)})
	}
	return out
}

// tokPublicPEM is the public key as a customer imports it, which is also
// what a key-confusion attacker uses as an HMAC secret.
func tokPublicPEM(k *ecdsa.PrivateKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func tokSeg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// tokRawSig is the JWS ES384 signature of signing: r ‖ s, 48 bytes each.
// Keys on other curves are left-padded to the same width, so that only the
// key, not the length, makes them wrong.
func tokRawSig(k *ecdsa.PrivateKey, signing string) []byte {
	h := sha512.Sum384([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return sig
}

// tokBuild signs header and payload JSON as given, byte for byte.
func tokBuild(k *ecdsa.PrivateKey, header, payload string) string {
	signing := tokSeg(header) + "." + tokSeg(payload)
	return signing + "." + base64.RawURLEncoding.EncodeToString(tokRawSig(k, signing))
}

const tokHeader = `{"alg":"ES384","typ":"JWT"}`

// tokClaims is a payload with the channel, exp and extra members (each
// starting with a comma).
func tokClaims(exp int64, extra string) string {
	return fmt.Sprintf(`{"aws:channel-arn":%q,"exp":%d%s}`, tokARN, exp, extra)
}

// tokValid is a minimal valid token signed by the first key.
func tokValid() string { return tokBuild(tokKeys()[0], tokHeader, tokClaims(tokExp(300), "")) }

// tokSplit returns a token's three segments.
func tokSplit(tok string) (h, p, s string) {
	parts := strings.SplitN(tok, ".", 3)
	return parts[0], parts[1], parts[2]
}

// tokWithSig replaces a token's signature by sig.
func tokWithSig(tok string, sig []byte) string {
	h, p, _ := tokSplit(tok)
	return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tokPadded is a valid token, with a padding claim, whose length is n
// bytes; ok is false when base64 cannot produce exactly n.
func tokPadded(n int) (tok string, ok bool) {
	for pad := 0; pad < MaxTokenLen; pad++ {
		tok = tokBuild(tokKeys()[0], tokHeader, tokClaims(tokExp(300), `,"pad":"`+strings.Repeat("x", pad)+`"`))
		if len(tok) >= n {
			return tok, len(tok) == n
		}
	}
	return "", false
}

type tokCase struct {
	name  string
	token string
}

// tokHostile returns tokens VerifyToken must refuse with tokKeys() at
// tokNow. Most are signed with an imported key, so that the check under
// test, not the signature, is what refuses them.
func tokHostile() []tokCase {
	key := tokKeys()[0]
	good := tokClaims(tokExp(300), "")
	valid := tokValid()
	vh, vp, vs := tokSplit(valid)
	sig, _ := base64.RawURLEncoding.DecodeString(vs)
	signed := func(header, payload string) string { return tokBuild(key, header, payload) }
	mapClaims := jwt.MapClaims{ClaimChannelARN: tokARN, ClaimExp: tokExp(300)}

	var cases []tokCase
	add := func(name, token string) { cases = append(cases, tokCase{name, token}) }

	// Algorithm confusion.
	add("alg none, empty signature", tokSeg(`{"alg":"none","typ":"JWT"}`)+"."+tokSeg(good)+".")
	add("alg none, valid ES384 signature", signed(`{"alg":"none","typ":"JWT"}`, good))
	add("alg None", signed(`{"alg":"None"}`, good))
	add("alg es384 lowercase", signed(`{"alg":"es384"}`, good))
	add("alg missing", signed(`{"typ":"JWT"}`, good))
	add("alg not a string", signed(`{"alg":384}`, good))
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS384, mapClaims).SignedString(tokPublicPEM(key))
	if err != nil {
		panic(err)
	}
	add("HS384 keyed with the public key PEM", hs)
	{ // The same MAC under an ES384 header.
		_, p, s := tokSplit(hs)
		add("ES384 header, HS384 MAC", vh+"."+p+"."+s)
	}
	rs, err := jwt.NewWithClaims(jwt.SigningMethodRS256, mapClaims).SignedString(tokRSAKey())
	if err != nil {
		panic(err)
	}
	add("RS256", rs)
	es256, err := jwt.NewWithClaims(jwt.SigningMethodES256, mapClaims).SignedString(tokP256Key())
	if err != nil {
		panic(err)
	}
	add("ES256 with a P-256 key", es256)
	add("ES384 header, P-256 key", tokBuild(tokP256Key(), tokHeader, good))
	add("ES384 from a key not imported", tokBuild(tokOtherKey(), tokHeader, good))
	add("embedded jwk of the signer", tokBuild(tokOtherKey(),
		fmt.Sprintf(`{"alg":"ES384","jwk":{"kty":"EC","crv":"P-384","x":%q,"y":%q}}`,
			base64.RawURLEncoding.EncodeToString(tokOtherKey().X.Bytes()),
			base64.RawURLEncoding.EncodeToString(tokOtherKey().Y.Bytes())), good))
	add("header crit", signed(`{"alg":"ES384","typ":"JWT","crit":["exp"]}`, good))
	add("header typ JWS", signed(`{"alg":"ES384","typ":"JWS"}`, good))
	add("header not an object", signed(`["ES384"]`, good))
	add("duplicate alg, none last", signed(`{"alg":"ES384","alg":"none"}`, good))
	add("duplicate alg, none first", signed(`{"alg":"none","alg":"ES384"}`, good))

	// Times.
	add("expired", signed(tokHeader, tokClaims(tokExp(-1), "")))
	add("exp equals now", signed(tokHeader, tokClaims(tokExp(0), "")))
	add("exp in milliseconds", signed(tokHeader, tokClaims(tokNow.UnixMilli()+60000, "")))
	add("exp missing", signed(tokHeader, fmt.Sprintf(`{"aws:channel-arn":%q}`, tokARN)))
	for _, exp := range []string{`1.7e9`, `1.7e+10`, `1750000300.0`, `"1750000300"`, `null`, `true`, `17500003000000000000000`} {
		add("exp "+exp, signed(tokHeader, fmt.Sprintf(`{"aws:channel-arn":%q,"exp":%s}`, tokARN, exp)))
	}
	add("viewer id, exp 11 min ahead", signed(tokHeader, tokClaims(tokExp(660), `,"aws:viewer-id":"v1"`)))
	add("single use, exp 11 min ahead", signed(tokHeader,
		tokClaims(tokExp(660), `,"aws:single-use-uuid":"6c4d8a9e-3f0b-4b8e-9d3e-2f8a1c5b7e90"`)))

	// Size and form.
	if tok, _ := tokPadded(MaxTokenLen + 1); tok != "" {
		add("oversize", tok)
	}
	add("empty", "")
	add("one segment", vh)
	add("signature segment dropped", vh+"."+vp)
	add("signature segment empty", vh+"."+vp+".")
	add("truncated by 1", valid[:len(valid)-1])
	add("truncated by 2", valid[:len(valid)-2])
	add("truncated by 4", valid[:len(valid)-4])
	add("extra segment", valid+"."+vs)
	add("extra empty segment", valid+".")
	add("signature padded", valid+"==")
	{ // Every segment in padded base64url, signed as sent.
		payload := good
		for len(payload)%3 == 0 {
			payload = payload[:len(payload)-1] + " }"
		}
		signing := tokSeg(tokHeader) + "." + base64.URLEncoding.EncodeToString([]byte(payload))
		add("padded payload", signing+"."+base64.RawURLEncoding.EncodeToString(tokRawSig(key, signing)))
	}
	add("standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(valid)+"+/")
	add("leading space", " "+valid)
	add("trailing newline in header", vh+"\n."+vp+"."+vs)

	// Payload JSON.
	add("duplicate channel arn", signed(tokHeader, fmt.Sprintf(
		`{"aws:channel-arn":%q,"aws:channel-arn":"arn:aws:ivs:us-west-2:123456789012:channel/other","exp":%d}`, tokARN, tokExp(300))))
	add("duplicate channel arn, escaped", signed(tokHeader, fmt.Sprintf(
		`{"aws:channel-arn":%q,"aws:channel\u002darn":"arn:aws:ivs:us-west-2:123456789012:channel/other","exp":%d}`, tokARN, tokExp(300))))
	add("duplicate exp", signed(tokHeader, tokClaims(tokExp(300), fmt.Sprintf(`,"exp":%d`, tokExp(-300)))))
	add("payload not JSON", signed(tokHeader, `not json`))
	add("payload array", signed(tokHeader, `[1,2]`))
	add("payload null", signed(tokHeader, `null`))
	add("payload trailing object", signed(tokHeader, good+`{}`))
	add("payload trailing comma", signed(tokHeader, good[:len(good)-1]+`,}`))
	add("payload invalid UTF-8", signed(tokHeader, tokClaims(tokExp(300), `,"x":"`+"\xff"+`"`)))
	add("payload empty", signed(tokHeader, ``))

	// Claims.
	add("channel arn missing", signed(tokHeader, fmt.Sprintf(`{"exp":%d}`, tokExp(300))))
	add("channel arn empty", signed(tokHeader, fmt.Sprintf(`{"aws:channel-arn":"","exp":%d}`, tokExp(300))))
	add("channel arn number", signed(tokHeader, fmt.Sprintf(`{"aws:channel-arn":1,"exp":%d}`, tokExp(300))))
	add("viewer id of 41 chars", signed(tokHeader, tokClaims(tokExp(300), `,"aws:viewer-id":"`+strings.Repeat("v", 41)+`"`)))
	add("viewer id of 41 runes", signed(tokHeader, tokClaims(tokExp(300), `,"aws:viewer-id":"`+strings.Repeat("é", 41)+`"`)))
	add("viewer id number", signed(tokHeader, tokClaims(tokExp(300), `,"aws:viewer-id":7`)))
	add("viewer session version float", signed(tokHeader, tokClaims(tokExp(300), `,"aws:viewer-id":"v","aws:viewer-session-version":1.5`)))
	add("viewer session version overflow", signed(tokHeader, tokClaims(tokExp(300), `,"aws:viewer-id":"v","aws:viewer-session-version":9223372036854775808`)))
	add("viewer session version word", signed(tokHeader, tokClaims(tokExp(300), `,"aws:viewer-id":"v","aws:viewer-session-version":"one"`)))
	add("maximum resolution 4K", signed(tokHeader, tokClaims(tokExp(300), `,"aws:maximum-resolution":"4K"`)))
	add("maximum resolution lowercase", signed(tokHeader, tokClaims(tokExp(300), `,"aws:maximum-resolution":"hd"`)))
	add("strict origin with 6 origins", signed(tokHeader, tokClaims(tokExp(300),
		`,"aws:strict-origin-enforcement":true,"aws:access-control-allow-origin":"https://a.example,https://b.example,https://c.example,https://d.example,https://e.example,https://f.example"`)))
	add("strict origin a string", signed(tokHeader, tokClaims(tokExp(300),
		`,"aws:strict-origin-enforcement":"true","aws:access-control-allow-origin":"https://a.example"`)))
	add("allow origin a list", signed(tokHeader, tokClaims(tokExp(300), `,"aws:access-control-allow-origin":["https://a.example"]`)))

	// Signatures.
	add("signature 95 bytes", tokWithSig(valid, sig[:95]))
	add("signature 97 bytes", tokWithSig(valid, append(append([]byte{}, sig...), 0)))
	add("signature 64 bytes", tokWithSig(valid, sig[:64]))
	{
		h := sha512.Sum384([]byte(vh + "." + vp))
		der, _ := ecdsa.SignASN1(rand.Reader, key, h[:])
		add("signature ASN.1 DER", tokWithSig(valid, der))
	}
	add("signature r and s swapped", tokWithSig(valid, append(append([]byte{}, sig[48:]...), sig[:48]...)))
	add("signature all zero", tokWithSig(valid, make([]byte, 96))) // CVE-2022-21449
	{
		n := make([]byte, 96)
		elliptic.P384().Params().N.FillBytes(n[:48])
		elliptic.P384().Params().N.FillBytes(n[48:])
		add("signature r = s = N", tokWithSig(valid, n))
	}
	{
		flipped := append([]byte{}, sig...)
		flipped[95] ^= 1
		add("signature bit flipped", tokWithSig(valid, flipped))
	}
	add("payload changed after signing", vh+"."+tokSeg(fmt.Sprintf(
		`{"aws:channel-arn":"arn:aws:ivs:us-west-2:123456789012:channel/other","exp":%d}`, tokExp(300)))+"."+vs)
	add("exp extended after signing", vh+"."+tokSeg(tokClaims(tokExp(3000), ""))+"."+vs)
	add("header changed after signing", tokSeg(`{"alg":"ES384"}`)+"."+vp+"."+vs)
	return cases
}

func TestVerifyTokenRejectsHostileTokens(t *testing.T) {
	keys := tokPublic(tokKeys()...)
	for _, c := range tokHostile() {
		t.Run(c.name, func(t *testing.T) {
			v, err := VerifyToken(c.token, keys, tokNow)
			if err == nil {
				t.Fatalf("accepted %q: %+v", c.token, v.Claims)
			}
			if v != nil {
				t.Errorf("returned claims with the error %v", err)
			}
			if !errors.Is(err, errToken) {
				t.Errorf("error %v does not wrap errToken", err)
			}
		})
	}
}

// The hostile table must not pass merely because a fixture is broken:
// the same tokens from the builders, left intact, verify.
func TestTokenFixturesAreValid(t *testing.T) {
	keys := tokPublic(tokKeys()...)
	if _, err := VerifyToken(tokValid(), keys, tokNow); err != nil {
		t.Fatalf("tokValid: %v", err)
	}
	tok, exact := tokPadded(MaxTokenLen)
	if !exact {
		t.Fatalf("cannot build a token of exactly %d bytes (got %d)", MaxTokenLen, len(tok))
	}
	if _, err := VerifyToken(tok, keys, tokNow); err != nil {
		t.Errorf("token of exactly %d bytes: %v", MaxTokenLen, err)
	}
	if over, _ := tokPadded(MaxTokenLen + 1); len(over) <= MaxTokenLen {
		t.Errorf("oversize fixture is %d bytes", len(over))
	}
}

func TestVerifyTokenAccepts(t *testing.T) {
	keys := tokKeys()
	pub := tokPublic(keys...)
	signed := func(payload string) string { return tokBuild(keys[0], tokHeader, payload) }
	mint := func(c Claims) string {
		tok, err := SignToken(keys[0], c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	const uuid = "6c4d8a9e-3f0b-4b8e-9d3e-2f8a1c5b7e90"
	all := Claims{
		ChannelARN:           tokARN,
		Exp:                  tokExp(600), // the longest a viewer-bound token may live
		AllowOrigins:         []string{"https://a.example", "https://b.example"},
		StrictOrigin:         true,
		SingleUseUUID:        uuid,
		ViewerID:             "viewer-42",
		ViewerSessionVersion: 7,
		MaximumResolution:    "HD",
	}
	cases := []struct {
		name  string
		token string
		want  Claims
		key   int // index of the verifying key
	}{
		{name: "minimal, header without typ", token: tokBuild(keys[0], `{"alg":"ES384"}`, tokClaims(tokExp(1), "")),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(1)}},
		{name: "minimal, SignToken", token: mint(Claims{ChannelARN: tokARN, Exp: tokExp(300)}),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300)}},
		{name: "all claims", token: mint(all), want: all},
		{name: "all claims by hand", token: signed(tokClaims(tokExp(600),
			`,"aws:access-control-allow-origin":"https://a.example, https://b.example,","aws:strict-origin-enforcement":true,`+
				`"aws:single-use-uuid":"`+uuid+`","aws:viewer-id":"viewer-42","aws:viewer-session-version":7,"aws:maximum-resolution":"HD"`)),
			want: all},
		{name: "viewer session version quoted", token: signed(tokClaims(tokExp(300), `,"aws:viewer-id":"v","aws:viewer-session-version":"42"`)),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300), ViewerID: "v", ViewerSessionVersion: 42}},
		{name: "viewer session version negative", token: signed(tokClaims(tokExp(300), `,"aws:viewer-id":"v","aws:viewer-session-version":-1`)),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300), ViewerID: "v", ViewerSessionVersion: -1}},
		{name: "viewer id of 40 runes", token: signed(tokClaims(tokExp(300), `,"aws:viewer-id":"`+strings.Repeat("é", 40)+`"`)),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300), ViewerID: strings.Repeat("é", 40)}},
		{name: "strict origin with 5 origins", token: signed(tokClaims(tokExp(300),
			`,"aws:strict-origin-enforcement":true,"aws:access-control-allow-origin":"https://a.example,https://b.example,https://c.example,https://d.example,https://e.example"`)),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300), StrictOrigin: true,
				AllowOrigins: []string{"https://a.example", "https://b.example", "https://c.example", "https://d.example", "https://e.example"}}},
		{name: "unknown claims and null optionals", token: signed(tokClaims(tokExp(300),
			`,"iat":1,"nbf":1,"sub":"x","aws:viewer-id":null,"aws:maximum-resolution":null`)),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300)}},
		{name: "pretty-printed JSON", token: tokBuild(keys[0], "{\"alg\": \"ES384\", \"typ\": \"JWT\"}",
			fmt.Sprintf("{\n  \"aws:channel-arn\": %q,\n  \"exp\": %d\n}\n", tokARN, tokExp(300))),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300)}},
		{name: "kid and lowercase typ", token: tokBuild(keys[0], `{"typ":"jwt","kid":"k1","alg":"ES384"}`, tokClaims(tokExp(300), "")),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300)}},
		{name: "third key", token: tokBuild(keys[2], tokHeader, tokClaims(tokExp(300), "")),
			want: Claims{ChannelARN: tokARN, Exp: tokExp(300)}, key: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := VerifyToken(c.token, pub, tokNow)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.Claims, c.want) {
				t.Errorf("claims\n got %+v\nwant %+v", v.Claims, c.want)
			}
			if v.Key != pub[c.key].DER {
				t.Errorf("verified by the wrong key")
			}
		})
	}
}

func TestVerifyTokenKeySet(t *testing.T) {
	keys := tokKeys()
	tok := tokBuild(keys[2], tokHeader, tokClaims(tokExp(300), ""))
	if _, err := VerifyToken(tok, tokPublic(keys[0], keys[1]), tokNow); err == nil {
		t.Error("verified without the signing key")
	}
	if _, err := VerifyToken(tok, nil, tokNow); err == nil {
		t.Error("verified with no keys")
	}
	v, err := VerifyToken(tok, tokPublic(keys[0], keys[1], keys[2]), tokNow)
	if err != nil {
		t.Fatal(err)
	}
	if v.Key != tokPublic(keys[2])[0].DER {
		t.Error("Key is not the signer's DER")
	}
}

func TestTokenMaxHeight(t *testing.T) {
	pub := tokPublic(tokKeys()...)
	for res, want := range map[string]int{"": 0, "SD": 480, "HD": 720, "FULL_HD": 1080} {
		tok, err := SignToken(tokKeys()[1], Claims{ChannelARN: tokARN, Exp: tokExp(60), MaximumResolution: res})
		if err != nil {
			t.Fatal(err)
		}
		v, err := VerifyToken(tok, pub, tokNow)
		if err != nil {
			t.Fatalf("%q: %v", res, err)
		}
		if got := v.MaxHeight(); got != want {
			t.Errorf("MaxHeight(%q) = %d, want %d", res, got, want)
		}
	}
}

// A short-lived token may end exactly 10 minutes ahead, and not later;
// without a viewer id or single use, exp has no upper bound.
func TestVerifyTokenShortLivedBoundary(t *testing.T) {
	pub := tokPublic(tokKeys()...)
	for _, c := range []struct {
		ahead int64
		extra string
		ok    bool
	}{
		{600, `,"aws:viewer-id":"v"`, true},
		{602, `,"aws:viewer-id":"v"`, false},
		{600, `,"aws:single-use-uuid":"u"`, true},
		{602, `,"aws:single-use-uuid":"u"`, false},
		{86400 * 365, ``, true},
	} {
		tok := tokBuild(tokKeys()[0], tokHeader, tokClaims(tokExp(c.ahead), c.extra))
		if _, err := VerifyToken(tok, pub, tokNow); (err == nil) != c.ok {
			t.Errorf("exp now+%ds%s: err = %v, want ok=%v", c.ahead, c.extra, err, c.ok)
		}
	}
}

// TestVerifyTokenRejectsNewlineInSignature: base64's Strict mode still
// skips CR and LF, so newlines inside the signature segment (outside the
// signed bytes) would leave the token valid, and many strings would verify
// as the same token, defeating caches keyed by tokenDigest.
func TestVerifyTokenRejectsNewlineInSignature(t *testing.T) {
	pub := tokPublic(tokKeys()...)
	valid := tokValid()
	for _, tok := range []string{valid[:len(valid)-10] + "\n" + valid[len(valid)-10:], valid + "\r\n"} {
		if _, err := VerifyToken(tok, pub, tokNow); err == nil {
			t.Errorf("accepted %q", tok)
		}
	}
}

// TestVerifyTokenRefusesNonP384Keys: import only stores P-384 keys, but
// if a P-256 key ever reached the key list, P-256 signatures (SHA-384
// truncated) padded to 48-byte r and s must not verify as "ES384".
func TestVerifyTokenRefusesNonP384Keys(t *testing.T) {
	tok := tokBuild(tokP256Key(), tokHeader, tokClaims(tokExp(300), ""))
	if _, err := VerifyToken(tok, tokPublic(tokP256Key()), tokNow); err == nil {
		t.Error("ES384 token verified with a P-256 key")
	}
}

func FuzzVerifyToken(f *testing.F) {
	keys := tokKeys()
	pub := tokPublic(keys...)
	f.Add(tokValid())
	for _, c := range []Claims{
		{ChannelARN: tokARN, Exp: tokExp(600), AllowOrigins: []string{"https://a.example"}, StrictOrigin: true,
			SingleUseUUID: "6c4d8a9e-3f0b-4b8e-9d3e-2f8a1c5b7e90", ViewerID: "v", ViewerSessionVersion: 3, MaximumResolution: "FULL_HD"},
		{ChannelARN: tokARN, Exp: tokExp(86400), MaximumResolution: "SD"},
	} {
		tok, err := SignToken(keys[2], c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add(tokBuild(keys[1], tokHeader, tokClaims(tokExp(300), `,"aws:viewer-id":"v","aws:viewer-session-version":"42"`)))
	for _, c := range tokHostile() {
		f.Add(c.token)
	}
	f.Fuzz(func(t *testing.T, token string) {
		v, err := VerifyToken(token, pub, tokNow)
		if err != nil {
			if v != nil || !errors.Is(err, errToken) {
				t.Fatalf("error %v with claims %v, or not wrapping errToken", err, v)
			}
			return
		}
		again, err := VerifyToken(token, pub, tokNow)
		if err != nil || !reflect.DeepEqual(v, again) {
			t.Fatalf("re-verification differs: %+v, %v; first %+v", again, err, v)
		}
		c := v.Claims
		switch {
		case c.ChannelARN == "":
			t.Fatal("accepted without a channel ARN")
		case c.Exp <= tokNow.Unix():
			t.Fatalf("accepted exp %d at %d", c.Exp, tokNow.Unix())
		case len(token) > MaxTokenLen:
			t.Fatalf("accepted %d bytes", len(token))
		case (c.ViewerID != "" || c.SingleUseUUID != "") && c.Exp > tokNow.Add(MaxShortLivedExp).Unix()+1:
			t.Fatalf("accepted a short-lived token with exp %d", c.Exp)
		case len([]rune(c.ViewerID)) > MaxViewerIDLen:
			t.Fatalf("accepted viewer id %q", c.ViewerID)
		case c.MaximumResolution != "" && c.MaxHeight() == 0:
			t.Fatalf("accepted maximum resolution %q", c.MaximumResolution)
		case c.StrictOrigin && len(c.AllowOrigins) > MaxStrictOrigins:
			t.Fatalf("accepted %d strict origins", len(c.AllowOrigins))
		}
		found := false
		for _, k := range pub {
			found = found || k.DER == v.Key
		}
		if !found {
			t.Fatal("verified by a key not in the set")
		}
	})
}

func BenchmarkVerifyToken(b *testing.B) {
	keys := tokKeys()
	bench := func(name, token string, pub []PublicKey, wantOK bool) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := VerifyToken(token, pub, tokNow); (err == nil) != wantOK {
					b.Fatal(err)
				}
			}
		})
	}
	signedBy := func(k *ecdsa.PrivateKey) string {
		tok, err := SignToken(k, Claims{ChannelARN: tokARN, Exp: tokExp(300), ViewerID: "v", MaximumResolution: "HD"})
		if err != nil {
			b.Fatal(err)
		}
		return tok
	}
	bench("one key", signedBy(keys[0]), tokPublic(keys[0]), true)
	bench("three keys, signer last", signedBy(keys[2]), tokPublic(keys...), true)
	bad := signedBy(keys[2])
	_, _, s := tokSplit(bad)
	sig, _ := base64.RawURLEncoding.DecodeString(s)
	sig[len(sig)-1] ^= 1
	bench("invalid signature, three keys", tokWithSig(bad, sig), tokPublic(keys...), false)
}
