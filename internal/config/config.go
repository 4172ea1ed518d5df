// Package config owns openivs's settings: their defaults, validation, and
// loading from a YAML file (--config), OPENIVS_* environment variables and
// command-line flags, in that order of increasing precedence.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config holds every setting of `openivs serve`.
type Config struct {
	DataDir    string // --data-dir: state, generated TLS cert, credentials, recordings
	HTTPAddr   string // --http-addr: APIs, playback, player, console
	HTTPSAddr  string // --https-addr: the same handler over TLS (HTTP/2); empty = off
	RTMPAddr   string // --rtmp-addr
	RTMPSAddr  string // --rtmps-addr
	SRTAddr    string // --srt-addr (UDP)
	Region     string // --region
	AccountID  string // --account-id (12 digits)
	PublicHost string // --public-host: host in ingestEndpoint / playbackUrl

	EventWebhooks []string // --event-webhook, repeatable
	// EventSinks are the webhooks of the config file's `event-sinks:` list,
	// each with its own secret and optional event pattern.
	EventSinks []EventSink
	// EventWebhookSecret signs deliveries to the --event-webhook URLs; from
	// OPENIVS_EVENT_WEBHOOK_SECRET only (never a flag). Empty: generated
	// into DATA_DIR/event-webhook-secret.
	EventWebhookSecret string
	// EventRetryMaxAge is how long an undeliverable event is retried before
	// it is dead-lettered (--event-retry-max-age, 24 h).
	EventRetryMaxAge time.Duration
	// EventRetryMaxBackoff caps the exponential backoff between delivery
	// attempts (--event-retry-max-backoff, 1 min).
	EventRetryMaxBackoff time.Duration

	ConfigFile string // --config: the YAML file these settings were read from
	TLSCert    string // --tls-cert: PEM certificate for RTMPS/HTTPS
	TLSKey     string // --tls-key: PEM private key for RTMPS/HTTPS

	// Store is "sqlite" (embedded, in DataDir) or a postgres:// DSN.
	Store     string
	LogLevel  string // debug, info, warn, error
	LogFormat string // text, json

	MaxBodyBytes      int64
	DisableRateLimits bool
	NATSURL           string // empty: no NATS

	// StreamIdleTimeout ends a live stream that receives no data this long
	// (--stream-idle-timeout; IVS: 30 s). Tests shorten it.
	StreamIdleTimeout time.Duration

	// MaxTranscodes bounds the concurrent transcodes (STANDARD/ADVANCED
	// streams) of this node (--max-transcodes; 0 = from the CPU count,
	// see transcode.DefaultCapacity). Beyond it a stream fails with
	// "Transcode capacity exceeded".
	MaxTranscodes int
	// FFmpeg is the ffmpeg binary transcoding runs (--ffmpeg; "ffmpeg" on PATH).
	FFmpeg string

	// AuditDir receives the audit log of API calls (--audit-dir); empty is
	// DATA_DIR/audit, AuditOff turns the audit log off.
	AuditDir string
	// AuditMaxFileBytes rotates an audit file before it grows past this
	// (--audit-max-file-bytes; files also rotate every hour).
	AuditMaxFileBytes int64
	// GeoIPDB is a MaxMind-format country database (--geoip-db) for
	// restriction policies' allowedCountries and viewer countries in
	// metrics; without it every viewer's country is unknown (allowed).
	GeoIPDB string
	// TrustedProxies are addresses or CIDRs (--trusted-proxies) whose
	// X-Forwarded-For is believed; other peers' is ignored.
	TrustedProxies []string
	// AuditS3Bucket, when set, receives every closed audit file (gzipped,
	// then deleted locally) in the S3 store below (--audit-s3-bucket).
	AuditS3Bucket string

	// The S3-compatible object store (--s3-endpoint, empty: AWS S3;
	// --s3-region, empty: --region; --s3-access-key-id,
	// --s3-secret-access-key). Buckets are addressed path-style. With
	// credentials, recordings go there; without, to DATA_DIR/recordings.
	S3Endpoint        string
	S3Region          string
	S3AccessKeyID     string
	S3SecretAccessKey string

	// Root API credentials, from OPENIVS_ACCESS_KEY_ID /
	// OPENIVS_SECRET_ACCESS_KEY only (never a flag: command lines leak).
	// Empty means the app reads or generates DATA_DIR/credentials.
	AccessKeyID     string
	SecretAccessKey string

	// ChatReviewHandlers map Lambda ARNs of chat rooms' messageReviewHandler
	// to the HTTP endpoints standing in for them ("ARN=URL",
	// --chat-review-handler).
	ChatReviewHandlers []string
	// ChatLogDir stands in for the CloudWatch Logs and Firehose
	// destinations of chat logging configurations (--chat-log-dir; empty
	// is DATA_DIR/chat-logs). S3 destinations go to the object store.
	ChatLogDir string

	// Quotas override IVS's default resource quotas by name (QuotaNames).
	Quotas map[string]int
	// RateLimits override per-operation requests per second by operation name.
	RateLimits map[string]float64
}

