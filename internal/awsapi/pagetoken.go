package awsapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// PageTokens makes and checks pagination tokens (nextToken). A token carries
// only a cursor and a MAC binding it to its listing's scope (account,
// operation, filters), so a client can neither forge a cursor nor replay a
// token against another listing, and learns nothing about the scope.
type PageTokens struct {
	secret []byte
}

const (
	pageTokenVersion = 1
	pageTokenMACLen  = 16 // 128-bit truncated HMAC-SHA256, plenty against forgery
	pageTokenRawLen  = 1 + 8 + pageTokenMACLen
	// pageTokenMaxLen is the IVS PaginationToken maximum; longer input is
	// rejected before any decoding work.
	pageTokenMaxLen = 1024
)

// errPageToken is deliberately uninformative: why a token failed is of no
// use to a client and might help one probe the MAC.
var errPageToken = errors.New("awsapi: invalid pagination token")

// NewPageTokens returns a PageTokens keyed by secret (copied). An empty
// secret gets a random key, so tokens are never forgeable, only
// short-lived.
func NewPageTokens(secret []byte) *PageTokens {
	key := append([]byte(nil), secret...)
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &PageTokens{secret: key}
}

// Encode returns the token for cursor within scope. It is unpadded
// base64url, so only [A-Za-z0-9_-], and 34 characters long: inside the IVS
// PaginationToken pattern and length.
func (p *PageTokens) Encode(scope string, cursor int64) string {
	var raw [pageTokenRawLen]byte
	raw[0] = pageTokenVersion
	binary.BigEndian.PutUint64(raw[1:9], uint64(cursor))
	copy(raw[9:], p.mac(scope, raw[:9]))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// Decode returns the cursor of a token made by Encode for the same scope and
// an error for anything else: malformed, tampered, or made for another scope.
func (p *PageTokens) Decode(scope, token string) (int64, error) {
	if len(token) != base64.RawURLEncoding.EncodedLen(pageTokenRawLen) || len(token) > pageTokenMaxLen {
		return 0, errPageToken
	}
	var raw [pageTokenRawLen]byte
	// Strict rejects non-zero padding bits, so each token has exactly one
	// spelling.
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(token))
	if err != nil || n != pageTokenRawLen || raw[0] != pageTokenVersion {
		return 0, errPageToken
	}
	if !hmac.Equal(raw[9:], p.mac(scope, raw[:9])) {
		return 0, errPageToken
	}
	return int64(binary.BigEndian.Uint64(raw[1:9])), nil
}

// mac is HMAC-SHA256 over the scope's length, the scope and the token's
// version and cursor; the length prefix keeps scope/cursor boundaries
// unambiguous whatever bytes the scope holds.
func (p *PageTokens) mac(scope string, header []byte) []byte {
	m := hmac.New(sha256.New, p.secret)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(scope)))
	m.Write([]byte("openivs page token\x00"))
	m.Write(n[:])
	m.Write([]byte(scope))
	m.Write(header)
	return m.Sum(nil)[:pageTokenMACLen]
}
