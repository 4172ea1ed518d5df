package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "openivs.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	if cfg.DataDir != "./data" || cfg.HTTPAddr != "127.0.0.1:8080" || cfg.HTTPSAddr != "" ||
		cfg.RTMPAddr != "127.0.0.1:1935" || cfg.RTMPSAddr != "127.0.0.1:1936" || cfg.SRTAddr != "127.0.0.1:9000" ||
		cfg.Region != "us-west-2" || cfg.AccountID != "123456789012" || cfg.PublicHost != "localhost" ||
		cfg.Store != "sqlite" || cfg.LogLevel != "info" || cfg.LogFormat != "text" ||
		cfg.MaxBodyBytes != 1048576 || cfg.DisableRateLimits || cfg.NATSURL != "" || cfg.StreamIdleTimeout != 30*time.Second {
		t.Fatalf("unexpected defaults %+v", cfg)
	}
}

func TestEnvNames(t *testing.T) {
	for flagName, env := range map[string]string{
		"data-dir":            "OPENIVS_DATA_DIR",
		"https-addr":          "OPENIVS_HTTPS_ADDR",
		"event-webhook":       "OPENIVS_EVENT_WEBHOOK",
		"disable-rate-limits": "OPENIVS_DISABLE_RATE_LIMITS",
		"max-body-bytes":      "OPENIVS_MAX_BODY_BYTES",
	} {
		if got := EnvName(flagName); got != env {
			t.Errorf("EnvName(%q) = %q, want %q", flagName, got, env)
		}
	}
}

