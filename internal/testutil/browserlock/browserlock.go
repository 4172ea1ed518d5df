// Package browserlock lets one test at a time drive a headless browser,
// across test binaries: `go test ./...` runs packages in parallel, and two
// Chromiums decoding video next to encoders and servers on a 2-core
// machine make stalls the machine's, not the code's.
package browserlock

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Acquire blocks until no other test (in this or another test process)
// holds the browser lock, and releases it when t ends. It is not
// reentrant: a test holding it must not acquire it again, nor may its
// subtests (each flock is its own open file, so that would deadlock).
func Acquire(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "openivs-test-browser.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("browser lock: %v", err)
	}
	// flock is released by the kernel if the process dies, so a crashed
	// test never leaves the lock held.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("browser lock: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
