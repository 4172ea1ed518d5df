package playback

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// A viewer session is what the multivariant playlist grants after its
// checks: the rendition playlists and media it lists carry it in the
// query parameter "vs", compact and signed by the server, so that they are
// authorised without the token, in microseconds, on any node that shares
// the key, and cacheable per session by a CDN.
//
// Wire format, base64url without padding:
//
//	version(1) ‖ id(12) ‖ expires(4, Unix s) ‖ flags(1)
//	[‖ originHash(8)]            flags&flagStrictOrigin
//	[‖ version(varint) ‖ len(1) ‖ viewerID]  flags&flagViewer
//	‖ mac(12)  HMAC-SHA256(key, channelARN ‖ 0 ‖ all the above)[:12]
//
// The channel is in the MAC, not the payload: the URL path names it.

// SessionLifetime bounds a viewer session: IVS streams last at most 48 h.
const SessionLifetime = 48 * time.Hour

const (
	sessionFormat    = 1
	sessionMACLen    = 12
	originHashLen    = 8
	flagStrictOrigin = 1 << 0
	flagViewer       = 1 << 1
	resolutionShift  = 2 // two bits: 0 none, 1 SD, 2 HD, 3 FULL_HD
	maxSessionLen    = 1 + 12 + 4 + 1 + originHashLen + binary.MaxVarintLen64 + 1 + 4*MaxViewerIDLen + sessionMACLen
)

var resolutionCodes = []string{"", "SD", "HD", "FULL_HD"}

// Session is a viewer session as its parameter carries it.
type Session struct {
	// ID is the session's random id, as Viewers counts it (16 base64url
	// characters).
	ID      string
	Expires time.Time
	// OriginHash, when set, is the digest of the Origin every request of
	// the session must carry (strict origin enforcement).
	OriginHash           [originHashLen]byte
	StrictOrigin         bool
	ViewerID             string
	ViewerSessionVersion int64
	MaximumResolution    string
}

// hashOrigin digests an Origin header for the session parameter.
func hashOrigin(origin string) (h [originHashLen]byte) {
	sum := sha256.Sum256([]byte(origin))
	copy(h[:], sum[:])
	return h
}

// SessionSigner mints and checks viewer session parameters with one
// server key. It is safe for concurrent use.
type SessionSigner struct {
	macs sync.Pool // hash.Hash (HMAC-SHA256 keyed), reset before use
}

// NewSessionSigner returns a signer with key (at least 32 bytes of secret).
func NewSessionSigner(key []byte) *SessionSigner {
	k := append([]byte(nil), key...)
	s := &SessionSigner{}
	s.macs.New = func() any { return hmac.New(sha256.New, k) }
	return s
}

func (s *SessionSigner) mac(channelARN string, payload []byte, out []byte) []byte {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(channelARN))
	m.Write([]byte{0})
	m.Write(payload)
	out = m.Sum(out)
	s.macs.Put(m)
	return out
}

// newSessionID mints an unguessable viewer session id (12 random bytes,
// base64url).
func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Mint encodes sess for channelARN. A session without a well-formed ID
// gets a fresh random one.
func (s *SessionSigner) Mint(channelARN string, sess Session) string {
	buf := make([]byte, 0, maxSessionLen+32)
	buf = append(buf, sessionFormat)
	id, err := base64.RawURLEncoding.DecodeString(sess.ID)
	if err != nil || len(id) != 12 {
		id, _ = base64.RawURLEncoding.DecodeString(newSessionID())
	}
	buf = append(buf, id...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(sess.Expires.Unix()))
	flags := byte(0)
	if sess.StrictOrigin {
		flags |= flagStrictOrigin
	}
	viewer := sess.ViewerID
	if len(viewer) > 4*MaxViewerIDLen {
		viewer = viewer[:4*MaxViewerIDLen] // claims were checked; belt and braces
	}
	if viewer != "" {
		flags |= flagViewer
	}
	for i, r := range resolutionCodes {
		if r == sess.MaximumResolution && i > 0 {
			flags |= byte(i) << resolutionShift
		}
	}
	buf = append(buf, flags)
	if sess.StrictOrigin {
		buf = append(buf, sess.OriginHash[:]...)
	}
	if viewer != "" {
		buf = binary.AppendVarint(buf, sess.ViewerSessionVersion)
		buf = append(buf, byte(len(viewer)))
		buf = append(buf, viewer...)
	}
	mac := s.mac(channelARN, buf, make([]byte, 0, sha256.Size))
	buf = append(buf, mac[:sessionMACLen]...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Verify decodes a session parameter minted for channelARN. It fails on
// any change to it, on another channel's parameter and after expiry.
func (s *SessionSigner) Verify(channelARN, param string, now time.Time) (Session, bool) {
	var sess Session
	if len(param) > base64.RawURLEncoding.EncodedLen(maxSessionLen) || len(param) < 8 || !isBase64URL(param) {
		return sess, false
	}
	var raw [maxSessionLen]byte
	// Strict: the unused low bits of the last character must be zero, so
	// a session has one spelling (it keys CDN caches).
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(param))
	if err != nil || n < 1+12+4+1+sessionMACLen || raw[0] != sessionFormat {
		return sess, false
	}
	payload, got := raw[:n-sessionMACLen], raw[n-sessionMACLen:n]
	var sum [sha256.Size]byte
	want := s.mac(channelARN, payload, sum[:0])
	if !hmac.Equal(got, want[:sessionMACLen]) {
		return sess, false
	}
	sess.ID = base64.RawURLEncoding.EncodeToString(payload[1:13])
	sess.Expires = time.Unix(int64(binary.BigEndian.Uint32(payload[13:17])), 0)
	if !now.Before(sess.Expires) {
		return sess, false
	}
	flags := payload[17]
	rest := payload[18:]
	sess.MaximumResolution = resolutionCodes[(flags>>resolutionShift)&3]
	if flags&flagStrictOrigin != 0 {
		if len(rest) < originHashLen {
			return sess, false
		}
		sess.StrictOrigin = true
		copy(sess.OriginHash[:], rest)
		rest = rest[originHashLen:]
	}
	if flags&flagViewer != 0 {
		v, k := binary.Varint(rest)
		if k <= 0 || len(rest) < k+1 {
			return sess, false
		}
		l := int(rest[k])
		rest = rest[k+1:]
		if len(rest) < l {
			return sess, false
		}
		sess.ViewerSessionVersion = v
		sess.ViewerID = string(rest[:l])
		rest = rest[l:]
	}
	return sess, len(rest) == 0
}
