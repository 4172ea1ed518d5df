package messaging

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOfficialSDK runs test/chatsdk/sdk.test.mjs: the official
// amazon-ivs-chat-messaging SDK (npm, pinned in test/chatsdk) connecting,
// sending, receiving, deleting and disconnecting against this Server, and
// getting the SDK's own errors for a used or expired token and a missing
// capability. OPENIVS_NO_NODE=1 skips it; otherwise a missing Node fails.
func TestOfficialSDK(t *testing.T) {
	if os.Getenv("OPENIVS_NO_NODE") == "1" {
		t.Skip("SKIPPED: OPENIVS_NO_NODE=1 — the official chat SDK is NOT being tested against openivs")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "test", "chatsdk"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (set OPENIVS_NO_NODE=1 to skip): %v", err)
	}
	npmCI(t, dir)

	h := newHarness(t)
	// Mints tokens for the Node side in CreateChatToken's response shape.
	h.mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		var spec tokenSpec
		if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		token, tokenExpires, sessionExpires := h.ctl.issue(spec)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"token":                 token,
			"tokenExpirationTime":   tokenExpires.UTC().Format(time.RFC3339),
			"sessionExpirationTime": sessionExpires.UTC().Format(time.RFC3339),
		})
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --test-force-exit: the SDK leaks a refresh timer (minutes long) when it
	// reconnects after a session expiry; nothing of ours is left running.
	cmd := exec.CommandContext(ctx, node, "--test", "--test-force-exit", "--test-reporter=spec", "sdk.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHAT_URL="+h.url, "TOKEN_URL="+h.hs.URL+"/token", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	t.Logf("node --test sdk.test.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the official SDK's tests failed: %v", err)
	}
	if !strings.Contains(string(out), "fail 0") {
		t.Fatal("node reported failures")
	}
}

// npmCI installs test/chatsdk's locked packages when they are missing or
// older than the lock file.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm not found (set OPENIVS_NO_NODE=1 to skip): %v", err)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
