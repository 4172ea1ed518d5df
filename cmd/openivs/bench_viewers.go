package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/openivs/openivs/internal/bench"
)

func init() { benchCommands["viewers"] = benchViewersCmd }

// benchViewersCmd runs `openivs bench viewers`: exit status 0 when the run
// worked, 1 when it failed (no parts, too many errors, viewers behind the
// live edge, p99 over --max-p99, or the URL is not a live LL-HLS stream),
// 2 on a usage error.
func benchViewersCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("openivs bench viewers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: openivs bench viewers --url PLAYBACK_URL [flags]

Simulates N LL-HLS viewers of any low-latency HLS URL (multivariant or media
playlist), each requesting what hls.js does in low-latency mode: blocking
playlist reloads with _HLS_msn/_HLS_part (and _HLS_skip=YES when offered),
every part in order, the preload-hint part ahead. Reports delivered bitrate,
request rates, errors and the part delay: program-date-time of the part's
end → its last byte received. That needs the server's clock to be this
machine's (same host or NTP-synced); "announce → received" needs no clock.

Flags:
`)
		fs.PrintDefaults()
	}
	var opts bench.ViewersOptions
	var jsonOut bool
	fs.StringVar(&opts.URL, "url", "", "playback URL: a multivariant or media playlist (required)")
	fs.IntVar(&opts.Viewers, "viewers", 100, "concurrent viewers")
	fs.DurationVar(&opts.Duration, "duration", 30e9, "measurement window")
	fs.DurationVar(&opts.Warmup, "warmup", 3e9, "wait after the last viewer started before measuring (not measured)")
	fs.DurationVar(&opts.Ramp, "ramp", 2e9, "spread the viewers' starts over this long (0: all at once)")
	fs.IntVar(&opts.Rendition, "rendition", 0, "index of the variant to play in a multivariant playlist")
	fs.BoolVar(&opts.Insecure, "insecure", false, "skip TLS certificate verification (self-signed servers)")
	fs.BoolVar(&opts.HTTP1, "http1", false, "never negotiate HTTP/2 over TLS")
	fs.BoolVar(&opts.NetHTTP, "net-http", false, "send cleartext requests through Go's net/http client instead of the lean HTTP/1.1 client (about twice the client CPU)")
	hints := fs.Bool("preload-hints", true, "fetch the EXT-X-PRELOAD-HINT part ahead, so it streams as it is published")
	skip := fs.Bool("skip", true, "ask for playlist delta updates (_HLS_skip=YES) when the server offers them")
	fs.DurationVar(&opts.Timeout, "timeout", 10e9, "per request (at least 3 target durations + 1 s, for blocking requests)")
	fs.IntVar(&opts.ServerPID, "server-pid", 0, "also report the CPU of this local process (the server) over the window")
	fs.DurationVar(&opts.MaxP99, "max-p99", 0, "fail (exit status 1) if the p99 part delay exceeds this (0: not checked)")
	fs.Float64Var(&opts.MinKeepUp, "min-keep-up", 0.9, "fail (exit status 1) if viewers received less than this many seconds of media per second (0: not checked)")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the bench process over the window to this file")
	fs.BoolVar(&jsonOut, "json", false, "print the result as JSON instead of the report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "openivs bench viewers: %s\n", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case opts.URL == "":
		return usage("--url is required")
	case opts.Viewers <= 0:
		return usage("--viewers must be positive")
	case opts.Duration <= 0:
		return usage("--duration must be positive")
	case opts.Rendition < 0:
		return usage("--rendition must be 0 or more")
	case opts.MinKeepUp < 0:
		return usage("--min-keep-up must not be negative")
	case opts.Ramp < 0 || opts.Warmup < 0:
		return usage("--ramp and --warmup must not be negative")
	}
	opts.NoHints, opts.NoSkip = !*hints, !*skip
	opts.Progress = stderr
	if os.Getenv("GOGC") == "" {
		// The viewers allocate per request and hold little: collecting
		// less often makes the client cheaper, leaving the shared CPU to
		// the server being measured.
		debug.SetGCPercent(400)
	}

	ctx, stop := benchContext()
	defer stop()
	res, err := bench.RunViewers(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench viewers: %v\n", err)
		return 1
	}
	return printBenchResult("openivs bench viewers", res, jsonOut, stdout, stderr)
}
