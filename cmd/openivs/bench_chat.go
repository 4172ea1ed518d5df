package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/openivs/openivs/internal/bench"
)

const benchChatUsage = `Usage: openivs bench chat [flags]

One IVS Chat room, --clients WebSocket clients connected to it (each with its
own CreateChatToken, as the official SDK connects), --rate messages a second
sent into it by --senders of them. Every client times every message from its
send to its arrival (the timestamp travels in the message's Content) and the
report gives p50/p90/p99/max over all deliveries, deliveries per second,
deliveries lost, CPU, and the server's memory per idle connection, measured
after every client has connected and before any message is sent.

Without --endpoint, a node starts in-process on a temporary data directory
(API rate limits off) and memory is read from the Go runtime after a forced
GC, less the bench clients' own share; CPU is then node and clients together
(--cpuprofile labels the clients' goroutines bench=client, so that
'go tool pprof -tags' splits them). With --endpoint (a running 'openivs
serve'), memory comes from the server's /metrics and its CPU from
--server-pid or /metrics; credentials from --access-key-id/--secret-access-key
or OPENIVS_ACCESS_KEY_ID/OPENIVS_SECRET_ACCESS_KEY (else AWS_*), and
CreateChatToken is paced at --token-rate.

The clients are lean (a bare socket each, one goroutine reading once sending
starts) but share the machine's cores with an in-process or local server.

Exit status: 0 every client connected and every accepted message reached every
client (and --max-p99/--max-idle-conn-bytes held when given), 1 otherwise, 2
usage error.

Flags:
`

// benchChatCmd runs `openivs bench chat`.
func benchChatCmd(args []string, stdout, stderr io.Writer) int {
	fs := benchFlags("openivs bench chat", benchChatUsage, stderr)
	var opts bench.ChatOptions
	var logLevel string
	var asJSON bool
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-west-2"
	}
	fs.IntVar(&opts.Clients, "clients", 5000, "connected clients, senders included")
	fs.Float64Var(&opts.Rate, "rate", 10, "messages a second sent into the room (at most 100, IVS's room maximum)")
	fs.IntVar(&opts.Senders, "senders", 0, "clients that send, round robin (0: enough that none sends more than 5 a second)")
	fs.DurationVar(&opts.Duration, "duration", 30e9, "sending window")
	fs.DurationVar(&opts.Drain, "drain", 10e9, "wait at most this long after the last send for deliveries")
	fs.IntVar(&opts.ContentLen, "content-length", 64, "characters of each message's Content")
	fs.StringVar(&opts.Endpoint, "endpoint", "", "a running server's HTTP base URL, e.g. http://127.0.0.1:8080 (default: a node in-process)")
	fs.StringVar(&opts.ChatURL, "chat-url", "", "the chat WebSocket URL (default: --endpoint's host, path /chat)")
	fs.StringVar(&opts.AccessKeyID, "access-key-id", "", "API access key with --endpoint (env OPENIVS_ACCESS_KEY_ID, else AWS_ACCESS_KEY_ID)")
	fs.StringVar(&opts.SecretAccessKey, "secret-access-key", "", "API secret key with --endpoint (env OPENIVS_SECRET_ACCESS_KEY, else AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&opts.Region, "region", region, "signing region with --endpoint (env AWS_REGION)")
	fs.BoolVar(&opts.Insecure, "insecure", false, "accept any TLS certificate (https/wss with a self-signed one)")
	fs.Float64Var(&opts.TokenRate, "token-rate", 150, "CreateChatToken calls a second against --endpoint (0: unpaced)")
	fs.IntVar(&opts.ConnectParallel, "connect-parallel", 64, "clients minting a token and connecting at once")
	fs.IntVar(&opts.ServerPID, "server-pid", 0, "with --endpoint, the local server process whose CPU is reported (default: its /metrics)")
	fs.DurationVar(&opts.MaxP99, "max-p99", 0, "fail (exit status 1) if the p99 send → receive exceeds this (0: not checked)")
	fs.Float64Var(&opts.MaxIdleConnBytes, "max-idle-conn-bytes", 0, "fail (exit status 1) if the server holds more per idle connection (0: not checked)")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the sending window to this file")
	fs.StringVar(&logLevel, "log-level", "", "log the in-process node at this level to stderr (default: silent)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON instead of text")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "openivs bench chat: %s\n", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case opts.Clients <= 0:
		return usage("--clients must be positive")
	case !(opts.Rate > 0) || opts.Rate > 100:
		return usage("--rate must be above 0 and at most 100 (IVS's maximumMessageRatePerSecond)")
	case opts.Senders < 0 || opts.Senders > opts.Clients:
		return usage("--senders must be between 0 and --clients")
	case opts.Duration <= 0 || opts.Drain <= 0:
		return usage("--duration and --drain must be positive")
	case opts.ContentLen < 24 || opts.ContentLen > 500:
		return usage("--content-length must be between 24 (the timestamp) and 500 (IVS's maximum)")
	case opts.TokenRate < 0 || opts.ConnectParallel <= 0:
		return usage("--token-rate must not be negative, --connect-parallel must be positive")
	case opts.Endpoint == "" && (opts.ChatURL != "" || opts.ServerPID != 0):
		return usage("--chat-url and --server-pid go with --endpoint")
	}
	if opts.TokenRate == 0 {
		opts.TokenRate = -1 // the options' zero value means the default
	}
	if opts.Endpoint != "" {
		if opts.AccessKeyID == "" {
			opts.AccessKeyID = firstEnv("OPENIVS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
		}
		if opts.SecretAccessKey == "" {
			opts.SecretAccessKey = firstEnv("OPENIVS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")
		}
		if opts.AccessKeyID == "" || opts.SecretAccessKey == "" {
			return usage("--endpoint needs credentials: --access-key-id/--secret-access-key or OPENIVS_ACCESS_KEY_ID/OPENIVS_SECRET_ACCESS_KEY (openivs serve prints them)")
		}
	}
	if logLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			return usage("--log-level: " + err.Error())
		}
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	opts.Progress = stderr
	if os.Getenv("GOGC") == "" && opts.Endpoint != "" {
		// The clients allocate per message and hold little: collecting
		// less often leaves the shared CPU to the server. Not in-process,
		// where it would change the server measured.
		debug.SetGCPercent(400)
	}

	ctx, stop := benchContext()
	defer stop()
	res, err := bench.RunChat(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench chat: %v\n", err)
		return 1
	}
	return printBenchResult("openivs bench chat", res, asJSON, stdout, stderr)
}

// firstEnv is the first of the variables that is set.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
