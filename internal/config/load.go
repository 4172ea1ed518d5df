package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// kind is how a setting's text is parsed.
type kind int

const (
	kindString kind = iota
	kindInt
	kindBool
	kindList // repeatable flag, comma-separated env, YAML sequence
)

// setting is one flag, its environment twin and its YAML key.
type setting struct {
	name  string // flag name and YAML key
	kind  kind
	usage string
	// set applies a value; for kindList it appends one element.
	set func(c *Config, v string) error
	// reset empties a kindList setting before a new source (file, env,
	// flags) gives its elements.
	reset func(c *Config)
	// def renders the default for the help text.
	def func(c *Config) string
}

// EnvName is the environment twin of a flag: --data-dir ↔ OPENIVS_DATA_DIR.
func EnvName(flagName string) string {
	return "OPENIVS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func duration(name, usage string, field func(c *Config) *time.Duration) setting {
	return setting{
		name: name, kind: kindString, usage: usage,
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d <= 0 {
				return fmt.Errorf("not a positive duration: %q", v)
			}
			*field(c) = d
			return nil
		},
		def: func(c *Config) string { return field(c).String() },
	}
}

func str(name, usage string, field func(c *Config) *string) setting {
	return setting{
		name: name, kind: kindString, usage: usage,
		set: func(c *Config, v string) error { *field(c) = v; return nil },
		def: func(c *Config) string { return *field(c) },
	}
}

