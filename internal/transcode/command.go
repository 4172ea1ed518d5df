package transcode

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultX264Preset balances CPU and quality the way the capacity figures
// in docs/benchmarks.md were measured.
const DefaultX264Preset = "veryfast"

// keyframeCap is the longest a transcoded GOP may run when the source
// sends no keyframe (seconds): rungs otherwise take their keyframes from
// the source's, which is what lines their segments up.
const keyframeCap = 4

// Source is what the ffmpeg command needs to know about its input: the
// video's frame rate and, when there is audio, its sample rate and
// channel count (transcoded audio keeps both, so the rung's AAC
// configuration is known before ffmpeg writes it).
type Source struct {
	FPS        float64
	HasAudio   bool
	SampleRate int
	Channels   int
}

// Output is where a rung's MPEG-TS goes: "pipe:3" for the transcoder, a
// file name for the reference command the benchmarks compare against.
type Output func(rung int) string

// ffmpegArgs builds the one ffmpeg command that decodes the source once
// and encodes every transcoded rung, each to its own MPEG-TS output.
// input is "pipe:0" (FLV on stdin) or a file for the reference command.
func ffmpegArgs(input string, src Source, rungs []Rung, x264Preset string, out Output) []string {
	if x264Preset == "" {
		x264Preset = DefaultX264Preset
	}
	args := []string{"-hide_banner", "-nostats", "-nostdin", "-loglevel", "warning",
		// One decoder thread: frame threads would each hold a frame back.
		"-threads", "1",
		// The FLV sequence headers say what the tracks are; a tenth of a
		// second settles the rest without holding the start back.
		"-probesize", "32768", "-analyzeduration", "100000",
		// Keep the feed timeline, so rung frames map back to source frames.
		"-copyts",
	}
	if input == "pipe:0" {
		args = append(args, "-f", "flv")
	}
	args = append(args, "-i", input)

	var video []int
	for i, r := range rungs {
		if r.Transcoded() && !r.AudioOnly {
			video = append(video, i)
		}
	}
	if len(video) > 0 {
		var g strings.Builder
		if len(video) == 1 {
			g.WriteString("[0:v]null[s0];")
		} else {
			fmt.Fprintf(&g, "[0:v]split=%d", len(video))
			for j := range video {
				fmt.Fprintf(&g, "[s%d]", j)
			}
			g.WriteString(";")
		}
		for j, i := range video {
			r := rungs[i]
			fmt.Fprintf(&g, "[s%d]", j)
			if r.MaxFPS > 0 && src.FPS > r.MaxFPS+0.5 {
				// Thin the rate by dropping frames, never retiming them,
				// and never drop a keyframe: the rung's frames keep the
				// source's timestamps and its keyframes the source's.
				fmt.Fprintf(&g, "select='isnan(prev_selected_t)+eq(key\\,1)+gte(t-prev_selected_t\\,%.4f)',", 0.9/r.MaxFPS)
			}
			fmt.Fprintf(&g, "scale=%d:%d[v%d]", r.Width, r.Height, i)
			if j < len(video)-1 {
				g.WriteString(";")
			}
		}
		args = append(args, "-filter_complex", g.String())
	}

	for i, r := range rungs {
		if !r.Transcoded() {
			continue
		}
		if r.AudioOnly {
			if !src.HasAudio {
				continue
			}
			args = append(args, "-map", "0:a:0", "-vn")
		} else {
			fps := r.FPS
			if fps <= 0 {
				fps = 30
			}
			kbps := strconv.Itoa(r.VideoKbps) + "k"
			keyint := strconv.Itoa(int(fps*keyframeCap + 0.5))
			args = append(args, "-map", fmt.Sprintf("[v%d]", i))
			if src.HasAudio {
				args = append(args, "-map", "0:a:0")
			}
			args = append(args,
				"-c:v", "libx264", "-preset", x264Preset, "-tune", "zerolatency",
				// Captions are re-inserted by the sink, in the frames each
				// rung keeps (a 30 fps rung of a 60 fps source would lose
				// half of them through the encoder).
				"-a53cc", "0",
				"-b:v", kbps, "-maxrate", kbps, "-bufsize", kbps,
				"-x264-params", "nal-hrd=cbr:scenecut=0:keyint="+keyint+":min-keyint="+keyint,
				// Keyframes where the source has them: every rung (and the
				// passthrough) cuts its segments at the same instants.
				"-force_key_frames", "source",
				// Source timestamps as they are (no frame duplication) at
				// the rung's nominal rate, which rate control needs.
				"-enc_time_base", "-1", "-fps_mode", "passthrough", "-r", strconv.FormatFloat(fps, 'f', 3, 64),
			)
		}
		if src.HasAudio {
			if r.AudioKbps > 0 {
				args = append(args, "-c:a", "aac", "-b:a", strconv.Itoa(r.AudioKbps)+"k")
				if src.SampleRate > 0 {
					args = append(args, "-ar", strconv.Itoa(src.SampleRate))
				}
				if src.Channels > 0 {
					args = append(args, "-ac", strconv.Itoa(src.Channels))
				}
			} else {
				args = append(args, "-c:a", "copy")
			}
		}
		args = append(args, "-f", "mpegts", "-muxdelay", "0", "-avoid_negative_ts", "disabled",
			"-omit_video_pes_length", "0", "-pes_payload_size", "0", "-flush_packets", "1", out(i))
	}
	return args
}
