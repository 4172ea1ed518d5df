package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Principal is who signed a request.
type Principal struct{ AccessKeyID, Account, Service, Region string }

const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	sigV4Terminator = "aws4_request"
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
	// maxClockSkew is how far the request date may be from the server clock,
	// as on AWS; beyond it a captured request can no longer be replayed.
	maxClockSkew = 15 * time.Minute
	// maxPresignExpires is AWS's upper bound for X-Amz-Expires (7 days).
	maxPresignExpires = 7 * 24 * time.Hour

	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// sigv4Error builds the 403 errors of SigV4 verification. The status is set
// here rather than left to statusForCode so that a service model defining an
// exception of the same name cannot turn an authentication failure into
// something else.
func sigv4Error(code, format string, args ...any) *Error {
	e := Errorf(code, format, args...)
	e.Status = http.StatusForbidden
	return e
}

func sigv4Incomplete(format string, args ...any) *Error {
	return sigv4Error("IncompleteSignatureException", format, args...)
}

func sigv4Invalid(format string, args ...any) *Error {
	return sigv4Error("InvalidSignatureException", format, args...)
}

// sigV4Params are the parts of a SigV4 signature, from the Authorization
// header or from a presigned URL's query.
type sigV4Params struct {
	accessKeyID   string
	scopeDate     string
	scopeRegion   string
	scopeService  string
	signedHeaders string // verbatim: it is part of the canonical request
	signature     string
	presigned     bool
	expires       time.Duration // presigned only
}