var settings = []setting{
	str("config", "YAML `FILE` with the same settings (keys are the flag names, plus quotas:, rate-limits: and event-sinks:)",
		func(c *Config) *string { return &c.ConfigFile }),
	str("data-dir", "`DIR` for state (SQLite), generated TLS cert, credentials and local recordings",
		func(c *Config) *string { return &c.DataDir }),
	str("http-addr", "`ADDR` for all HTTP: APIs, playback, player, console (:0 picks a free port)",
		func(c *Config) *string { return &c.HTTPAddr }),
	str("https-addr", "`ADDR` serving the same handler over TLS with HTTP/2 (empty: off)",
		func(c *Config) *string { return &c.HTTPSAddr }),
	str("rtmp-addr", "`ADDR` for RTMP ingest (channels with insecureIngest only)",
		func(c *Config) *string { return &c.RTMPAddr }),
	str("rtmps-addr", "`ADDR` for RTMPS ingest (TLS)",
		func(c *Config) *string { return &c.RTMPSAddr }),
	str("srt-addr", "UDP `ADDR` for SRT ingest",
		func(c *Config) *string { return &c.SRTAddr }),
	str("region", "AWS `REGION` the APIs answer as",
		func(c *Config) *string { return &c.Region }),
	str("account-id", "12-digit AWS account `ID` of the root credentials",
		func(c *Config) *string { return &c.AccountID }),
	str("public-host", "`HOST` used in ingestEndpoint and playbackUrl",
		func(c *Config) *string { return &c.PublicHost }),
	{
		name: "event-webhook", kind: kindList,
		usage: "`URL` that EventBridge-shaped events are POSTed to (repeatable; env: comma-separated)",
		set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "" {
				c.EventWebhooks = append(c.EventWebhooks, v)
			}
			return nil
		},
		def:   func(c *Config) string { return strings.Join(c.EventWebhooks, ",") },
		reset: func(c *Config) { c.EventWebhooks = nil },
	},
	str("geoip-db", "MaxMind-format country database `FILE` for restriction policies' allowedCountries (none: every country is allowed)",
		func(c *Config) *string { return &c.GeoIPDB }),
	{
		name: "trusted-proxies", kind: kindList,
		usage: "`CIDR` of a proxy or CDN whose X-Forwarded-For names the viewer (repeatable; env: comma-separated)",
		set: func(c *Config, v string) error {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.TrustedProxies = append(c.TrustedProxies, p)
				}
			}
			return nil
		},
		def:   func(c *Config) string { return strings.Join(c.TrustedProxies, ",") },
		reset: func(c *Config) { c.TrustedProxies = nil },
	},
	{
		name: "chat-review-handler", kind: kindList,
		usage: "`ARN=URL`: messages of chat rooms whose messageReviewHandler is the Lambda ARN are POSTed to URL for review (repeatable; env: comma-separated)",
		set: func(c *Config, v string) error {
			if v = strings.TrimSpace(v); v == "" {
				return nil
			}
			if _, _, err := ParseReviewHandler(v); err != nil {
				return err
			}
			c.ChatReviewHandlers = append(c.ChatReviewHandlers, v)
			return nil
		},
		def:   func(c *Config) string { return strings.Join(c.ChatReviewHandlers, ",") },
		reset: func(c *Config) { c.ChatReviewHandlers = nil },
	},
	str("chat-log-dir", "`DIR` standing in for CloudWatch Logs and Firehose destinations of chat logging configurations (default: DATA_DIR/chat-logs)",
		func(c *Config) *string { return &c.ChatLogDir }),
	duration("event-retry-max-age", "`DURATION` an undeliverable event is retried before it is dead-lettered",
		func(c *Config) *time.Duration { return &c.EventRetryMaxAge }),
	duration("event-retry-max-backoff", "longest wait between delivery attempts of an event, `DURATION`",
		func(c *Config) *time.Duration { return &c.EventRetryMaxBackoff }),
	str("tls-cert", "PEM certificate `FILE` for RTMPS/HTTPS (default: self-signed, generated in DATA_DIR/tls)",
		func(c *Config) *string { return &c.TLSCert }),
	str("tls-key", "PEM private key `FILE` matching --tls-cert",
		func(c *Config) *string { return &c.TLSKey }),
	str("store", "state store: \"sqlite\" (in DATA_DIR) or a postgres:// `DSN`",
		func(c *Config) *string { return &c.Store }),
	str("log-level", "log `LEVEL`: debug, info, warn, error",
		func(c *Config) *string { return &c.LogLevel }),
	str("log-format", "log `FORMAT`: text or json",
		func(c *Config) *string { return &c.LogFormat }),
	{
		name: "max-body-bytes", kind: kindInt, usage: "largest API request body in `BYTES`",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return fmt.Errorf("not an integer: %q", v)
			}
			c.MaxBodyBytes = n
			return nil
		},
		def: func(c *Config) string { return strconv.FormatInt(c.MaxBodyBytes, 10) },
	},
	{
		name: "disable-rate-limits", kind: kindBool, usage: "turn API throttling off (benchmarks, load tests)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("not a boolean: %q", v)
			}
			c.DisableRateLimits = b
			return nil
		},
		def: func(c *Config) string { return strconv.FormatBool(c.DisableRateLimits) },
	},
	{
		name: "stream-idle-timeout", kind: kindString, usage: "`DURATION` without data after which a live stream ends",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d <= 0 {
				return fmt.Errorf("not a positive duration: %q", v)
			}
			c.StreamIdleTimeout = d
			return nil
		},
		def: func(c *Config) string { return c.StreamIdleTimeout.String() },
	},
	{
		name: "max-transcodes", kind: kindInt, usage: "concurrent transcoded (STANDARD/ADVANCED) streams on this node, `N` (0: from the CPU count)",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return fmt.Errorf("not a non-negative integer: %q", v)
			}
			c.MaxTranscodes = n
			return nil
		},
		def: func(c *Config) string { return strconv.Itoa(c.MaxTranscodes) },
	},
	str("ffmpeg", "ffmpeg binary `PATH` that transcodes STANDARD and ADVANCED channels",
		func(c *Config) *string { return &c.FFmpeg }),
	str("nats-url", "NATS server `URL` for events and fan-out across nodes (empty: none)",
		func(c *Config) *string { return &c.NATSURL }),
	{
		name: "audit-dir", kind: kindString,
		usage: "`DIR` the audit log of API calls is written to (CloudTrail-shaped JSON lines); \"off\" turns it off",
		set:   func(c *Config, v string) error { c.AuditDir = strings.TrimSpace(v); return nil },
		def: func(c *Config) string {
			if c.AuditDir == "" {
				return "DATA_DIR/audit"
			}
			return c.AuditDir
		},
	},
	{
		name: "audit-max-file-bytes", kind: kindInt, usage: "start a new audit log file before one grows past `BYTES` (files also rotate hourly)",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("not a positive integer: %q", v)
			}
			c.AuditMaxFileBytes = n
			return nil
		},
		def: func(c *Config) string { return strconv.FormatInt(c.AuditMaxFileBytes, 10) },
	},
	str("audit-s3-bucket", "S3 `BUCKET` that closed audit log files are delivered to (gzipped, then deleted locally; empty: none)",
		func(c *Config) *string { return &c.AuditS3Bucket }),
	str("s3-endpoint", "`URL` of the S3-compatible object store (empty: AWS S3); buckets are addressed path-style",
		func(c *Config) *string { return &c.S3Endpoint }),
	str("s3-region", "`REGION` of the object store (empty: --region)",
		func(c *Config) *string { return &c.S3Region }),
	str("s3-access-key-id", "access key `ID` for the object store, which then takes the recordings (without it they go to DATA_DIR/recordings)",
		func(c *Config) *string { return &c.S3AccessKeyID }),
	str("s3-secret-access-key", "secret access `KEY` for the object store (prefer the environment or the config file: command lines are visible to other users)",
		func(c *Config) *string { return &c.S3SecretAccessKey }),
}

