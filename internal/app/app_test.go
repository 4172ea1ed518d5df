package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"github.com/openivs/openivs/internal/chat"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ivssdk "github.com/aws/aws-sdk-go-v2/service/ivs"

	"github.com/openivs/openivs/internal/config"
)

func testConfig(dataDir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.HTTPSAddr = "127.0.0.1:0"
	cfg.RTMPAddr = "127.0.0.1:0"
	cfg.RTMPSAddr = "127.0.0.1:0"
	cfg.SRTAddr = "127.0.0.1:0"
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startApp starts a node and registers its shutdown.
func startApp(t *testing.T, cfg config.Config) *App {
	t.Helper()
	ctx := context.Background()
	a, err := New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		a.Shutdown(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a
}

func shutdown(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if string(body) != `{"status":"ok"}` {
					t.Fatalf("healthz body %q", body)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz not 200 in time (last err %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestStartServeShutdownRestart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(dataDir)
	a := startApp(t, cfg)

	if !a.Ready() {
		t.Fatal("not ready after Start")
	}
	ports := a.Ports()
	for _, name := range []string{"http", "https", "rtmp", "rtmps", "srt"} {
		if ports[name] <= 0 {
			t.Fatalf("no %s port in %v", name, ports)
		}
	}
	base := "http://127.0.0.1:" + strconv.Itoa(ports["http"])
	waitHealthy(t, base)

	// ports.json matches.
	raw, err := os.ReadFile(filepath.Join(dataDir, "ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk map[string]int
	if err := json.Unmarshal(raw, &onDisk); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(onDisk, ports) {
		t.Fatalf("ports.json %v, Ports() %v", onDisk, ports)
	}

	// Data dir and credentials.
	if m := fileMode(t, dataDir); m != 0o700 {
		t.Fatalf("data dir mode %o", m)
	}
	credPath := filepath.Join(dataDir, "credentials")
	if m := fileMode(t, credPath); m != 0o600 {
		t.Fatalf("credentials mode %o", m)
	}
	creds := a.Credentials()
	if !creds.Generated || !regexp.MustCompile(`^AKIA[A-Z0-9]{16}$`).MatchString(creds.AccessKeyID) || len(creds.SecretAccessKey) != 40 {
		t.Fatalf("generated credentials look wrong: id %q, secret length %d, generated %v",
			creds.AccessKeyID, len(creds.SecretAccessKey), creds.Generated)
	}
	credRaw, _ := os.ReadFile(credPath)
	wantCred := "[default]\naws_access_key_id=" + creds.AccessKeyID + "\naws_secret_access_key=" + creds.SecretAccessKey + "\n"
	if string(credRaw) != wantCred {
		t.Fatalf("credentials file %q", credRaw)
	}

	// Generated certificate.
	certPath, keyPath := filepath.Join(dataDir, "tls", "cert.pem"), filepath.Join(dataDir, "tls", "key.pem")
	if m := fileMode(t, keyPath); m != 0o600 {
		t.Fatalf("key.pem mode %o", m)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("cert.pem holds no certificate")
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("certificate does not cover %s: %v", host, err)
		}
	}

	// RTMPS speaks TLS ≥ 1.2 with that certificate (the RTMP handshake that
	// follows is the ingest package's business).
	rtmpsAddr := "127.0.0.1:" + strconv.Itoa(ports["rtmps"])
	conn, err := tls.Dial("tcp", rtmpsAddr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("RTMPS TLS handshake: %v", err)
	}
	if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Fatalf("RTMPS negotiated TLS version %x", v)
	}
	conn.Close()
	if _, err := tls.Dial("tcp", rtmpsAddr, &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("RTMPS accepted TLS 1.1")
	}

	// The RTMP port accepts TCP (ingest's own tests cover the protocol).
	plain, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ports["rtmp"]))
	if err != nil {
		t.Fatal(err)
	}
	plain.Close()

	// HTTPS serves the same handler over HTTP/2.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
		ForceAttemptHTTP2: true,
	}}
	resp, err := client.Get("https://127.0.0.1:" + strconv.Itoa(ports["https"]) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("HTTPS healthz: %d over %s", resp.StatusCode, resp.Proto)
	}
	client.CloseIdleConnections()

	// API requests reach the AWS API server (an unsigned call is refused by it).
	resp, err = http.Post(base+"/ListChannels", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("x-amzn-RequestId") == "" || resp.StatusCode < 400 {
		t.Fatalf("unsigned ListChannels: status %d, request id %q", resp.StatusCode, resp.Header.Get("x-amzn-RequestId"))
	}
	resp, err = http.Get(base + "/no-such-page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}

	// Shutdown releases every port.
	shutdown(t, a)
	if a.Ready() {
		t.Fatal("ready after Shutdown")
	}
	for _, name := range []string{"http", "https", "rtmp", "rtmps"} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports[name]))
		if err != nil {
			t.Fatalf("%s port not released: %v", name, err)
		}
		ln.Close()
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(ports["srt"]))
	if err != nil {
		t.Fatalf("srt port not released: %v", err)
	}
	pc.Close()
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}

	// Restart: credentials and certificate are reused.
	b := startApp(t, cfg)
	again := b.Credentials()
	if again.Generated || again.AccessKeyID != creds.AccessKeyID || again.SecretAccessKey != creds.SecretAccessKey {
		t.Fatalf("credentials not reused: generated %v, same id %v", again.Generated, again.AccessKeyID == creds.AccessKeyID)
	}
	certAgain, _ := os.ReadFile(certPath)
	if string(certAgain) != string(certPEM) {
		t.Fatal("certificate regenerated on restart")
	}
	if b.Ports()["http"] == 0 {
		t.Fatal("restart without ports")
	}
	shutdown(t, b)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestHealthzBeforeStart(t *testing.T) {
	a, err := New(context.Background(), testConfig(t.TempDir()), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	a.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("healthz before Start: %d", rec.Code)
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.HTTPSAddr = ""
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIAENVENVENVENVENV0", "envsecret"
	a := startApp(t, cfg)
	if c := a.Credentials(); c.Generated || c.Source != "env" || c.AccessKeyID != cfg.AccessKeyID {
		t.Fatalf("credentials %+v", c.Source)
	}
	if _, err := os.Stat(filepath.Join(dir, "credentials")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("credentials file written with env credentials (err %v)", err)
	}
	if _, ok := a.Ports()["https"]; ok {
		t.Fatal("https port without --https-addr")
	}
	if got, want := a.PlaybackBaseURL(), "http://localhost:"+strconv.Itoa(a.Ports()["http"]); got != want {
		t.Fatalf("playback base %q, want %q", got, want)
	}
	cs := &credentialStore{root: a.Credentials(), account: cfg.AccountID}
	if secret, account, ok := cs.Lookup(cfg.AccessKeyID); !ok || account != cfg.AccountID || secret != "envsecret" {
		t.Fatalf("lookup: ok %v account %q", ok, account)
	}
	if _, _, ok := cs.Lookup("AKIAOTHER"); ok {
		t.Fatal("lookup of an unknown key succeeded")
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name   string
		modify func(c *config.Config)
		want   string
	}{
		{"port in use", func(c *config.Config) { c.RTMPSAddr = busy.Addr().String() }, "rtmps listener"},
		{"unknown rate-limit operation", func(c *config.Config) { c.RateLimits = map[string]float64{"MakeCoffee": 1} }, "MakeCoffee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			tt.modify(&cfg)
			a, err := New(context.Background(), cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Shutdown(context.Background())
			err = a.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start error %v, want %q", err, tt.want)
			}
			// Whatever was bound before the failure is released.
			if ln, err := net.Listen("tcp", cfg.HTTPAddr); err == nil {
				ln.Close()
			}
		})
	}
}

