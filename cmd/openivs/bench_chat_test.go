package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBenchChatUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"extra argument", []string{"now"}, "unexpected argument"},
		{"no clients", []string{"--clients", "0"}, "--clients"},
		{"no rate", []string{"--rate", "0"}, "--rate"},
		{"rate over the room maximum", []string{"--rate", "101"}, "--rate"},
		{"more senders than clients", []string{"--clients", "2", "--senders", "3"}, "--senders"},
		{"no duration", []string{"--duration", "0s"}, "--duration"},
		{"content too short for the timestamp", []string{"--content-length", "10"}, "--content-length"},
		{"chat URL without endpoint", []string{"--chat-url", "ws://x/chat"}, "--endpoint"},
		{"endpoint without credentials", []string{"--endpoint", "http://127.0.0.1:1"}, "credentials"},
		{"bad flag", []string{"--clients", "many"}, "invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, env := range []string{"OPENIVS_ACCESS_KEY_ID", "OPENIVS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
				t.Setenv(env, "")
			}
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"bench", "chat"}, tc.args...), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2\nstderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr does not mention %q:\n%s", tc.want, stderr.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "openivs bench chat") {
		t.Fatalf("bench help: exit %d, %q", code, stdout.String())
	}
}

// chatReport is the part of `openivs bench chat --json` the tests check.
type chatReport struct {
	OK                  bool
	Clients, Connected  int
	Senders             int
	Sent, Accepted      int64
	Expected, Delivered int64
	Lost                int64
	Latency             struct{ N int }
	IdleBytesPerConn    float64
	MemoryMethod        string
	ServerCPUPercent    float64
}

func runBenchChat(t *testing.T, args ...string) chatReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"bench", "chat", "--json"}, args...), &stdout, &stderr)
	var rep chatReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is no JSON report: %v\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
	if code != 0 || !rep.OK {
		t.Fatalf("exit %d, OK %v\nstdout: %s\nstderr: %s", code, rep.OK, stdout.String(), stderr.String())
	}
	return rep
}

// checkRun checks what every run must show: everyone connected, every
// accepted message reached everyone, latencies for all of them.
func checkRun(t *testing.T, rep chatReport, clients int) {
	t.Helper()
	if rep.Connected != clients || rep.Clients != clients {
		t.Fatalf("connected %d of %d", rep.Connected, rep.Clients)
	}
	if rep.Accepted == 0 || rep.Expected != rep.Accepted*int64(clients) || rep.Delivered != rep.Expected || rep.Lost != 0 {
		t.Fatalf("accepted %d, expected %d, delivered %d, lost %d", rep.Accepted, rep.Expected, rep.Delivered, rep.Lost)
	}
	if rep.Latency.N != int(rep.Delivered) {
		t.Fatalf("%d latencies for %d deliveries", rep.Latency.N, rep.Delivered)
	}
	if rep.MemoryMethod == "" {
		t.Fatal("idle memory not measured")
	}
}

// TestBenchChatInProcess runs the benchmark small against a node it
// starts itself.
func TestBenchChatInProcess(t *testing.T) {
	rep := runBenchChat(t, "--clients", "200", "--rate", "10", "--duration", "2s")
	checkRun(t, rep, 200)
	if rep.Senders != 2 || rep.Sent < 15 {
		t.Fatalf("%d senders sent %d", rep.Senders, rep.Sent)
	}
	// In-process the figure (~12 KB a connection, 2.4 MB in all) is well
	// above the heap's noise (tens of KB: with 20 connections a CI run
	// once measured -850 B); a server's /metrics (no forced GC) is not.
	t.Logf("idle memory %.0f B per connection", rep.IdleBytesPerConn)
	if rep.IdleBytesPerConn <= 0 {
		t.Fatalf("idle memory %v B per connection", rep.IdleBytesPerConn)
	}
	if rep.ServerCPUPercent != -1 || !strings.Contains(rep.MemoryMethod, "in-process") {
		t.Fatalf("in-process run reports server CPU %v, memory %q", rep.ServerCPUPercent, rep.MemoryMethod)
	}
}

// TestBenchChatEndpoint runs it against `openivs serve` with the API rate
// limits on, credentials from the environment.
func TestBenchChatEndpoint(t *testing.T) {
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	const key, secret = "AKIABENCHCHATTEST000", "bench-chat-test-secret-bench-chat-test-00"
	creds := "[default]\naws_access_key_id=" + key + "\naws_secret_access_key=" + secret + "\n"
	if err := os.WriteFile(filepath.Join(dataDir, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bin, dataDir)
	srv.waitReady(t, 30*time.Second)
	t.Setenv("OPENIVS_ACCESS_KEY_ID", key)
	t.Setenv("OPENIVS_SECRET_ACCESS_KEY", secret)
	rep := runBenchChat(t, "--endpoint", "http://127.0.0.1:"+strconv.Itoa(srv.ports["http"]),
		"--server-pid", strconv.Itoa(srv.cmd.Process.Pid),
		"--clients", "20", "--senders", "4", "--rate", "20", "--duration", "2s")
	checkRun(t, rep, 20)
	if rep.ServerCPUPercent < 0 || !strings.Contains(rep.MemoryMethod, "/metrics") {
		t.Fatalf("endpoint run reports server CPU %v, memory %q", rep.ServerCPUPercent, rep.MemoryMethod)
	}
}
