// Package natstest gives tests a NATS server with JetStream: the one on
// 127.0.0.1:4222 (or OPENIVS_TEST_NATS), or else a nats-server the test
// starts itself. OPENIVS_NO_SERVICES=1 turns a missing server into a loud
// skip.
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultURL is the machine's NATS server.
const DefaultURL = "nats://127.0.0.1:4222"

// URL returns a NATS URL with JetStream enabled.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("OPENIVS_TEST_NATS")
	if url == "" {
		url = DefaultURL
	}
	if jetStreamUp(url) {
		return url
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("OPENIVS_NO_SERVICES") == "1" {
			t.Skipf("\n!!!!!!!! SKIPPED: NATS is not reachable at %s, nats-server is not installed, and OPENIVS_NO_SERVICES=1.\n", url)
		}
		t.Fatalf("NATS is not reachable at %s and nats-server is not installed (apt-get install nats-server, "+
			"set OPENIVS_TEST_NATS, or OPENIVS_NO_SERVICES=1 to skip)", url)
	}
	return start(t, bin)
}

func jetStreamUp(url string) bool {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return false
	}
	_, err = js.AccountInfo()
	return err == nil
}

// start runs a private nats-server with JetStream on a free port.
func start(t testing.TB, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nats-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for !jetStreamUp(url) {
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on %s did not come up", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("natstest: started nats-server on %s", url)
	return url
}
