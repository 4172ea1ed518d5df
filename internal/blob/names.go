package blob

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// CheckBucketName reports whether name follows S3's rules for bucket
// names: 3 to 63 characters, lowercase letters, digits, dots and hyphens,
// beginning and ending with a letter or digit, no two dots in a row, and
// not an IPv4 address.
func CheckBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket name %q may hold only lowercase letters, digits, dots and hyphens", name)
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return fmt.Errorf("bucket name %q must begin and end with a letter or digit", name)
	}
	if strings.Contains(name, "..") {
		return fmt.Errorf("bucket name %q must not hold two dots in a row", name)
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return fmt.Errorf("bucket name %q must not be an IP address", name)
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// reservedSegment starts the names Local keeps for itself (temporary files,
// write probes); keys cannot use it.
const reservedSegment = ".openivs-"

// maxKeyLen is S3's limit on a key's length in bytes.
const maxKeyLen = 1024

// checkLocalKey reports whether key can name a file under a bucket
// directory: a relative slash-separated path whose segments are neither
// empty, "." nor "..", with no NUL and no reserved segment.
func checkLocalKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > maxKeyLen:
		return fmt.Errorf("key longer than %d bytes", maxKeyLen)
	case strings.ContainsRune(key, 0):
		return errors.New("key holds a NUL byte")
	case strings.HasPrefix(key, "/"):
		return errors.New("absolute key")
	case filepath.Separator != '/' && strings.ContainsRune(key, filepath.Separator):
		return fmt.Errorf("key holds the path separator %q", filepath.Separator)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return errors.New("key has an empty segment")
		case seg == "." || seg == "..":
			return fmt.Errorf("key has a %q segment", seg)
		case strings.HasPrefix(seg, reservedSegment):
			return fmt.Errorf("key segments starting with %q are reserved", reservedSegment)
		}
	}
	return nil
}
