package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"

	"github.com/openivs/openivs/internal/bench"
)

func init() { benchCommands["metadata"] = benchMetadataCmd }

const benchMetadataUsage = `Usage: openivs bench metadata --url PLAYBACK_URL --channel-arn ARN --endpoint-url URL [flags]

Plays PLAYBACK_URL in headless Chromium with the openivs web player (as
'openivs bench latency' does) and, once the player has warmed up at the live
edge, calls PutMetadata on the channel --calls times, one every --interval,
with the AWS SDK for Go. Each payload names its call; the report gives the
delay from each call's start to the player's TEXT_METADATA_CUE for it (the
cue fires when the tagged frame is shown), p50/p95, that delay minus the
player's latency, and calls lost, duplicated or out of order. The target:
delay ≤ player latency + part duration + 100 ms.

Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (what
'openivs serve' prints). IVS allows 5 calls a second per channel.

Exit status: 0 measured, 1 could not measure, 2 usage error.

Flags:
`

// benchMetadataCmd runs `openivs bench metadata`.
func benchMetadataCmd(args []string, stdout, stderr io.Writer) int {
	fs := benchFlags("openivs bench metadata", benchMetadataUsage, stderr)
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-west-2"
	}
	var opts bench.MetadataOptions
	var channelARN, endpoint string
	var asJSON bool
	fs.StringVar(&opts.Player.URL, "url", "", "the channel's playback URL (required)")
	fs.StringVar(&channelARN, "channel-arn", "", "the channel to call PutMetadata on (required)")
	fs.StringVar(&endpoint, "endpoint-url", "", "the IVS API endpoint, e.g. http://localhost:8080 (required)")
	fs.StringVar(&region, "region", region, "signing region (env AWS_REGION)")
	fs.IntVar(&opts.Calls, "calls", 100, "PutMetadata calls to make")
	fs.DurationVar(&opts.Interval, "interval", 250e6, "time between calls")
	fs.DurationVar(&opts.Player.Warmup, "warmup", 5e9, "wait after the first PLAYING before the first call")
	fs.DurationVar(&opts.Player.StartTimeout, "start-timeout", 30e9, "give up when not PLAYING this long after starting Chromium")
	fs.StringVar(&opts.Player.Chromium, "chromium", defaultChromium(), "Chromium binary (env OPENIVS_CHROMIUM)")
	fs.StringVar(&opts.Player.Quality, "quality", "", "pin the player to the rendition of this `NAME` instead of ABR")
	fs.BoolVar(&opts.Player.Insecure, "insecure", false, "accept any TLS certificate (self-signed https URLs)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON instead of text")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "openivs bench metadata: unexpected arguments %q\n", fs.Args())
		return 2
	case opts.Player.URL == "" || channelARN == "" || endpoint == "":
		fmt.Fprintln(stderr, "openivs bench metadata: --url, --channel-arn and --endpoint-url are required")
		fs.Usage()
		return 2
	case opts.Calls <= 0 || opts.Interval <= 0 || opts.Player.Warmup < 0:
		fmt.Fprintln(stderr, "openivs bench metadata: --calls and --interval must be positive, --warmup not negative")
		return 2
	}
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		fmt.Fprintln(stderr, "openivs bench metadata: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (openivs serve prints them)")
		return 2
	}
	if opts.Player.Warmup == 0 {
		opts.Player.Warmup = -1 // the options' zero value means the default
	}
	opts.Player.Duration = 1 // the calls decide how long it runs
	opts.Player.Progress = stderr
	client := ivs.New(ivs.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}, nil
		}),
	})
	opts.Put = func(ctx context.Context, text string) error {
		_, err := client.PutMetadata(ctx, &ivs.PutMetadataInput{ChannelArn: aws.String(channelARN), Metadata: aws.String(text)})
		return err
	}

	ctx, stop := benchContext()
	defer stop()
	res, err := bench.RunMetadata(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "openivs bench metadata: %v\n", err)
		return 1
	}
	return printBenchResult("openivs bench metadata", res, asJSON, stdout, stderr)
}
