package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/openivs/openivs/internal/bench"
)

func init() { benchCommands["latency"] = benchLatencyCmd }

const benchLatencyUsage = `Usage: openivs bench latency --url PLAYBACK_URL [flags]

Plays PLAYBACK_URL in headless Chromium with the openivs web player (the
IVSPlayer-compatible bundle built into this binary) and reports the
glass-to-glass latency the player sees: now − EXT-X-PROGRAM-DATE-TIME of the
frame on screen (player.getLiveLatency()), sampled every 100 ms while
PLAYING, over --duration after --warmup from the first PLAYING; with
p50/p95/min/max, stalls, time to first frame and the player's state.

Any LL-HLS (or HLS) server works if it sends CORS headers (the page is
served from 127.0.0.1) and EXT-X-PROGRAM-DATE-TIME. The figure is only as
good as the agreement between that server's clock and this machine's.

Exit status: 0 measured, 1 could not measure (never played, no samples),
2 usage error.

Flags:
`

// benchLatencyCmd runs `openivs bench latency`.
func benchLatencyCmd(args []string, stdout, stderr io.Writer) int {
	fs := benchFlags("openivs bench latency", benchLatencyUsage, stderr)
	var opts bench.LatencyOptions
	var lowLatency, asJSON bool
	fs.StringVar(&opts.URL, "url", "", "playback URL to measure (required)")
	fs.DurationVar(&opts.Duration, "duration", 30e9, "measurement window")
	fs.DurationVar(&opts.Warmup, "warmup", 5e9, "wait after the first PLAYING before measuring")
	fs.DurationVar(&opts.StartTimeout, "start-timeout", 30e9, "give up when not PLAYING this long after starting Chromium")
	fs.StringVar(&opts.Chromium, "chromium", defaultChromium(), "Chromium binary (env OPENIVS_CHROMIUM)")
	fs.BoolVar(&lowLatency, "low-latency", true, "player.setLiveLowLatencyEnabled: play LL-HLS parts (false: play at HOLD-BACK)")
	fs.StringVar(&opts.Quality, "quality", "", "pin the player to the rendition of this `NAME` (e.g. 480p30) instead of ABR")
	fs.BoolVar(&opts.Insecure, "insecure", false, "accept any TLS certificate (self-signed https playback URLs)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON instead of text")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "openivs bench latency: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if opts.URL == "" {
		fmt.Fprintln(stderr, "openivs bench latency: --url is required")
		fs.Usage()
		return 2
	}
	if opts.Duration <= 0 || opts.Warmup < 0 || opts.StartTimeout <= 0 {
		fmt.Fprintln(stderr, "openivs bench latency: --duration and --start-timeout must be positive, --warmup not negative")
		return 2
	}
	if opts.Warmup == 0 {
		opts.Warmup = -1 // the options' zero value means the default
	}
	opts.NormalLatency = !lowLatency
	opts.Progress = stderr

	ctx, stop := benchContext()
	defer stop()
	res, err := bench.RunLatency(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench latency: %v\n", err)
		return 1
	}
	return printBenchResult("openivs bench latency", res, asJSON, stdout, stderr)
}
