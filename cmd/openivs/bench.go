package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/openivs/openivs/internal/bench"
)

const benchUsage = `Usage:
  openivs bench ingest [flags]    publish N concurrent RTMP streams from a recorded file into an
                                  in-process node and report admission, CPU and memory per stream
  openivs bench viewers [flags]   simulate N LL-HLS viewers of --url and report delivered bitrate,
                                  request rates and part delay
  openivs bench latency [flags]   play --url in headless Chromium with the openivs player and
                                  report glass-to-glass latency
  openivs bench transcode [flags] one transcoded stream's CPU (node + ffmpeg) against bare ffmpeg
                                  encoding the same ladder
  openivs bench metadata [flags]  call PutMetadata while the openivs player plays --url in headless
                                  Chromium and report call → TEXT_METADATA_CUE delay
  openivs bench chat [flags]      N chat clients in one room, messages at a rate: send → receive
                                  latency at every client, losses, CPU, memory per idle connection
`

// benchCommands are the `openivs bench` subcommands by name; each returns
// the process exit status.
var benchCommands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"ingest": benchIngestCmd,
	"chat":   benchChatCmd,
}

// benchCmd runs `openivs bench ...`; the exit status is non-zero when a
// benchmark's streams failed, so scripts can gate on it.
func benchCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, benchUsage)
		return 0
	}
	var run func([]string, io.Writer, io.Writer) int
	if len(args) > 0 {
		run = benchCommands[args[0]]
	}
	if run == nil {
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	return run(args[1:], stdout, stderr)
}

// benchFlags is a bench subcommand's flag set: errors to stderr, and a
// usage of the subcommand's text followed by its flags.
func benchFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// defaultChromium is the browser the browser benchmarks start:
// $OPENIVS_CHROMIUM, else Debian's.
func defaultChromium() string {
	if c := os.Getenv("OPENIVS_CHROMIUM"); c != "" {
		return c
	}
	return "/usr/bin/chromium"
}

// benchContext ends when the benchmark is interrupted (SIGINT, SIGTERM).
func benchContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// benchIngestCmd runs `openivs bench ingest`.
func benchIngestCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("openivs bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts bench.IngestOptions
	var bitrate, logLevel string
	fs.IntVar(&opts.Streams, "streams", 100, "concurrent publishers")
	fs.DurationVar(&opts.Duration, "duration", 30e9, "measurement window once every stream is live")
	fs.DurationVar(&opts.Warmup, "warmup", 3e9, "wait after the streams went live before measuring")
	fs.StringVar(&bitrate, "bitrate", "3M", "bitrate of the generated recording (e.g. 3M, 2500k)")
	fs.StringVar(&opts.File, "file", "", "H.264/AAC FLV to replay instead of the generated recording")
	fs.BoolVar(&opts.RTMPS, "rtmps", false, "publish over RTMPS (TLS) instead of plain RTMP")
	fs.IntVar(&opts.IdleSubscribers, "idle-subscribers", 1, "idle (never reading) subscribers per stream; 0 for none")
	fs.BoolVar(&opts.ClientCost, "client-cost", true, "also measure the publishers alone against a null RTMP server")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of the measurement window to this file")
	fs.StringVar(&logLevel, "log-level", "", "log the node at this level to stderr (default: silent)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bps, err := parseBitrate(bitrate)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench ingest: --bitrate: %v\n", err)
		return 2
	}
	opts.Bitrate = bps
	if opts.IdleSubscribers == 0 {
		opts.IdleSubscribers = -1 // the options' zero value means the default
	}
	if logLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(logLevel)); err != nil {
			fmt.Fprintf(stderr, "openivs bench ingest: --log-level: %v\n", err)
			return 2
		}
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	opts.Progress = stderr

	ctx, stop := benchContext()
	defer stop()
	res, err := bench.RunIngest(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench ingest: %v\n", err)
		return 1
	}
	res.Report(stdout)
	if !res.OK() {
		return 1
	}
	return 0
}

// parseBitrate reads "3M", "2500k" or a plain number of bits per second.
func parseBitrate(s string) (int64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a bitrate like 3M or 2500k", s)
	}
	return int64(v * mult), nil
}

// benchResult is what a benchmark run returns.
type benchResult interface {
	Report(w io.Writer)     // human-readable
	JSON(w io.Writer) error // machine-readable
	OK() bool               // whether the run measured what it should
}

// printBenchResult writes res as text or JSON and returns the exit status:
// 1 when the run failed, so scripts can gate on it.
func printBenchResult(name string, res benchResult, asJSON bool, stdout, stderr io.Writer) int {
	if asJSON {
		if err := res.JSON(stdout); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
	} else {
		res.Report(stdout)
	}
	if !res.OK() {
		return 1
	}
	return 0
}