func TestQuotasAndRateLimitsApplied(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Quotas = map[string]int{}
	for _, name := range config.QuotaNames {
		cfg.Quotas[name] = 7
	}
	cfg.RateLimits = map[string]float64{"CreateChannel": 42}
	a, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	q := a.quotas()
	v := reflect.ValueOf(q)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).Int() != 7 {
			t.Errorf("quota %s = %d: config.QuotaNames and ivs.Quotas.Set disagree", v.Type().Field(i).Name, v.Field(i).Int())
		}
	}
	if cq := a.chatQuotas(); cq != (chat.Quotas{Rooms: 7, LoggingConfigurations: 7, ConcurrentConnections: 7}) {
		t.Errorf("chat quotas %+v: config.QuotaNames and chat.Quotas.Set disagree", cq)
	}
	if r := a.rateLimits(); r["CreateChannel"] != 42 || r["GetChannel"] == 0 {
		t.Fatalf("rate limits %v", r)
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		raw        string
		id, secret string
		ok         bool
	}{
		{"[default]\naws_access_key_id=A\naws_secret_access_key=S\n", "A", "S", true},
		{"# c\n[other]\naws_access_key_id=X\n[default]\naws_access_key_id = A \naws_secret_access_key= S/+x\n", "A", "S/+x", true},
		{"[other]\naws_access_key_id=A\naws_secret_access_key=S\n", "", "", false},
		{"[default]\naws_access_key_id=A\n", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		id, secret, err := parseCredentials([]byte(tt.raw))
		if (err == nil) != tt.ok || id != tt.id || secret != tt.secret {
			t.Errorf("parseCredentials(%q) = %q, %q, %v", tt.raw, id, secret, err)
		}
	}
}

func TestMalformedCredentialsFileIsKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := resolveCredentials(dir, "", ""); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err %v", err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != "garbage" {
		t.Fatal("malformed credentials file overwritten")
	}
}

func TestCertificateRenewal(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, err := loadOrCreateCertificate(dir, "", "", "ivs.example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	same, _ := loadOrCreateCertificate(dir, "", "", "ivs.example.com", now.Add(24*time.Hour))
	if string(same.Certificate[0]) != string(first.Certificate[0]) {
		t.Fatal("valid certificate not reused")
	}
	expiring, _ := loadOrCreateCertificate(dir, "", "", "ivs.example.com", now.Add(certValidity-certRenewBefore/2))
	if string(expiring.Certificate[0]) == string(first.Certificate[0]) {
		t.Fatal("expiring certificate reused")
	}
	renamed, _ := loadOrCreateCertificate(dir, "", "", "10.1.2.3", now)
	leaf, _ := x509.ParseCertificate(renamed.Certificate[0])
	if leaf.VerifyHostname("10.1.2.3") != nil {
		t.Fatal("certificate not regenerated for a new public host")
	}

	// Operator files win.
	certFile, keyFile := filepath.Join(dir, "tls", "cert.pem"), filepath.Join(dir, "tls", "key.pem")
	other := t.TempDir()
	given, err := loadOrCreateCertificate(other, certFile, keyFile, "localhost", now)
	if err != nil {
		t.Fatal(err)
	}
	if string(given.Certificate[0]) != string(renamed.Certificate[0]) {
		t.Fatal("--tls-cert not used")
	}
	if _, err := os.Stat(filepath.Join(other, "tls")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("generated a certificate although --tls-cert was given")
	}
}

// TestAPIThroughSDK drives the wiring end to end with the AWS SDK: root
// credentials, the account, and endpoints carrying the actual ports.
func TestAPIThroughSDK(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.PublicHost = "ivs.test"
	a := startApp(t, cfg)
	creds := a.Credentials()
	client := ivssdk.New(ivssdk.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"])),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey}, nil
		}),
	})
	ctx := context.Background()
	out, err := client.CreateChannel(ctx, &ivssdk.CreateChannelInput{Name: aws.String("wiring")})
	if err != nil {
		t.Fatal(err)
	}
	ch := out.Channel
	if !strings.HasPrefix(aws.ToString(ch.Arn), "arn:aws:ivs:us-west-2:123456789012:channel/") {
		t.Fatalf("channel arn %q", aws.ToString(ch.Arn))
	}
	if got, want := aws.ToString(ch.IngestEndpoint), "ivs.test:"+strconv.Itoa(a.Ports()["rtmps"]); got != want {
		t.Errorf("ingestEndpoint %q, want %q", got, want)
	}
	if ch.Srt == nil || aws.ToString(ch.Srt.Endpoint) != "ivs.test:"+strconv.Itoa(a.Ports()["srt"]) {
		t.Errorf("srt %+v", ch.Srt)
	}
	if got, want := aws.ToString(ch.PlaybackUrl), "https://ivs.test:"+strconv.Itoa(a.Ports()["https"]); !strings.HasPrefix(got, want) {
		t.Errorf("playbackUrl %q, want prefix %q", got, want)
	}

	// A wrong secret is refused.
	bad := ivssdk.New(ivssdk.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(a.Ports()["http"])),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: "wrong"}, nil
		}),
	})
	if _, err := bad.ListChannels(ctx, &ivssdk.ListChannelsInput{}); err == nil {
		t.Fatal("wrong secret accepted")
	}
}
