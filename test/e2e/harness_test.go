// Package e2e runs the real openivs binary and drives it through public
// clients: the AWS SDK for Go v2, raw SigV4-signed HTTP and the AWS CLI.
//
// TestMain builds ./cmd/openivs once; every test group starts its own
// server on free ports with a fresh data directory.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"

	"github.com/openivs/openivs/internal/bench"
	"github.com/openivs/openivs/internal/testutil/awstest"
)

// Fixed root credentials every test server runs with.
const (
	testAccessKeyID     = "AKIAE2ETESTROOT00001"
	testSecretAccessKey = "e2e/Secret+Key/0123456789abcdefghijklmn"
	testRegion          = "us-west-2"
	testAccountID       = "123456789012"
)

// binPath is the openivs binary built by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the repository root: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "openivs-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "openivs")
	// Built like `make build` (and the cmd/openivs tests), so the compiled
	// packages are shared in the build cache.
	cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/openivs")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/openivs failed: %v\n%s\n", err, out)
		return 1
	}
	return m.Run()
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// serverOpts configure one test server.
type serverOpts struct {
	// Config is the YAML written to a file passed with --config (empty: none).
	Config string
	// Store is passed as --store when set (sqlite by default).
	Store string
	// RateLimits keeps the default API rate limits on; by default tests run
	// with --disable-rate-limits.
	RateLimits bool
	// Args are extra flags.
	Args []string
	// DataDir reuses a data directory (a restart); empty: a fresh one.
	DataDir string
}

// server is a running openivs.
type server struct {
	DataDir string
	Ports   map[string]int
	HTTP    int // port of --http-addr
	RTMPS   int
	RTMP    int
	SRT     int
	// Endpoint is the API base URL (http://127.0.0.1:PORT).
	Endpoint string
	// PID is the server process's id.
	PID int

	stderr *lockedBuffer
	shown  bool // the output is already in a failure message
	stop   func()
	kill   func()
	// client is the HTTP client of every API client of this server. Its
	// idle connections are closed before the server is stopped: a
	// connection dialled but never used (the transport dials extra ones
	// under concurrency) holds http.Server.Shutdown for 5 s.
	client *http.Client
}

// Stop stops the server now (SIGTERM, waiting for a clean exit).
func (s *server) Stop() { s.stop() }

// Kill ends the server with SIGKILL, as a crash would.
func (s *server) Kill() { s.kill() }

// lockedBuffer collects a child's output; the child writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Stderr is what the server logged so far.
func (s *server) Stderr() string { return s.stderr.String() }

// childEnv is the environment of a server: ours without any OPENIVS_* or
// AWS_* variable (they would change its settings), plus the test credentials.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OPENIVS_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"OPENIVS_ACCESS_KEY_ID="+testAccessKeyID,
		"OPENIVS_SECRET_ACCESS_KEY="+testSecretAccessKey,
	)
	return append(env, extra...)
}

