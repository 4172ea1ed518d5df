package playback

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claim names of IVS playback tokens.
const (
	ClaimChannelARN           = "aws:channel-arn"
	ClaimAllowOrigin          = "aws:access-control-allow-origin"
	ClaimStrictOrigin         = "aws:strict-origin-enforcement"
	ClaimSingleUseUUID        = "aws:single-use-uuid"
	ClaimViewerID             = "aws:viewer-id"
	ClaimViewerSessionVersion = "aws:viewer-session-version"
	ClaimMaximumResolution    = "aws:maximum-resolution"
	ClaimExp                  = "exp"
)

// Limits IVS puts on playback tokens.
const (
	// MaxTokenLen bounds the token IVS accepts (2 KB).
	MaxTokenLen = 2048
	// MaxViewerIDLen bounds aws:viewer-id.
	MaxViewerIDLen = 40
	// MaxShortLivedExp is how far ahead exp may be when the token carries a
	// viewer id or a single-use UUID.
	MaxShortLivedExp = 10 * time.Minute
	// MaxStrictOrigins bounds aws:access-control-allow-origin with strict
	// origin enforcement.
	MaxStrictOrigins = 5
	// SingleUsePruneInterval is how often played single-use tokens past
	// their exp are forgotten.
	SingleUsePruneInterval = MaxShortLivedExp
	// maxExpSeconds rejects exp values that are plainly milliseconds (the
	// Node.js example in IVS's guide writes Date.now()+60000): 10^11 s is
	// the year 5138, 10^11 ms is 1973.
	maxExpSeconds = 1e11
)

// Resolution classes of aws:maximum-resolution, by the short side of the
// picture they allow.
var resolutionClasses = map[string]int{"SD": 480, "HD": 720, "FULL_HD": 1080}

// Claims is what a playback token grants. The zero values of the optional
// claims mean "not restricted".
type Claims struct {
	ChannelARN string
	Exp        int64 // Unix seconds
	// AllowOrigins is aws:access-control-allow-origin split at commas;
	// empty allows every origin.
	AllowOrigins         []string
	StrictOrigin         bool
	SingleUseUUID        string
	ViewerID             string
	ViewerSessionVersion int64
	// MaximumResolution is "", "SD", "HD" or "FULL_HD".
	MaximumResolution string
}

// MaxHeight is the tallest rendition (short side, pixels) the claims
// allow; 0 means no limit.
func (c *Claims) MaxHeight() int { return resolutionClasses[c.MaximumResolution] }

// MarshalJSON writes the claims as an IVS token payload.
func (c Claims) MarshalJSON() ([]byte, error) {
	m := map[string]any{ClaimChannelARN: c.ChannelARN, ClaimExp: c.Exp}
	if len(c.AllowOrigins) > 0 {
		m[ClaimAllowOrigin] = strings.Join(c.AllowOrigins, ",")
	}
	if c.StrictOrigin {
		m[ClaimStrictOrigin] = true
	}
	if c.SingleUseUUID != "" {
		m[ClaimSingleUseUUID] = c.SingleUseUUID
	}
	if c.ViewerID != "" {
		m[ClaimViewerID] = c.ViewerID
		m[ClaimViewerSessionVersion] = c.ViewerSessionVersion
	}
	if c.MaximumResolution != "" {
		m[ClaimMaximumResolution] = c.MaximumResolution
	}
	return json.Marshal(m)
}

// errToken is every token failure as the viewer sees it: like IVS, the
// answer does not tell which check failed. The wrapped cause is for logs.
var errToken = errors.New("playback token is missing or invalid")

// tokenError wraps a reason into errToken.
func tokenError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errToken, fmt.Sprintf(format, args...))
}

// Verified is a token that passed signature and claim checks.
type Verified struct {
	Claims
	// Key is the DER of the public key that verified it, so that a cached
	// verification is dropped when the key is deleted.
	Key string
}