// Environment variables for the root credentials and the webhook secret.
const (
	EnvAccessKeyID        = "OPENIVS_ACCESS_KEY_ID"
	EnvSecretAccessKey    = "OPENIVS_SECRET_ACCESS_KEY"
	EnvEventWebhookSecret = "OPENIVS_EVENT_WEBHOOK_SECRET"
)

// EventSink is one webhook of the config file's event-sinks: list.
type EventSink struct {
	// Name identifies the sink's delivery progress across restarts
	// (default: "webhook:" + URL).
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature of each request body.
	Secret string `yaml:"secret"`
	// Pattern is an EventBridge event pattern (a mapping); nil: every event.
	Pattern any `yaml:"pattern"`
}

// QuotaNames are the keys accepted under `quotas:`: IVS's, then IVS
// Chat's (prefixed chat-).
var QuotaNames = []string{
	"channels",
	"stream-keys-per-channel",
	"playback-key-pairs",
	"playback-restriction-policies",
	"restriction-policy-countries",
	"restriction-policy-origins",
	"recording-configurations",
	"concurrent-streams",
	"concurrent-views",
	// IVS Chat's.
	"chat-rooms",
	"chat-logging-configurations",
	"chat-concurrent-connections",
}

// lambdaARN is the pattern IVS Chat accepts as a messageReviewHandler uri.
var lambdaARN = regexp.MustCompile(`^arn:aws:lambda:[a-z0-9-]+:[0-9]{12}:function:.+`)

// ParseReviewHandler splits a --chat-review-handler value "ARN=URL" (the
// ARN has no '=', the URL may) and checks both halves.
func ParseReviewHandler(spec string) (arn, endpoint string, err error) {
	arn, endpoint, ok := strings.Cut(strings.TrimSpace(spec), "=")
	if !ok || !lambdaARN.MatchString(arn) || len(arn) > 170 {
		return "", "", fmt.Errorf("chat-review-handler %q: want LAMBDA_ARN=URL, with an ARN like arn:aws:lambda:us-west-2:123456789012:function:name", spec)
	}
	u, perr := url.Parse(endpoint)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("chat-review-handler %q: %q is not an http:// or https:// URL", spec, endpoint)
	}
	return arn, endpoint, nil
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		DataDir:              "./data",
		HTTPAddr:             "127.0.0.1:8080",
		RTMPAddr:             "127.0.0.1:1935",
		RTMPSAddr:            "127.0.0.1:1936",
		SRTAddr:              "127.0.0.1:9000",
		Region:               "us-west-2",
		AccountID:            "123456789012",
		PublicHost:           "localhost",
		Store:                "sqlite",
		LogLevel:             "info",
		LogFormat:            "text",
		MaxBodyBytes:         1 << 20,
		StreamIdleTimeout:    30 * time.Second,
		EventRetryMaxAge:     24 * time.Hour,
		EventRetryMaxBackoff: time.Minute,
		FFmpeg:               "ffmpeg",
		AuditMaxFileBytes:    64 << 20,
	}
}

// AuditOff as --audit-dir turns the audit log off.
const AuditOff = "off"

// AuditPath is the directory of the audit log, or "" when it is off.
func (c *Config) AuditPath() string {
	switch c.AuditDir {
	case AuditOff:
		return ""
	case "":
		return filepath.Join(c.DataDir, "audit")
	}
	return c.AuditDir
}

// ChatLogPath is the directory standing in for CloudWatch Logs and
// Firehose destinations of chat logging.
func (c *Config) ChatLogPath() string {
	if c.ChatLogDir == "" {
		return filepath.Join(c.DataDir, "chat-logs")
	}
	return c.ChatLogDir
}

// ReviewHandlers maps Lambda ARNs to their stand-in URLs
// (--chat-review-handler); Validate has checked every entry.
func (c *Config) ReviewHandlers() map[string]string {
	out := make(map[string]string, len(c.ChatReviewHandlers))
	for _, spec := range c.ChatReviewHandlers {
		if arn, endpoint, err := ParseReviewHandler(spec); err == nil {
			out[arn] = endpoint
		}
	}
	return out
}