// verifySigV4 authenticates r the way AWS does for REST-JSON services
// (AWS Signature Version 4 with the signature in the Authorization header or
// in a presigned URL) and returns who signed it. body is the whole request
// body, already read. The credential scope must name region and one of
// signingNames. Every failure is a 403 with the exception code AWS uses, so
// that SDK retry logic (clock-skew correction in particular) behaves as it
// does against AWS. Neither the secret nor the expected signature ever
// appears in an error.
func verifySigV4(r *http.Request, body []byte, creds Credentials, region string, signingNames []string, now time.Time) (Principal, *Error) {
	p, aerr := parseSigV4(r)
	if aerr != nil {
		return Principal{}, aerr
	}

	// The request time: X-Amz-Date (header or, presigned, query), else Date.
	var amzDate string
	var reqTime time.Time
	switch {
	case p.presigned:
		amzDate = r.URL.Query().Get("X-Amz-Date")
	case r.Header.Get("X-Amz-Date") != "":
		amzDate = r.Header.Get("X-Amz-Date")
	case r.Header.Get("Date") != "":
		t, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return Principal{}, sigv4Incomplete("Date must be in RFC 1123 format or the X-Amz-Date header in ISO-8601 basic format.")
		}
		reqTime = t.UTC()
		amzDate = reqTime.Format(amzDateFormat)
	}
	if amzDate == "" {
		if p.presigned {
			return Principal{}, sigv4Incomplete("AWS query-string parameters must include 'X-Amz-Date'.")
		}
		return Principal{}, sigv4Incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if reqTime.IsZero() {
		t, err := time.Parse(amzDateFormat, amzDate)
		if err != nil {
			return Principal{}, sigv4Incomplete("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", sigv4Clip(amzDate))
		}
		reqTime = t
	}

	if p.scopeRegion != region {
		return Principal{}, sigv4Invalid("Credential should be scoped to a valid region.")
	}
	if !slices.Contains(signingNames, p.scopeService) {
		want := ""
		if len(signingNames) > 0 {
			want = signingNames[0]
		}
		return Principal{}, sigv4Invalid("Credential should be scoped to correct service: '%s'.", want)
	}

	secret, account, ok := "", "", false
	if creds != nil {
		secret, account, ok = creds.Lookup(p.accessKeyID)
	}
	if !ok {
		return Principal{}, sigv4Error("UnrecognizedClientException", "The security token included in the request is invalid.")
	}

	now = now.UTC()
	if p.presigned {
		if reqTime.After(now.Add(maxClockSkew)) {
			return Principal{}, sigv4Invalid("Signature not yet current: %s is still later than %s (%s + 15 min.)",
				amzDate, now.Add(maxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
		}
		if earliest := now.Add(-p.expires); reqTime.Before(earliest) {
			return Principal{}, sigv4Invalid("Signature expired: %s is now earlier than %s (%s - %d sec.)",
				amzDate, earliest.Format(amzDateFormat), now.Format(amzDateFormat), int64(p.expires/time.Second))
		}
	} else {
		if earliest := now.Add(-maxClockSkew); reqTime.Before(earliest) {
			return Principal{}, sigv4Invalid("Signature expired: %s is now earlier than %s (%s - 15 min.)",
				amzDate, earliest.Format(amzDateFormat), now.Format(amzDateFormat))
		}
		if latest := now.Add(maxClockSkew); reqTime.After(latest) {
			return Principal{}, sigv4Invalid("Signature not yet current: %s is still later than %s (%s + 15 min.)",
				amzDate, latest.Format(amzDateFormat), now.Format(amzDateFormat))
		}
	}
	if p.scopeDate != amzDate[:8] {
		return Principal{}, sigv4Invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			p.scopeDate, amzDate[:8], amzDate)
	}

	signed := strings.Split(p.signedHeaders, ";")
	if !slices.Contains(signed, "host") {
		return Principal{}, sigv4Invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	// There is no STS here, so a session token cannot be checked; it is
	// ignored, but like AWS we insist it was signed so that nobody can
	// attach one to a request they did not sign.
	if r.Header.Get("X-Amz-Security-Token") != "" && !slices.Contains(signed, "x-amz-security-token") {
		return Principal{}, sigv4Invalid("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")
	}

	// The payload hash is always that of the body actually received: these
	// are small JSON APIs, so unsigned or streaming payloads have no use and
	// would let a body be swapped under a valid signature.
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	declared := r.Header.Get("X-Amz-Content-Sha256")
	if declared == "" && p.presigned {
		declared = r.URL.Query().Get("X-Amz-Content-Sha256")
	}
	if declared != "" && declared != payloadHash {
		if declared == "UNSIGNED-PAYLOAD" || strings.HasPrefix(declared, "STREAMING-") {
			return Principal{}, sigv4Invalid("Unsigned payloads are not supported; sign the SHA-256 hash of the request body.")
		}
		return Principal{}, sigv4Invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}

	scope := p.scopeDate + "/" + p.scopeRegion + "/" + p.scopeService + "/" + sigV4Terminator
	key := deriveSigningKey(secret, p.scopeDate, p.scopeRegion, p.scopeService)
	headers := canonicalHeaders(r, signed)
	got := []byte(p.signature)
	var match bool
	// Each candidate is checked in constant time, and all of them always,
	// so timing tells nothing about which part of the signature was right.
	for _, path := range canonicalURIs(rawRequestPath(r)) {
		for _, query := range canonicalQueries(r.URL.RawQuery, p.presigned) {
			canonical := strings.Join([]string{r.Method, path, query, headers, p.signedHeaders, payloadHash}, "\n")
			h := sha256.Sum256([]byte(canonical))
			stringToSign := sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(h[:])
			var want [2 * sha256.Size]byte
			hex.Encode(want[:], sigv4HMAC(key, []byte(stringToSign)))
			if hmac.Equal(want[:], got) {
				match = true
			}
		}
	}
	if !match {
		return Principal{}, sigv4Invalid(msgSignatureMismatch)
	}
	return Principal{AccessKeyID: p.accessKeyID, Account: account, Service: p.scopeService, Region: p.scopeRegion}, nil
}

// parseSigV4 extracts the signature parts from the Authorization header or
// the presigned query, checking only their syntax.
func parseSigV4(r *http.Request) (sigV4Params, *Error) {
	auth := r.Header.Get("Authorization")
	presigned := r.URL.Query().Has("X-Amz-Signature") || r.URL.Query().Has("X-Amz-Algorithm")
	if auth == "" && !presigned {
		return sigV4Params{}, sigv4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	if auth != "" && presigned {
		return sigV4Params{}, sigv4Incomplete("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	}
	if presigned {
		return parsePresigned(r.URL.Query())
	}

	alg, rest, _ := strings.Cut(strings.TrimSpace(auth), " ")
	if alg != sigV4Algorithm {
		return sigV4Params{}, sigv4Incomplete("Unsupported AWS 'algorithm': '%s'; only '%s' is accepted.", sigv4Clip(alg), sigV4Algorithm)
	}
	var credential, signedHeaders, signature string
	var seenCred, seenHeaders, seenSig bool
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return sigV4Params{}, sigv4Incomplete("Authorization header requires each component to be of the form key=value; got '%s'.", sigv4Clip(part))
		}
		var dst *string
		var seen *bool
		switch name {
		case "Credential":
			dst, seen = &credential, &seenCred
		case "SignedHeaders":
			dst, seen = &signedHeaders, &seenHeaders
		case "Signature":
			dst, seen = &signature, &seenSig
		default:
			return sigV4Params{}, sigv4Incomplete("Authorization header has an unknown component '%s'.", sigv4Clip(name))
		}
		if *seen {
			return sigV4Params{}, sigv4Incomplete("Authorization header has the '%s' parameter more than once.", name)
		}
		*dst, *seen = value, true
	}
	var missing []string
	for _, c := range []struct {
		name string
		v    string
	}{{"Credential", credential}, {"Signature", signature}, {"SignedHeaders", signedHeaders}} {
		if c.v == "" {
			missing = append(missing, "Authorization header requires '"+c.name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return sigV4Params{}, sigv4Incomplete("%s", strings.Join(missing, " "))
	}
	p := sigV4Params{signedHeaders: signedHeaders, signature: signature}
	if aerr := p.parseCredential(credential); aerr != nil {
		return sigV4Params{}, aerr
	}
	if aerr := checkSignedHeaders(signedHeaders); aerr != nil {
		return sigV4Params{}, aerr
	}
	return p, nil
}

func parsePresigned(q url.Values) (sigV4Params, *Error) {
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date", "X-Amz-Expires"} {
		if q.Get(name) == "" {
			return sigV4Params{}, sigv4Incomplete("AWS query-string parameters must include '%s'.", name)
		}
	}
	if alg := q.Get("X-Amz-Algorithm"); alg != sigV4Algorithm {
		return sigV4Params{}, sigv4Incomplete("Unsupported AWS 'algorithm': '%s'; only '%s' is accepted.", sigv4Clip(alg), sigV4Algorithm)
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxPresignExpires {
		return sigV4Params{}, sigv4Incomplete("X-Amz-Expires must be a whole number of seconds from 1 to %d.", int64(maxPresignExpires/time.Second))
	}
	p := sigV4Params{
		signedHeaders: q.Get("X-Amz-SignedHeaders"),
		signature:     q.Get("X-Amz-Signature"),
		presigned:     true,
		expires:       time.Duration(secs) * time.Second,
	}
	if aerr := p.parseCredential(q.Get("X-Amz-Credential")); aerr != nil {
		return sigV4Params{}, aerr
	}
	if aerr := checkSignedHeaders(p.signedHeaders); aerr != nil {
		return sigV4Params{}, aerr
	}
	return p, nil
}

// parseCredential splits <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request.
func (p *sigV4Params) parseCredential(credential string) *Error {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 {
		return sigv4Incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'.", sigv4Clip(credential))
	}
	if parts[4] != sigV4Terminator {
		return sigv4Incomplete("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", sigv4Clip(parts[4]))
	}
	if parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return sigv4Incomplete("Credential must name an access key id, a region and a service, got '%s'.", sigv4Clip(credential))
	}
	if _, err := time.Parse(scopeDateFormat, parts[1]); err != nil || len(parts[1]) != 8 {
		return sigv4Incomplete("Date in Credential scope must be in YYYYMMDD format, got '%s'.", sigv4Clip(parts[1]))
	}
	p.accessKeyID, p.scopeDate, p.scopeRegion, p.scopeService = parts[0], parts[1], parts[2], parts[3]
	return nil
}

func checkSignedHeaders(signedHeaders string) *Error {
	for _, h := range strings.Split(signedHeaders, ";") {
		if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " \t:") {
			return sigv4Incomplete("SignedHeaders must be a semicolon-separated list of lowercase header names, got '%s'.", sigv4Clip(signedHeaders))
		}
	}
	return nil
}

// canonicalHeaders is the CanonicalHeaders block: each signed header in the
// order the client listed it, its values trimmed, inner runs of spaces
// collapsed and repeated values comma-joined, each line ending in "\n".
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		var values []string
		switch name {
		case "host":
			// net/http moves Host out of the header map.
			host := r.Host
			if host == "" {
				host = r.URL.Host
			}
			values = []string{host}
		case "content-length":
			// net/http may keep it only in ContentLength.
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			values = r.Header.Values("Transfer-Encoding")
			if len(values) == 0 {
				values = r.TransferEncoding
			}
		default:
			values = r.Header.Values(name)
		}
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(sigv4TrimAll(v))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// sigv4TrimAll trims a header value and collapses each run of spaces to one.
func sigv4TrimAll(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// canonicalQueries returns the CanonicalQueryString of a raw query: each
// name and value decoded, then encoded again the AWS way (RFC 3986
// unreserved characters kept, everything else %XX in upper case), sorted by
// name then value. Decoding first makes the result independent of how the
// client escaped the query ('+' or %20 for a space, lower-case hex); a pair
// that does not decode is kept as sent. A presigned URL's own signature is
// not part of what it signs.
//
// Clients disagree on what is sorted: botocore sorts the encoded pairs (as
// the SigV4 documentation says), the Go SDK the decoded ones. The orders
// differ only for repeated or unusual names (tagKeys=%C3%BC&tagKeys=a), and
// then both candidates are returned.
func canonicalQueries(rawQuery string, presigned bool) []string {
	if rawQuery == "" {
		return []string{""}
	}
	type pair struct{ k, v, ek, ev string }
	var pairs []pair
	for _, item := range strings.Split(rawQuery, "&") {
		if item == "" {
			continue
		}
		k, v, _ := strings.Cut(item, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, pair{k, v, sigv4Escape(k, true), sigv4Escape(v, true)})
	}
	join := func() string {
		var b strings.Builder
		for i, p := range pairs {
			if i > 0 {
				b.WriteByte('&')
			}
			b.WriteString(p.ek)
			b.WriteByte('=')
			b.WriteString(p.ev)
		}
		return b.String()
	}
	sort.SliceStable(pairs, func(i, j int) bool {
		if pairs[i].ek != pairs[j].ek {
			return pairs[i].ek < pairs[j].ek
		}
		return pairs[i].ev < pairs[j].ev
	})
	byEncoded := join()
	sort.SliceStable(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	if byDecoded := join(); byDecoded != byEncoded {
		return []string{byEncoded, byDecoded}
	}
	return []string{byEncoded}
}

// rawRequestPath is the path exactly as it came on the wire, still escaped.
// SigV4 signs that escaped form, so it must not be decoded and re-escaped
// by net/url, which could choose a different (equally valid) escaping.
func rawRequestPath(r *http.Request) string {
	target := r.RequestURI
	if target != "" && !strings.HasPrefix(target, "/") {
		// Absolute form (proxy requests): scheme://authority/path?query.
		if u, err := url.Parse(target); err == nil {
			target = u.EscapedPath()
		} else {
			target = ""
		}
	}
	if target == "" {
		// Not from a server (tests, in-process calls): the URL is all there is.
		target = r.URL.EscapedPath()
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if target == "" {
		target = "/"
	}
	return target
}

// canonicalURIs returns the CanonicalURI of a raw path, plus a second
// candidate when clients may disagree about it. Services other than S3 sign
// the path URI-encoded once more on top of the escaping it was sent with,
// so /tags/arn%3Aaws%3Aivs... is signed as /tags/arn%253Aaws%253Aivs...; the
// Go SDK does exactly that, while botocore first removes dot segments and
// empty segments ("//") as AWS services do. Both are accepted, since they
// only differ for paths no IVS operation has.
func canonicalURIs(rawPath string) []string {
	plain := sigv4Escape(rawPath, false)
	norm := sigv4Escape(sigv4RemoveDotSegments(rawPath), false)
	if norm == plain {
		return []string{plain}
	}
	return []string{plain, norm}
}

// sigv4RemoveDotSegments is RFC 3986 section 5.2.4 plus the removal of empty
// segments, as botocore does for every service but S3.
func sigv4RemoveDotSegments(path string) string {
	if path == "" {
		return ""
	}
	var out []string
	for _, seg := range strings.Split(path, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	res := strings.Join(out, "/")
	if path[0] == '/' {
		res = "/" + res
	}
	if path[len(path)-1] == '/' && len(out) > 0 {
		res += "/"
	}
	return res
}

// sigv4Escape is SigV4's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ becomes
// %XX (upper-case hex); '/' is kept unless encodeSlash.
func sigv4Escape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// deriveSigningKey is HMAC("AWS4"+secret, date) chained through region,
// service and the terminator.
func deriveSigningKey(secret, date, region, service string) []byte {
	k := sigv4HMAC([]byte("AWS4"+secret), []byte(date))
	k = sigv4HMAC(k, []byte(region))
	k = sigv4HMAC(k, []byte(service))
	return sigv4HMAC(k, []byte(sigV4Terminator))
}

func sigv4HMAC(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// sigv4Clip bounds client-supplied text quoted back in error messages.
func sigv4Clip(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