// startServer runs `openivs serve` on free loopback ports with a fresh data
// directory and waits until it is healthy. It is stopped (SIGTERM, then
// SIGKILL after 10 s) when t ends.
func startServer(t testing.TB, opts serverOpts) *server {
	t.Helper()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	} else {
		// A killed server leaves its ports.json; do not read the dead ports.
		_ = os.Remove(filepath.Join(dataDir, "ports.json"))
	}
	args := []string{"serve",
		"--data-dir", dataDir,
		"--http-addr", "127.0.0.1:0",
		"--rtmp-addr", "127.0.0.1:0",
		"--rtmps-addr", "127.0.0.1:0",
		"--srt-addr", "127.0.0.1:0",
		"--region", testRegion,
		"--account-id", testAccountID,
		"--public-host", "localhost",
	}
	if !opts.RateLimits {
		args = append(args, "--disable-rate-limits")
	}
	if opts.Store != "" {
		args = append(args, "--store", opts.Store)
	}
	if opts.Config != "" {
		file := filepath.Join(t.TempDir(), "openivs.yaml")
		if err := os.WriteFile(file, []byte(opts.Config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", file)
	}
	args = append(args, opts.Args...)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	srv := &server{DataDir: dataDir, stderr: &lockedBuffer{}, client: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
	cmd := exec.Command(binPath, args...)
	cmd.Env = childEnv()
	cmd.Stdout = srv.stderr // the banner; shown with the logs on failure
	cmd.Stderr = srv.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start openivs: %v", err)
	}
	srv.PID = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			transport.CloseIdleConnections()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				// A clean shutdown exits 0; "signal: terminated" would
				// mean the server did not handle SIGTERM.
				if err != nil && srv.HTTP != 0 {
					t.Errorf("openivs exited with %v after SIGTERM; output:\n%s", err, srv.Stderr())
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Errorf("openivs did not stop within 10 s of SIGTERM; output:\n%s", srv.Stderr())
			}
		})
	}
	srv.stop = stop
	srv.kill = func() {
		stopOnce.Do(func() {
			transport.CloseIdleConnections()
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() && !srv.shown {
			t.Logf("openivs serve %s output:\n%s", strings.Join(args[1:], " "), srv.Stderr())
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	portsFile := filepath.Join(dataDir, "ports.json")
	for {
		select {
		case err := <-exited:
			exited <- err
			srv.shown = true
			t.Fatalf("openivs serve %s exited early (%v); output:\n%s", strings.Join(args[1:], " "), err, srv.Stderr())
		default:
		}
		if srv.HTTP == 0 {
			if raw, err := os.ReadFile(portsFile); err == nil {
				var ports map[string]int
				if json.Unmarshal(raw, &ports) == nil && ports["http"] > 0 {
					srv.Ports = ports
					srv.HTTP, srv.RTMP, srv.RTMPS, srv.SRT = ports["http"], ports["rtmp"], ports["rtmps"], ports["srt"]
					srv.Endpoint = "http://127.0.0.1:" + strconv.Itoa(srv.HTTP)
				}
			}
		}
		if srv.HTTP != 0 && healthy(srv.Endpoint) {
			return srv
		}
		if time.Now().After(deadline) {
			stop()
			srv.shown = true
			t.Fatalf("openivs did not become healthy within 10 s (ports.json: %v); output:\n%s", srv.Ports, srv.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func healthy(endpoint string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(endpoint + "/healthz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// staticCreds is a credentials provider with fixed keys.
func staticCreds(id, secret string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "e2e"}, nil
	})
}

// ivsClient is the real SDK client for srv with the test root credentials
// and retries only of broken connections (awstest.Retryer), so every error
// surfaces as it was answered.
func ivsClient(t testing.TB, srv *server) *ivs.Client {
	t.Helper()
	return ivsClientWith(srv, testAccessKeyID, testSecretAccessKey)
}

func ivsClientWith(srv *server, id, secret string) *ivs.Client {
	return ivs.New(ivs.Options{
		BaseEndpoint: aws.String(srv.Endpoint),
		Region:       testRegion,
		Credentials:  staticCreds(id, secret),
		Retryer:      awstest.Retryer(),
		HTTPClient:   srv.client,
	})
}

// ctx returns a context that ends with the test (or after 60 s).
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// runOpenivs runs the built binary with args and returns its exit status,
// stdout and stderr. ctx is a safety net against a hang, not a measure.
func runOpenivs(ctx context.Context, t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("openivs %s: %v", strings.Join(args, " "), err)
	return -1, "", ""
}

// ChildProcesses lists the server's child processes named comm (e.g.
// "ffmpeg"), zombies included (state Z), from /proc.
func (s *server) ChildProcesses(t testing.TB, comm string) []childProcess {
	t.Helper()
	procs, err := bench.ChildProcesses(s.PID, comm)
	if err != nil {
		t.Fatal(err)
	}
	return procs
}

// childProcess is one child of the server.
type childProcess = bench.Process