// TestPrecedence checks defaults < file < env < flags for every kind of setting.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
data-dir: /from/file
http-addr: 127.0.0.1:1001
region: eu-west-1
max-body-bytes: 2000
disable-rate-limits: true
event-webhook: [http://file.example/a, http://file.example/b]
log-format: json
`)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name: "file over defaults",
			args: []string{"--config", file},
			check: func(t *testing.T, c Config) {
				if c.DataDir != "/from/file" || c.HTTPAddr != "127.0.0.1:1001" || c.Region != "eu-west-1" ||
					c.MaxBodyBytes != 2000 || !c.DisableRateLimits || c.LogFormat != "json" {
					t.Fatalf("file not applied: %+v", c)
				}
				if !reflect.DeepEqual(c.EventWebhooks, []string{"http://file.example/a", "http://file.example/b"}) {
					t.Fatalf("webhooks %v", c.EventWebhooks)
				}
				if c.RTMPAddr != "127.0.0.1:1935" || c.ConfigFile != file {
					t.Fatalf("defaults lost: %+v", c)
				}
			},
		},
		{
			name: "config file from env",
			env:  map[string]string{"OPENIVS_CONFIG": file},
			check: func(t *testing.T, c Config) {
				if c.DataDir != "/from/file" {
					t.Fatalf("OPENIVS_CONFIG not read: %+v", c)
				}
			},
		},
		{
			name: "env over file",
			args: []string{"--config", file},
			env: map[string]string{
				"OPENIVS_DATA_DIR":            "/from/env",
				"OPENIVS_REGION":              "ap-northeast-1",
				"OPENIVS_MAX_BODY_BYTES":      "3000",
				"OPENIVS_DISABLE_RATE_LIMITS": "false",
				"OPENIVS_EVENT_WEBHOOK":       "http://env.example/1, http://env.example/2",
				"OPENIVS_HTTP_ADDR":           "", // empty counts as unset
			},
			check: func(t *testing.T, c Config) {
				if c.DataDir != "/from/env" || c.Region != "ap-northeast-1" || c.MaxBodyBytes != 3000 || c.DisableRateLimits {
					t.Fatalf("env not applied: %+v", c)
				}
				if c.HTTPAddr != "127.0.0.1:1001" {
					t.Fatalf("empty env should not override: %q", c.HTTPAddr)
				}
				if !reflect.DeepEqual(c.EventWebhooks, []string{"http://env.example/1", "http://env.example/2"}) {
					t.Fatalf("webhooks %v", c.EventWebhooks)
				}
			},
		},
		{
			name: "flags over env and file",
			args: []string{"--config", file, "--data-dir", "/from/flag", "--region=sa-east-1",
				"--max-body-bytes", "4000", "--disable-rate-limits",
				"--event-webhook", "http://flag.example/x", "--event-webhook", "http://flag.example/y"},
			env: map[string]string{
				"OPENIVS_DATA_DIR":            "/from/env",
				"OPENIVS_REGION":              "ap-northeast-1",
				"OPENIVS_MAX_BODY_BYTES":      "3000",
				"OPENIVS_DISABLE_RATE_LIMITS": "false",
				"OPENIVS_EVENT_WEBHOOK":       "http://env.example/1",
			},
			check: func(t *testing.T, c Config) {
				if c.DataDir != "/from/flag" || c.Region != "sa-east-1" || c.MaxBodyBytes != 4000 || !c.DisableRateLimits {
					t.Fatalf("flags not applied: %+v", c)
				}
				if !reflect.DeepEqual(c.EventWebhooks, []string{"http://flag.example/x", "http://flag.example/y"}) {
					t.Fatalf("webhooks %v", c.EventWebhooks)
				}
			},
		},
		{
			name: "bool flag with explicit false",
			args: []string{"--config", file, "--disable-rate-limits=false"},
			check: func(t *testing.T, c Config) {
				if c.DisableRateLimits {
					t.Fatal("--disable-rate-limits=false ignored")
				}
			},
		},
		{
			name: "empty flag turns https off",
			args: []string{"--https-addr="},
			env:  map[string]string{"OPENIVS_HTTPS_ADDR": "127.0.0.1:8443"},
			check: func(t *testing.T, c Config) {
				if c.HTTPSAddr != "" {
					t.Fatalf("https %q", c.HTTPSAddr)
				}
			},
		},
		{
			name: "every flag",
			args: []string{"--data-dir", "d", "--http-addr", ":0", "--https-addr", ":0", "--rtmp-addr", ":0",
				"--rtmps-addr", "[::1]:0", "--srt-addr", "0.0.0.0:0", "--region", "us-east-1", "--account-id", "000000000001",
				"--public-host", "ivs.example.com", "--tls-cert", "c.pem", "--tls-key", "k.pem",
				"--store", "postgres://u:p@db/openivs", "--log-level", "debug", "--log-format", "json",
				"--nats-url", "nats://127.0.0.1:4222"},
			check: func(t *testing.T, c Config) {
				want := Default()
				want.DataDir, want.HTTPAddr, want.HTTPSAddr, want.RTMPAddr = "d", ":0", ":0", ":0"
				want.RTMPSAddr, want.SRTAddr, want.Region, want.AccountID = "[::1]:0", "0.0.0.0:0", "us-east-1", "000000000001"
				want.PublicHost, want.TLSCert, want.TLSKey = "ivs.example.com", "c.pem", "k.pem"
				want.Store, want.LogLevel, want.LogFormat, want.NATSURL = "postgres://u:p@db/openivs", "debug", "json", "nats://127.0.0.1:4222"
				if !reflect.DeepEqual(c, want) {
					t.Fatalf("got  %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name: "credentials from env",
			env:  map[string]string{EnvAccessKeyID: "AKIAEXAMPLE", EnvSecretAccessKey: "s3cr3t"},
			check: func(t *testing.T, c Config) {
				if c.AccessKeyID != "AKIAEXAMPLE" || c.SecretAccessKey != "s3cr3t" {
					t.Fatalf("credentials %q %q", c.AccessKeyID, c.SecretAccessKey)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestQuotasAndRateLimits(t *testing.T) {
	file := writeFile(t, `
quotas:
  channels: 10
  concurrent-streams: 2
rate-limits:
  CreateChannel: 50
  PutMetadata: 0.5
`)
	c, err := Load([]string{"--config", file}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Quotas, map[string]int{"channels": 10, "concurrent-streams": 2}) {
		t.Fatalf("quotas %v", c.Quotas)
	}
	if !reflect.DeepEqual(c.RateLimits, map[string]float64{"CreateChannel": 50, "PutMetadata": 0.5}) {
		t.Fatalf("rate limits %v", c.RateLimits)
	}
}

func TestEmptyAndCommentOnlyFile(t *testing.T) {
	for _, body := range []string{"", "# nothing here\n", "data-dir:\n"} {
		c, err := Load([]string{"--config", writeFile(t, body)}, envMap(nil))
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if c.DataDir != "./data" {
			t.Fatalf("%q: data dir %q", body, c.DataDir)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string // substring of the error
	}{
		{name: "unknown flag", args: []string{"--nope"}, want: "nope"},
		{name: "positional argument", args: []string{"extra"}, want: `unexpected argument "extra"`},
		{name: "bad int flag", args: []string{"--max-body-bytes", "lots"}, want: "max-body-bytes"},
		{name: "bad duration flag", args: []string{"--stream-idle-timeout", "soon"}, want: "stream-idle-timeout"},
		{name: "negative duration env", env: map[string]string{"OPENIVS_STREAM_IDLE_TIMEOUT": "-1s"}, want: "OPENIVS_STREAM_IDLE_TIMEOUT"},
		{name: "bad bool env", env: map[string]string{"OPENIVS_DISABLE_RATE_LIMITS": "maybe"}, want: "OPENIVS_DISABLE_RATE_LIMITS"},
		{name: "bad int env", env: map[string]string{"OPENIVS_MAX_BODY_BYTES": "1k"}, want: "OPENIVS_MAX_BODY_BYTES"},
		{name: "address without port", args: []string{"--http-addr", "localhost"}, want: "--http-addr"},
		{name: "address with bad port", args: []string{"--rtmp-addr", "127.0.0.1:99999"}, want: "--rtmp-addr"},
		{name: "empty required address", args: []string{"--srt-addr="}, want: "--srt-addr: an address"},
		{name: "bad region", args: []string{"--region", "Mars"}, want: "--region"},
		{name: "short account id", args: []string{"--account-id", "1234"}, want: "12 digits"},
		{name: "letters in account id", env: map[string]string{"OPENIVS_ACCOUNT_ID": "12345678901a"}, want: "12 digits"},
		{name: "public host with scheme", args: []string{"--public-host", "http://x"}, want: "--public-host"},
		{name: "public host with port", args: []string{"--public-host", "x:80"}, want: "port"},
		{name: "bad webhook", args: []string{"--event-webhook", "ftp://x"}, want: "--event-webhook"},
		{name: "cert without key", args: []string{"--tls-cert", "c.pem"}, want: "--tls-key"},
		{name: "bad store", args: []string{"--store", "mysql://x"}, want: "--store"},
		{name: "store password redacted", args: []string{"--store", "mysql://u:hunter2@x"}, want: "xxxxx"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: "--log-level"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: "--log-format"},
		{name: "zero body", args: []string{"--max-body-bytes", "0"}, want: "--max-body-bytes"},
		{name: "half credentials", env: map[string]string{EnvAccessKeyID: "AKIA"}, want: EnvSecretAccessKey},
		{name: "missing file", args: []string{"--config", "/does/not/exist.yaml"}, want: "config file"},
		{name: "unknown yaml key", file: "data-dir: x\nhttp_addr: :0\n", want: `unknown setting "http_addr"`},
		{name: "yaml syntax", file: "data-dir: [x\n", want: "config file"},
		{name: "yaml not a map", file: "- a\n- b\n", want: "mapping"},
		{name: "yaml list for scalar", file: "region: [a, b]\n", want: "region"},
		{name: "yaml duplicate", file: "region: us-east-1\nregion: us-east-2\n", want: "twice"},
		{name: "yaml nested config", file: "config: other.yaml\n", want: "config"},
		{name: "yaml bad int", file: "max-body-bytes: big\n", want: "max-body-bytes"},
		{name: "unknown quota", file: "quotas:\n  widgets: 3\n", want: `unknown quota "widgets"`},
		{name: "negative quota", file: "quotas:\n  channels: -1\n", want: "negative"},
		{name: "quota not int", file: "quotas:\n  channels: lots\n", want: "quotas.channels"},
		{name: "quotas not map", file: "quotas: 3\n", want: "quotas"},
		{name: "zero rate limit", file: "rate-limits:\n  CreateChannel: 0\n", want: "rate-limits: CreateChannel"},
		{name: "bad nats url", args: []string{"--nats-url", "localhost"}, want: "--nats-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			_, err := Load(args, envMap(tt.env))
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks a password: %v", err)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	if _, err := Load([]string{"--help"}, envMap(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v, want flag.ErrHelp", err)
	}
	var b strings.Builder
	Usage(&b)
	for _, s := range settings {
		if !strings.Contains(b.String(), "--"+s.name) || !strings.Contains(b.String(), EnvName(s.name)) {
			t.Errorf("usage lacks --%s or its env twin", s.name)
		}
	}
}

func FuzzApplyYAML(f *testing.F) {
	f.Add([]byte("data-dir: x\nquotas:\n  channels: 3\nrate-limits:\n  GetChannel: 2\n"))
	f.Add([]byte("event-webhook: [http://a, http://b]\n"))
	f.Add([]byte("- 1\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := Default()
		_ = c.applyYAML(raw)
		_ = c.Validate()
	})
}

func TestStreamIdleTimeout(t *testing.T) {
	cfg, err := Load([]string{"--stream-idle-timeout", "4s"}, envMap(map[string]string{"OPENIVS_STREAM_IDLE_TIMEOUT": "9s"}))
	if err != nil || cfg.StreamIdleTimeout != 4*time.Second {
		t.Fatalf("flag: %v, %v", cfg.StreamIdleTimeout, err)
	}
	cfg, err = Load(nil, envMap(map[string]string{"OPENIVS_STREAM_IDLE_TIMEOUT": "9s"}))
	if err != nil || cfg.StreamIdleTimeout != 9*time.Second {
		t.Fatalf("env: %v, %v", cfg.StreamIdleTimeout, err)
	}
}
