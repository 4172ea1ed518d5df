package rtmp

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// ingestApp is the only RTMP application name IVS accepts (§7.3).
const ingestApp = "app"

// maxStreamKeyLen bounds what is handed to the Publisher; IVS keys are ~40
// characters, so anything far longer is garbage, not a key.
const maxStreamKeyLen = 512

// Reasons a publish target is refused before it reaches the Publisher.
var (
	errWrongApp    = errors.New("rtmp: RTMP application must be \"app\"")
	errNoStreamKey = errors.New("rtmp: stream key missing")
	errBadPriority = errors.New("rtmp: priority must be a non-negative integer")
)

// target is what an encoder asked to publish to.
type target struct {
	StreamKey   string
	Priority    int
	HasPriority bool
}

// parseTarget splits the URL gortmplib builds from the connect tcUrl and the
// publish stream name ("rtmp://host/app/<key>?priority=N") into the stream
// key and takeover priority. gortmplib does not expose the connect "app"
// field itself, so the app is read from the URL path, which is what every
// encoder (ffmpeg, OBS, hardware) puts there.
func parseTarget(u *url.URL) (target, error) {
	if u == nil {
		return target{}, errNoStreamKey
	}
	path := strings.TrimPrefix(u.Path, "/")
	app, key, _ := strings.Cut(path, "/")
	if app != ingestApp {
		return target{}, errWrongApp
	}
	// Tolerate "rtmp://host/app/" + "/key" style doubled slashes, but not a
	// key with path segments: that is an app instance, which IVS has none of.
	key = strings.TrimLeft(key, "/")
	if key == "" || strings.Contains(key, "/") || len(key) > maxStreamKeyLen {
		return target{}, errNoStreamKey
	}
	t := target{StreamKey: key}
	prio, has, err := parsePriority(u.RawQuery)
	if err != nil {
		return target{}, err
	}
	t.Priority, t.HasPriority = prio, has
	return t, nil
}

// parsePriority reads "priority=N" from the stream name's query. Other
// parameters are ignored (encoders append their own), but a priority that is
// present and not a single non-negative integer refuses the publish, so that
// a typo does not silently lose a takeover.
func parsePriority(rawQuery string) (prio int, has bool, err error) {
	if rawQuery == "" {
		return 0, false, nil
	}
	for kv := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "priority" {
			continue
		}
		if has {
			return 0, false, errBadPriority
		}
		n, err := strconv.Atoi(v)
		// Atoi accepts a leading '+'; a priority is plain digits.
		if err != nil || n < 0 || v == "" || v[0] < '0' || v[0] > '9' {
			return 0, false, errBadPriority
		}
		prio, has = n, true
	}
	return prio, has, nil
}