func lookupSetting(name string) (setting, bool) {
	for _, s := range settings {
		if s.name == name {
			return s, true
		}
	}
	return setting{}, false
}

// flagValue is one flag occurrence on the command line.
type flagValue struct{ name, value string }

// newFlagSet declares every setting as a flag; each occurrence is appended
// to *seen, to be applied after the file and the environment.
func newFlagSet(seen *[]flagValue) *flag.FlagSet {
	fs := flag.NewFlagSet("openivs serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range settings {
		s := s
		record := func(v string) error {
			// Parse now so that a bad value is reported with its flag name.
			var scratch Config
			if err := s.set(&scratch, v); err != nil {
				return err
			}
			*seen = append(*seen, flagValue{s.name, v})
			return nil
		}
		if s.kind == kindBool {
			fs.BoolFunc(s.name, s.usage, record)
		} else {
			fs.Func(s.name, s.usage, record)
		}
	}
	return fs
}

// Load builds the configuration of `openivs serve` from defaults, the YAML
// file named by --config (or OPENIVS_CONFIG), OPENIVS_* environment
// variables and args, each overriding the ones before, and validates it.
// lookupEnv is os.LookupEnv outside tests; empty environment values count as
// unset. It returns flag.ErrHelp for -h/--help.
func Load(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	env := func(name string) (string, bool) {
		v, ok := lookupEnv(name)
		return v, ok && v != ""
	}

	var seen []flagValue
	fs := newFlagSet(&seen)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, flag.ErrHelp
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (flags look like --data-dir DIR)", fs.Arg(0))
	}

	cfg := Default()

	// The file: the last --config flag, else OPENIVS_CONFIG.
	file, _ := env(EnvName("config"))
	for _, f := range seen {
		if f.name == "config" {
			file = f.value
		}
	}
	if file != "" {
		if err := cfg.applyFile(file); err != nil {
			return Config{}, err
		}
		cfg.ConfigFile = file
	}

	// The environment.
	for _, s := range settings {
		if s.name == "config" {
			continue
		}
		v, ok := env(EnvName(s.name))
		if !ok {
			continue
		}
		if s.kind == kindList {
			s.reset(&cfg)
			for _, one := range strings.Split(v, ",") {
				if err := s.set(&cfg, one); err != nil {
					return Config{}, fmt.Errorf("%s: %w", EnvName(s.name), err)
				}
			}
			continue
		}
		if err := s.set(&cfg, v); err != nil {
			return Config{}, fmt.Errorf("%s: %w", EnvName(s.name), err)
		}
	}
	cfg.AccessKeyID, _ = env(EnvAccessKeyID)
	cfg.SecretAccessKey, _ = env(EnvSecretAccessKey)
	cfg.EventWebhookSecret, _ = env(EnvEventWebhookSecret)

	// The flags; a repeatable flag replaces what file and env gave.
	reset := map[string]bool{}
	for _, f := range seen {
		s, _ := lookupSetting(f.name)
		if s.kind == kindList && !reset[s.name] {
			s.reset(&cfg)
			reset[s.name] = true
		}
		_ = s.set(&cfg, f.value) // already parsed once by the flag set
	}

	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// applyFile reads the YAML file over c. Keys are flag names plus the