// PublicKey is an imported playback key: the parsed key and its DER
// (identity for caches).
type PublicKey struct {
	Key *ecdsa.PublicKey
	DER string
}

// VerifyToken checks a playback token against the account's keys (tokens
// carry no key id, so each key is tried) and returns its claims. It checks
// the form, the ES384 signature and the claims' types and limits, and exp
// against now; it does not check the channel, single use or revocation,
// which need the request. golang-jwt does the JWS signature; the header
// and payload are parsed here, strictly (duplicate names, exp in
// milliseconds and wrong types are rejected), which golang-jwt does not.
func VerifyToken(token string, keys []PublicKey, now time.Time) (*Verified, error) {
	if token == "" {
		return nil, tokenError("no token")
	}
	if len(token) > MaxTokenLen {
		return nil, tokenError("token of %d bytes exceeds %d", len(token), MaxTokenLen)
	}
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, tokenError("not a compact JWS")
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return nil, tokenError("not a compact JWS")
	}
	if err := checkHeader(header); err != nil {
		return nil, err
	}
	body, err := decodeSegment(payload)
	if err != nil {
		return nil, tokenError("payload: %v", err)
	}
	claims, err := parseClaims(body)
	if err != nil {
		return nil, err
	}
	if err := claims.checkTimes(now); err != nil {
		return nil, err
	}
	rawSig, err := decodeSegment(sig)
	if err != nil || len(rawSig) != 96 { // ES384: r ‖ s, 48 bytes each
		return nil, tokenError("malformed ES384 signature")
	}
	signed := token[:len(header)+1+len(payload)]
	for _, k := range keys {
		if k.Key == nil || k.Key.Curve != elliptic.P384() {
			continue // ES384 is P-384 only; another curve would accept padded signatures
		}
		if jwt.SigningMethodES384.Verify(signed, rawSig, k.Key) == nil {
			return &Verified{Claims: *claims, Key: k.DER}, nil
		}
	}
	return nil, tokenError("signature does not verify with any imported playback key")
}

// checkHeader accepts only {"alg":"ES384"} with an optional "typ":"JWT":
// no "none", no HMAC or RSA (whose keys an attacker could confuse with
// ours), no critical extensions.
func checkHeader(seg string) error {
	raw, err := decodeSegment(seg)
	if err != nil {
		return tokenError("header: %v", err)
	}
	fields, err := strictObject(raw)
	if err != nil {
		return tokenError("header: %v", err)
	}
	var alg string
	if err := json.Unmarshal(fields["alg"], &alg); err != nil || alg != "ES384" {
		return tokenError("header: alg must be ES384")
	}
	for name, v := range fields {
		switch name {
		case "alg":
		case "typ":
			var typ string
			if err := json.Unmarshal(v, &typ); err != nil || !strings.EqualFold(typ, "JWT") {
				return tokenError("header: typ must be JWT")
			}
		case "kid":
			// IVS tokens have none; a kid is harmless (every key is tried).
		default:
			return tokenError("header: unsupported parameter %q", name)
		}
	}
	return nil
}

// decodeSegment decodes unpadded base64url, as JWS requires. The
// alphabet is checked first: Go's decoder skips CR and LF even in strict
// mode, which would give one token many spellings.
func decodeSegment(s string) ([]byte, error) {
	if !isBase64URL(s) {
		return nil, errors.New("not base64url")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// isBase64URL reports whether s holds only base64url characters.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// strictObject parses a JSON object into its members, refusing duplicate
// names (which parsers resolve differently, a classic token-confusion
// trick), invalid UTF-8 and trailing data.
func strictObject(raw []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("not JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not JSON")
		}
		name, _ := tok.(string)
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("not JSON")
		}
		fields[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, errors.New("not JSON")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("trailing data after the object")
	}
	return fields, nil
}

