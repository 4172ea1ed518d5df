package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/openivs/openivs/internal/bench"
)

func init() { benchCommands["transcode"] = benchTranscodeCmd }

const benchTranscodeUsage = `Usage: openivs bench transcode [flags]

Publishes a recording (generated: 1920x1080 30 fps, 6 Mbps, 2 s GOP) over
RTMP into an in-process node on a transcoding channel and measures, over
--duration after --warmup, the CPU of the whole pipeline (the node:
ingest, hub, packaging of every rendition; plus its ffmpeg), less the
publisher's own cost; then the CPU of a bare ffmpeg encoding the same
ladder with the same arguments from the same file in real time. Reports
both in cores and their ratio.

Flags:
`

// benchTranscodeCmd runs `openivs bench transcode`.
func benchTranscodeCmd(args []string, stdout, stderr io.Writer) int {
	fs := benchFlags("openivs bench transcode", benchTranscodeUsage, stderr)
	var opts bench.TranscodeOptions
	var bitrate string
	var asJSON bool
	fs.StringVar(&opts.Type, "type", "STANDARD", "channel type: STANDARD, ADVANCED_HD or ADVANCED_SD")
	fs.StringVar(&opts.File, "file", "", "H.264/AAC FLV to replay instead of the generated recording")
	fs.IntVar(&opts.Recording.Width, "width", 1920, "generated recording's width")
	fs.IntVar(&opts.Recording.Height, "height", 1080, "generated recording's height")
	fs.IntVar(&opts.Recording.FPS, "fps", 30, "generated recording's frame rate")
	fs.StringVar(&bitrate, "bitrate", "6M", "generated recording's bitrate")
	fs.DurationVar(&opts.Duration, "duration", 30e9, "each measurement window")
	fs.DurationVar(&opts.Warmup, "warmup", 5e9, "wait before each window")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON instead of text")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bps, err := parseBitrate(bitrate)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench transcode: --bitrate: %v\n", err)
		return 2
	}
	opts.Recording.Bitrate = bps
	opts.Progress = stderr
	ctx, stop := benchContext()
	defer stop()
	res, err := bench.RunTranscode(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench transcode: %v\n", err)
		return 1
	}
	return printBenchResult("openivs bench transcode", res, asJSON, stdout, stderr)
}