// `quotas:` and `rate-limits:` maps; anything else is an error.
func (c *Config) applyFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := c.applyYAML(raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

func (c *Config) applyYAML(raw []byte) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // only comments
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the top level must be a mapping of setting: value", root.Line)
	}
	done := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		name := key.Value
		if done[name] {
			return fmt.Errorf("line %d: %s is set twice", key.Line, name)
		}
		done[name] = true
		if val.Tag == "!!null" {
			continue
		}
		switch name {
		case "quotas":
			if err := decodeMap(val, name, &c.Quotas); err != nil {
				return err
			}
			continue
		case "rate-limits":
			if err := decodeMap(val, name, &c.RateLimits); err != nil {
				return err
			}
			continue
		case "event-sinks":
			sinks, err := decodeEventSinks(val)
			if err != nil {
				return err
			}
			c.EventSinks = sinks
			continue
		case "config":
			return fmt.Errorf("line %d: config: a config file cannot name another config file", key.Line)
		}
		s, ok := lookupSetting(name)
		if !ok {
			return fmt.Errorf("line %d: unknown setting %q (known: %s)", key.Line, name, knownKeys())
		}
		if s.kind == kindList {
			var list []string
			if val.Kind == yaml.ScalarNode {
				list = []string{val.Value}
			} else if err := val.Decode(&list); err != nil {
				return fmt.Errorf("line %d: %s: want a list of strings", val.Line, name)
			}
			s.reset(c)
			for _, v := range list {
				if err := s.set(c, v); err != nil {
					return fmt.Errorf("line %d: %s: %w", val.Line, name, err)
				}
			}
			continue
		}
		if val.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %s: want a single value", val.Line, name)
		}
		if err := s.set(c, val.Value); err != nil {
			return fmt.Errorf("line %d: %s: %w", val.Line, name, err)
		}
	}
	return nil
}

// decodeEventSinks reads the event-sinks: list, refusing unknown keys (a
// misspelt "patern" would otherwise silently deliver everything).
func decodeEventSinks(node *yaml.Node) ([]EventSink, error) {
	bad := fmt.Errorf("line %d: event-sinks: want a list of {url, secret, name, pattern}", node.Line)
	if node.Kind != yaml.SequenceNode {
		return nil, bad
	}
	var sinks []EventSink
	for _, item := range node.Content {
		if item.Kind != yaml.MappingNode {
			return nil, bad
		}
		for i := 0; i < len(item.Content); i += 2 {
			switch k := item.Content[i]; k.Value {
			case "url", "secret", "name", "pattern":
			default:
				return nil, fmt.Errorf("line %d: event-sinks: unknown key %q (known: url, secret, name, pattern)", k.Line, k.Value)
			}
		}
		var sink EventSink
		if err := item.Decode(&sink); err != nil {
			return nil, fmt.Errorf("line %d: event-sinks: %w", item.Line, err)
		}
		sinks = append(sinks, sink)
	}
	return sinks, nil
}

// decodeMap merges a YAML mapping of name → number into *dst.
func decodeMap[V int | float64](node *yaml.Node, what string, dst *map[string]V) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s: want a mapping of name: number", node.Line, what)
	}
	if *dst == nil {
		*dst = map[string]V{}
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, val := node.Content[i], node.Content[i+1]
		var v V
		if val.Kind != yaml.ScalarNode || val.Decode(&v) != nil {
			return fmt.Errorf("line %d: %s.%s: want a number, got %q", val.Line, what, key.Value, val.Value)
		}
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("line %d: %s.%s: want a finite number", val.Line, what, key.Value)
		}
		(*dst)[key.Value] = v
	}
	return nil
}

func knownKeys() string {
	var names []string
	for _, s := range settings {
		if s.name != "config" {
			names = append(names, s.name)
		}
	}
	return strings.Join(append(names, "quotas", "rate-limits", "event-sinks"), ", ")
}

// Usage writes the help for `openivs serve`: every flag with its default
// and environment twin.
func Usage(w io.Writer) {
	def := Default()
	fmt.Fprintf(w, "Usage: openivs serve [flags]\n\nFlags (each also read from its OPENIVS_* environment variable; precedence: defaults < --config file < env < flags):\n")
	for _, s := range settings {
		arg := ""
		if s.kind != kindBool {
			arg = " " + argName(s.usage)
		}
		fmt.Fprintf(w, "  --%s%s\n      %s\n      env %s", s.name, arg, strings.ReplaceAll(s.usage, "`", ""), EnvName(s.name))
		if d := s.def(&def); d != "" && d != "false" {
			fmt.Fprintf(w, ", default %s", d)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nRoot API credentials: env %s and %s; when unset they are read from\nor generated into DATA_DIR/credentials (0600).\n", EnvAccessKeyID, EnvSecretAccessKey)
}

// argName is the back-quoted word in a usage string, as the flag package does.
func argName(usage string) string {
	if _, rest, ok := strings.Cut(usage, "`"); ok {
		if name, _, ok := strings.Cut(rest, "`"); ok {
			return name
		}
	}
	return "VALUE"
}