// parseClaims reads an IVS token payload. Unknown claims (iat, nbf, ...)
// are ignored, as JWT allows; known ones must have their type.
func parseClaims(raw []byte) (*Claims, error) {
	fields, err := strictObject(raw)
	if err != nil {
		return nil, tokenError("payload: %v", err)
	}
	c := &Claims{}
	str := func(name string, dst *string) error {
		v, ok := fields[name]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return tokenError("%s must be a string", name)
		}
		return nil
	}
	if err := str(ClaimChannelARN, &c.ChannelARN); err != nil {
		return nil, err
	}
	if c.ChannelARN == "" {
		return nil, tokenError("%s is required", ClaimChannelARN)
	}
	exp, ok := fields[ClaimExp]
	if !ok {
		return nil, tokenError("exp is required")
	}
	if c.Exp, err = strconv.ParseInt(string(exp), 10, 64); err != nil {
		return nil, tokenError("exp must be an integer number of seconds")
	}
	if c.Exp >= maxExpSeconds {
		return nil, tokenError("exp %d is in milliseconds; it must be in seconds", c.Exp)
	}
	var origins string
	if err := str(ClaimAllowOrigin, &origins); err != nil {
		return nil, err
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowOrigins = append(c.AllowOrigins, o)
		}
	}
	if v, ok := fields[ClaimStrictOrigin]; ok {
		if err := json.Unmarshal(v, &c.StrictOrigin); err != nil {
			return nil, tokenError("%s must be a boolean", ClaimStrictOrigin)
		}
	}
	if c.StrictOrigin && len(c.AllowOrigins) > MaxStrictOrigins {
		return nil, tokenError("at most %d origins with strict origin enforcement", MaxStrictOrigins)
	}
	if err := str(ClaimSingleUseUUID, &c.SingleUseUUID); err != nil {
		return nil, err
	}
	if err := str(ClaimViewerID, &c.ViewerID); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(c.ViewerID) > MaxViewerIDLen {
		return nil, tokenError("%s exceeds %d characters", ClaimViewerID, MaxViewerIDLen)
	}
	if v, ok := fields[ClaimViewerSessionVersion]; ok {
		// A signed 64-bit integer; IVS's own example quotes it.
		s := string(v)
		if strings.HasPrefix(s, `"`) && json.Unmarshal(v, &s) != nil {
			s = "!"
		}
		if strings.HasPrefix(s, "+") {
			s = "!" // a number, not any text ParseInt takes
		}
		if c.ViewerSessionVersion, err = strconv.ParseInt(s, 10, 64); err != nil {
			return nil, tokenError("%s must be a 64-bit integer", ClaimViewerSessionVersion)
		}
	}
	if err := str(ClaimMaximumResolution, &c.MaximumResolution); err != nil {
		return nil, err
	}
	if _, ok := resolutionClasses[c.MaximumResolution]; c.MaximumResolution != "" && !ok {
		return nil, tokenError("%s must be SD, HD or FULL_HD", ClaimMaximumResolution)
	}
	return c, nil
}

// checkTimes checks exp: not past, and at most 10 minutes ahead when the
// token names a viewer or is single-use. exp is checked when playback
// starts only; it does not end a session.
func (c *Claims) checkTimes(now time.Time) error {
	if now.Unix() >= c.Exp {
		return tokenError("expired at %d", c.Exp)
	}
	if (c.ViewerID != "" || c.SingleUseUUID != "") && c.Exp > now.Add(MaxShortLivedExp).Unix()+1 {
		return tokenError("exp more than %s ahead with a viewer id or single-use UUID", MaxShortLivedExp)
	}
	return nil
}

// tokenDigest keys caches by token without keeping the token itself.
func tokenDigest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// tokenHeader is the only header IVS playback tokens have.
var tokenHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES384","typ":"JWT"}`))

// SignToken mints a playback token for c with the private half of an
// imported playback key pair, as a customer's backend does.
func SignToken(key *ecdsa.PrivateKey, c Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := tokenHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := jwt.SigningMethodES384.Sign(signing, key)
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
