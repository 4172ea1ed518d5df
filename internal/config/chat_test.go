package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestChatSettings(t *testing.T) {
	const (
		arnA = "arn:aws:lambda:us-west-2:123456789012:function:review-a"
		arnB = "arn:aws:lambda:us-west-2:123456789012:function:review-b"
	)
	cfg, err := Load([]string{"--data-dir", "/srv/ivs"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ChatLogPath() != "/srv/ivs/chat-logs" || len(cfg.ReviewHandlers()) != 0 {
		t.Fatalf("defaults: %q %v", cfg.ChatLogPath(), cfg.ReviewHandlers())
	}

	// A list from each source replaces the one before; other lists keep
	// theirs (a --trusted-proxies flag must not drop the file's handlers).
	file := writeFile(t, "chat-log-dir: /logs\nchat-review-handler:\n  - "+arnA+"=http://127.0.0.1:9/a?x=1\ntrusted-proxies: [10.0.0.0/8]\n")
	cfg, err = Load([]string{"--config", file, "--trusted-proxies", "192.168.0.0/16"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{arnA: "http://127.0.0.1:9/a?x=1"}; !reflect.DeepEqual(cfg.ReviewHandlers(), want) || cfg.ChatLogPath() != "/logs" {
		t.Fatalf("file: %v %q", cfg.ReviewHandlers(), cfg.ChatLogPath())
	}
	if !reflect.DeepEqual(cfg.TrustedProxies, []string{"192.168.0.0/16"}) {
		t.Fatalf("trusted proxies %v", cfg.TrustedProxies)
	}
	env := envMap(map[string]string{"OPENIVS_CHAT_REVIEW_HANDLER": arnA + "=http://env/a," + arnB + "=https://env/b"})
	cfg, err = Load([]string{"--config", file}, env)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{arnA: "http://env/a", arnB: "https://env/b"}; !reflect.DeepEqual(cfg.ReviewHandlers(), want) {
		t.Fatalf("env: %v", cfg.ReviewHandlers())
	}
	cfg, err = Load([]string{"--config", file, "--chat-review-handler", arnB + "=http://flag/b"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{arnB: "http://flag/b"}; !reflect.DeepEqual(cfg.ReviewHandlers(), want) {
		t.Fatalf("flags: %v", cfg.ReviewHandlers())
	}

	for _, bad := range []string{
		"http://no-arn",
		arnA,
		arnA + "=",
		arnA + "=ftp://host/x",
		"arn:aws:lambda:us-west-2:123:function:x=http://h/",
		"arn:aws:s3:::bucket=http://h/",
	} {
		if _, err := Load([]string{"--chat-review-handler", bad}, envMap(nil)); err == nil || !strings.Contains(err.Error(), "chat-review-handler") {
			t.Errorf("--chat-review-handler %q: err %v", bad, err)
		}
	}
	if _, err := Load([]string{"--chat-review-handler", arnA + "=http://h/1", "--chat-review-handler", arnA + "=http://h/2"}, envMap(nil)); err == nil ||
		!strings.Contains(err.Error(), "mapped twice") {
		t.Errorf("duplicate ARN: %v", err)
	}
	if _, err := Load([]string{"--config", writeFile(t, "quotas:\n  chat-rooms: 3\n  chat-concurrent-connections: 10\n")}, envMap(nil)); err != nil {
		t.Errorf("chat quotas: %v", err)
	}
}
