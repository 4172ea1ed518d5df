package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the openivs binary built once for the tests of this package.
var binary struct {
	once sync.Once
	path string
	err  error
}

func buildBinary(tb testing.TB) string {
	tb.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "openivs-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "openivs")
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		// Built like `make build`, without -race, so RSS and start time are real.
		cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-X main.version=test-1.2.3 -X main.commit=abc123",
			"-o", binary.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		tb.Fatal(binary.err)
	}
	return binary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.path != "" {
		os.RemoveAll(filepath.Dir(binary.path))
	}
	os.Exit(code)
}

// cleanEnv is the test's environment without OPENIVS_* settings.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OPENIVS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// server is one running `openivs serve`.
type server struct {
	cmd     *exec.Cmd
	dataDir string
	stdout  *syncBuffer
	stderr  *syncBuffer
	ports   map[string]int
	exited  chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServer(tb testing.TB, bin, dataDir string, extraArgs ...string) *server {
	tb.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0",
		"--rtmp-addr", "127.0.0.1:0", "--rtmps-addr", "127.0.0.1:0", "--srt-addr", "127.0.0.1:0"}, extraArgs...)
	s := &server{cmd: exec.Command(bin, args...), dataDir: dataDir,
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	tb.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// waitReady polls ports.json and then /healthz until it answers 200.
func (s *server) waitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-s.exited:
			tb.Fatalf("serve exited early: %v\nstderr:\n%s", err, s.stderr.String())
		default:
		}
		if s.ports == nil {
			if raw, err := os.ReadFile(filepath.Join(s.dataDir, "ports.json")); err == nil {
				var ports map[string]int
				if json.Unmarshal(raw, &ports) == nil {
					s.ports = ports
				}
			}
		}
		if s.ports != nil {
			resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(s.ports["http"]) + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not ready within %v\nstderr:\n%s", timeout, s.stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// banner waits for the startup block, which is printed just after /healthz
// turns 200, to be complete.
func (s *server) banner(tb testing.TB) string {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := s.stdout.String()
		if strings.Contains(out, "--endpoint-url") && strings.HasSuffix(out, "\n") {
			return out
		}
		if time.Now().After(deadline) {
			tb.Fatalf("incomplete startup block:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop(tb testing.TB, timeout time.Duration) int {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case err := <-s.exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			tb.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		tb.Fatalf("no exit %v after SIGTERM\nstderr:\n%s", timeout, s.stderr.String())
		return -1
	}
}

func TestServe(t *testing.T) {
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")

	s := startServer(t, bin, dataDir)
	s.waitReady(t, 10*time.Second)
	for _, name := range []string{"http", "rtmp", "rtmps", "srt"} {
		if s.ports[name] <= 0 {
			t.Fatalf("ports.json lacks %s: %v", name, s.ports)
		}
	}
	if _, ok := s.ports["https"]; ok {
		t.Fatalf("https port without --https-addr: %v", s.ports)
	}

	// The banner shows the generated secret once, the URLs with actual ports.
	var creds struct{ id, secret string }
	cred, err := os.ReadFile(filepath.Join(dataDir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(cred))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "aws_access_key_id="); ok {
			creds.id = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "aws_secret_access_key="); ok {
			creds.secret = v
		}
	}
	out := s.banner(t)
	for _, want := range []string{
		"http://localhost:" + strconv.Itoa(s.ports["http"]),
		"rtmps://localhost:" + strconv.Itoa(s.ports["rtmps"]) + "/app/<stream-key>",
		"srt://localhost:" + strconv.Itoa(s.ports["srt"]),
		"/play/<channelId>",
		"/chat  (regionOrUrl of the IVS chat SDK)",
		"us-west-2",
		dataDir,
		creds.id,
		"export AWS_ACCESS_KEY_ID=" + creds.id + " AWS_SECRET_ACCESS_KEY=" + creds.secret + " AWS_REGION=us-west-2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}

	if code := s.stop(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\nstderr:\n%s", code, s.stderr.String())
	}
	if strings.Contains(s.stderr.String(), creds.secret) {
		t.Fatal("the secret access key was logged")
	}

	// Second run: credentials reused, secret not printed; SIGINT works too.
	s2 := startServer(t, bin, dataDir, "--log-format", "json")
	s2.waitReady(t, 10*time.Second)
	if out := s2.banner(t); strings.Contains(out, creds.secret) || !strings.Contains(out, creds.id) ||
		!strings.Contains(out, filepath.Join(dataDir, "credentials")) {
		t.Fatalf("second banner should name the credentials file and not show the secret:\n%s", out)
	}
	if err := s2.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s2.exited:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\nstderr:\n%s", err, s2.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGINT")
	}
	if strings.Contains(s2.stderr.String(), creds.secret) {
		t.Fatal("the secret access key was logged")
	}
	if !strings.HasPrefix(s2.stderr.String(), "{") {
		t.Fatalf("--log-format json not honoured:\n%s", s2.stderr.String())
	}
}

func TestServeConfigErrors(t *testing.T) {
	bin := buildBinary(t)
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"serve", "--account-id", "12"}, nil, "12 digits"},
		{[]string{"serve", "--bogus"}, nil, "bogus"},
		{[]string{"serve"}, []string{"OPENIVS_REGION=nowhere"}, "--region"},
		{[]string{"frobnicate"}, nil, "unknown command"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = cleanEnv(tt.env...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v: err %v, want exit code 2", tt.args, err)
		}
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: output lacks %q:\n%s", tt.args, tt.want, out)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "openivs test-1.2.3 (commit abc123") {
		t.Fatalf("version: %v %q", err, out)
	}
	out, err = exec.Command(bin, "help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "openivs serve") {
		t.Fatalf("help: %v %q", err, out)
	}
	out, err = exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OPENIVS_DATA_DIR") || !strings.Contains(string(out), "--event-webhook") {
		t.Fatalf("serve --help: %v %q", err, out)
	}
}

// BenchmarkServeStartup measures the time from exec to /healthz 200
// (ms/start) and the idle resident memory of `openivs serve` (MB-rss), on a
// data dir that already holds credentials and a certificate (a restart).
func BenchmarkServeStartup(b *testing.B) {
	bin := buildBinary(b)
	dataDir := filepath.Join(b.TempDir(), "data")
	first := startServer(b, bin, dataDir)
	first.waitReady(b, 10*time.Second)
	first.stop(b, 10*time.Second)

	var total time.Duration
	var maxRSS float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s := startServer(b, bin, dataDir)
		s.waitReady(b, 10*time.Second)
		total += time.Since(start)

		time.Sleep(500 * time.Millisecond) // idle
		rss, err := vmRSS(s.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		maxRSS = max(maxRSS, rss)
		if code := s.stop(b, 10*time.Second); code != 0 {
			b.Fatalf("exit code %d", code)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
	b.ReportMetric(maxRSS, "MB-rss")
	b.ReportMetric(0, "ns/op") // wall time per op includes the idle wait: meaningless
}

// vmRSS reads a process's resident set size in MB from /proc.
func vmRSS(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest) // "12345 kB"
			kb, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS")
}
