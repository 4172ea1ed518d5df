// Package s3test gives tests a real S3-compatible server: a Versity S3
// gateway (posix backend, in a temporary directory) that the test starts on
// a free port. The versitygw binary comes from PATH, else from the user
// cache, else it is built there from source (go install, about a minute
// once). OPENIVS_NO_SERVICES=1 turns a gateway that cannot be had into a
// loud skip.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the Versity gateway release the tests run.
const Version = "v1.0.14"

// Server is a running S3-compatible server.
type Server struct {
	Endpoint        string // http://127.0.0.1:PORT
	Region          string
	AccessKeyID     string
	SecretAccessKey string

	bin           string
	root, sidecar string // the posix backend's data: buckets and objects survive a restart

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of the gateway.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Start runs a private gateway for the test; it stops at the test's end.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		if os.Getenv("OPENIVS_NO_SERVICES") == "1" {
			t.Skipf("\n!!!!!!!! SKIPPED: no S3 server: %v, and OPENIVS_NO_SERVICES=1.\n", err)
		}
		t.Fatalf("no S3 server for the test: %v (put versitygw on PATH, or OPENIVS_NO_SERVICES=1 to skip)", err)
	}
	srv := &Server{Region: "us-west-2", AccessKeyID: "S3TESTACCESSKEY", SecretAccessKey: "s3-test-secret-key", bin: bin,
		root: filepath.Join(t.TempDir(), "root"), sidecar: filepath.Join(t.TempDir(), "meta")}
	for _, d := range []string{srv.root, srv.sidecar} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(srv.Stop)
	var lastErr error
	for range 3 { // the free port may be taken between probe and bind
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if lastErr = srv.run(addr); lastErr == nil {
			srv.Endpoint = "http://" + addr
			t.Logf("s3test: versitygw %s at %s", Version, srv.Endpoint)
			return srv
		}
	}
	t.Fatalf("starting versitygw: %v", lastErr)
	return nil
}

// Stop ends the gateway abruptly (SIGKILL), as an outage would: clients
// get connection errors until Restart. Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Restart runs the gateway again on the same port with the same
// credentials and data, so buckets and objects written before Stop are
// there again. It stops a running gateway first.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	addr := strings.TrimPrefix(s.Endpoint, "http://")
	var lastErr error
	// The port is ours only by convention while stopped: another process
	// may hold it for a moment; try for a while.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if lastErr = s.run(addr); lastErr == nil {
			t.Logf("s3test: versitygw restarted at %s", s.Endpoint)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("restarting versitygw at %s: %v", addr, lastErr)
}

// run starts the gateway on addr and waits until it answers.
func (s *Server) run(addr string) error {
	var out bytes.Buffer
	cmd := exec.Command(s.bin, "--port", addr, "--access", s.AccessKeyID, "--secret", s.SecretAccessKey,
		"--region", s.Region, "--quiet",
		// Metadata in a side directory: no need for xattrs on the test's filesystem.
		"posix", "--sidecar", s.sidecar, s.root)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	endpoint := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("versitygw exited: %s", out.String())
		default:
		}
		if resp, err := http.Get(endpoint + "/"); err == nil {
			resp.Body.Close() // any answer (403 unsigned) means it serves
			s.mu.Lock()
			s.proc = p
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("versitygw did not answer on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// binary finds or builds versitygw.
func binary() (string, error) {
	buildOnce.Do(func() { buildBin, buildErr = findOrBuild() })
	return buildBin, buildErr
}

func findOrBuild() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "openivs-test", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("versitygw is not installed and there is no go command to build it: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Build into a private directory and rename: test binaries of other
	// packages may be building the same thing right now.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", "github.com/versity/versitygw/cmd/versitygw@"+Version)
	cmd.Dir = tmp // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building versitygw %s: %v\n%s", Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", err
	}
	return bin, nil
}
