package srt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxStreamIDLen is the SRT limit on a streamid (SRTO_STREAMID).
const maxStreamIDLen = 512

// accessControlPrefix starts a streamid in the SRT access-control syntax
// (https://github.com/Haivision/srt/blob/master/docs/features/access-control.md).
const accessControlPrefix = "#!::"

// streamID is what an encoder asked for in its SRT streamid.
type streamID struct {
	Key         string
	Priority    int
	HasPriority bool
}

// Errors of streamid parsing; errBadMode is kept apart so the handshake can
// say "wrong mode" (REJX_BAD_MODE) rather than "bad request".
var (
	errBadStreamID = errors.New("srt: malformed streamid")
	errBadMode     = errors.New("srt: only m=publish is accepted")
)

// parseStreamID reads the two forms IVS documents: the plain stream key, or
// the access-control form "#!::u=<key>,priority=N". In the access-control
// form the key may also come as r=<key> (u wins when both are given), and m
// may say publish; the SRT default mode "request" is not assumed, because
// IVS encoders send "#!::u=key,priority=N" without m and mean publishing, so
// only an explicit m other than publish is refused. Unknown keys of the
// syntax (t=, s=, h=, ...) are ignored as the syntax allows.
func parseStreamID(s string) (streamID, error) {
	if len(s) > maxStreamIDLen {
		return streamID{}, fmt.Errorf("%w: longer than %d bytes", errBadStreamID, maxStreamIDLen)
	}
	if !strings.HasPrefix(s, accessControlPrefix) {
		if !validKey(s) {
			return streamID{}, fmt.Errorf("%w: not a stream key", errBadStreamID)
		}
		return streamID{Key: s}, nil
	}

	var (
		id        streamID
		user, res string
		seenU     bool
		seen      = map[string]bool{}
	)
	body := s[len(accessControlPrefix):]
	if body == "" {
		return streamID{}, fmt.Errorf("%w: empty access-control list", errBadStreamID)
	}
	for _, pair := range strings.Split(body, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return streamID{}, fmt.Errorf("%w: %q is not key=value", errBadStreamID, pair)
		}
		if seen[k] {
			// A repeated key is ambiguous; refusing beats guessing which wins.
			return streamID{}, fmt.Errorf("%w: %q given twice", errBadStreamID, k)
		}
		seen[k] = true
		switch k {
		case "u":
			user, seenU = v, true
		case "r":
			res = v
		case "m":
			if v != "publish" {
				return streamID{}, fmt.Errorf("%w (got m=%s)", errBadMode, v)
			}
		case "priority":
			n, err := strconv.Atoi(v)
			if err != nil {
				return streamID{}, fmt.Errorf("%w: priority %q is not an integer", errBadStreamID, v)
			}
			// Range checks (1..2^31-1) belong to the takeover rules, which
			// answer with StreamTakeoverInvalidPriority; pass it on as given.
			id.Priority, id.HasPriority = n, true
		}
	}
	id.Key = res
	if seenU {
		id.Key = user
	}
	if !validKey(id.Key) {
		return streamID{}, fmt.Errorf("%w: no usable stream key in u= or r=", errBadStreamID)
	}
	return id, nil
}

// validKey accepts what a stream key can look like (sk_<region>_<random>,
// and test keys): non-empty, URL-safe characters only, so control bytes or
// separators smuggled in a streamid never reach the key lookup.
func validKey(k string) bool {
	if k == "" || len(k) > maxStreamIDLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}