var (
	regionPattern    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	hostPattern      = regexp.MustCompile(`^[A-Za-z0-9.\-_:%]+$`) // IPv6 without brackets
	bucketPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$`)
)

// Validate reports every invalid setting, one per line.
func (c *Config) Validate() error {
	var errs []error
	addr := func(flag, v string, optional bool) {
		if v == "" {
			if !optional {
				errs = append(errs, fmt.Errorf("--%s: an address (host:port) is required", flag))
			}
			return
		}
		if err := validateAddr(v); err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: %w", flag, v, err))
		}
	}
	addr("http-addr", c.HTTPAddr, false)
	addr("https-addr", c.HTTPSAddr, true)
	addr("rtmp-addr", c.RTMPAddr, false)
	addr("rtmps-addr", c.RTMPSAddr, false)
	addr("srt-addr", c.SRTAddr, false)

	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir: must not be empty"))
	}
	if !regionPattern.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("--region %q: not an AWS region name (like us-west-2)", c.Region))
	}
	if !accountIDPattern.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("--account-id %q: must be exactly 12 digits", c.AccountID))
	}
	if c.PublicHost == "" || !hostPattern.MatchString(c.PublicHost) {
		errs = append(errs, fmt.Errorf("--public-host %q: must be a bare host name or IP address (no scheme, path or port)", c.PublicHost))
	} else if strings.Count(c.PublicHost, ":") == 1 {
		errs = append(errs, fmt.Errorf("--public-host %q: must not include a port", c.PublicHost))
	}
	for i, sink := range c.EventSinks {
		u, err := url.Parse(sink.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("event-sinks[%d].url %q: must be an http:// or https:// URL", i, sink.URL))
		}
		if sink.Secret == "" {
			errs = append(errs, fmt.Errorf("event-sinks[%d].secret: required (it signs every request)", i))
		}
	}
	if c.EventRetryMaxAge <= 0 {
		errs = append(errs, fmt.Errorf("--event-retry-max-age %s: must be positive", c.EventRetryMaxAge))
	}
	if c.EventRetryMaxBackoff <= 0 {
		errs = append(errs, fmt.Errorf("--event-retry-max-backoff %s: must be positive", c.EventRetryMaxBackoff))
	}
	for _, w := range c.EventWebhooks {
		u, err := url.Parse(w)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--event-webhook %q: must be an http:// or https:// URL", w))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key must be given together"))
	}
	if c.Store != "sqlite" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		errs = append(errs, fmt.Errorf("--store: must be \"sqlite\" or a postgres:// URL, got %q", redactDSN(c.Store)))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: must be debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: must be text or json", c.LogFormat))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("--max-body-bytes %d: must be positive", c.MaxBodyBytes))
	}
	if c.AuditMaxFileBytes <= 0 {
		errs = append(errs, fmt.Errorf("--audit-max-file-bytes %d: must be positive", c.AuditMaxFileBytes))
	}
	if c.S3Endpoint != "" {
		if u, err := url.Parse(c.S3Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--s3-endpoint %q: must be an http:// or https:// URL", c.S3Endpoint))
		}
	}
	if c.S3Region != "" && !regionPattern.MatchString(c.S3Region) {
		errs = append(errs, fmt.Errorf("--s3-region %q: not a region name (like us-east-1)", c.S3Region))
	}
	if (c.S3AccessKeyID == "") != (c.S3SecretAccessKey == "") {
		errs = append(errs, errors.New("--s3-access-key-id and --s3-secret-access-key must be given together"))
	} else if c.S3AccessKeyID == "" && (c.S3Endpoint != "" || c.S3Region != "") {
		// Without credentials recordings would go to local disk, not to
		// the store named.
		errs = append(errs, errors.New("--s3-endpoint/--s3-region: the S3 store needs --s3-access-key-id and --s3-secret-access-key"))
	}
	if c.AuditS3Bucket != "" {
		if !bucketPattern.MatchString(c.AuditS3Bucket) {
			errs = append(errs, fmt.Errorf("--audit-s3-bucket %q: not an S3 bucket name", c.AuditS3Bucket))
		}
		if c.AuditPath() == "" {
			errs = append(errs, errors.New("--audit-s3-bucket: the audit log is off (--audit-dir off)"))
		}
		if c.S3AccessKeyID == "" {
			errs = append(errs, errors.New("--audit-s3-bucket: needs --s3-access-key-id and --s3-secret-access-key"))
		}
	}
	if c.NATSURL != "" {
		for _, one := range strings.Split(c.NATSURL, ",") {
			if u, err := url.Parse(strings.TrimSpace(one)); err != nil || u.Scheme == "" || u.Host == "" {
				errs = append(errs, fmt.Errorf("--nats-url %q: must be a URL like nats://host:4222", one))
			}
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s must be set together", EnvAccessKeyID, EnvSecretAccessKey))
	}
	seenARN := map[string]bool{}
	for _, spec := range c.ChatReviewHandlers {
		arn, _, err := ParseReviewHandler(spec)
		if err != nil {
			errs = append(errs, err)
		} else if seenARN[arn] {
			errs = append(errs, fmt.Errorf("chat-review-handler: %s is mapped twice", arn))
		}
		seenARN[arn] = true
	}
	for _, name := range sortedKeys(c.Quotas) {
		if !isQuotaName(name) {
			errs = append(errs, fmt.Errorf("quotas: unknown quota %q (known: %s)", name, strings.Join(QuotaNames, ", ")))
		} else if c.Quotas[name] < 0 {
			errs = append(errs, fmt.Errorf("quotas: %s must not be negative", name))
		}
	}
	for _, name := range sortedKeys(c.RateLimits) {
		if v := c.RateLimits[name]; !(v > 0) {
			errs = append(errs, fmt.Errorf("rate-limits: %s must be a positive number of requests per second", name))
		}
	}
	return errors.Join(errs...)
}

func validateAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("not host:port (use :0 for a free port)")
	}
	if host != "" && strings.ContainsAny(host, " /") {
		return errors.New("invalid host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func isQuotaName(name string) bool {
	for _, q := range QuotaNames {
		if q == name {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redactDSN hides a password in a store DSN for error messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}
