package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Thumbnail resolutions of thumbnailConfiguration.resolution (spec 04 §3.4,
// bands in §0). An empty resolution means the source's.
const (
	ThumbnailLowest = "LOWEST_RESOLUTION"
	ThumbnailSD     = "SD"
	ThumbnailHD     = "HD"
	ThumbnailFullHD = "FULL_HD"
)

// Limits of one thumbnail run.
const (
	// DefaultThumbnailTimeout bounds one ffmpeg run when the context has
	// no earlier deadline: a single frame takes ~0.1 s, so anything near
	// this is a stuck process.
	DefaultThumbnailTimeout = 10 * time.Second
	// thumbMaxJPEG caps what is read from ffmpeg's stdout; a 4K JPEG at
	// q 3 is a few MB.
	thumbMaxJPEG = 32 << 20
	// thumbMaxStderr is how much of ffmpeg's stderr (its tail) goes into
	// an error message.
	thumbMaxStderr = 2 << 10
)

// Thumbnailer makes JPEG thumbnails from single H.264 keyframes with
// ffmpeg: one short ffmpeg run per thumbnail decodes just that frame, so
// the stream is never decoded as a whole. Measured with
// BenchmarkThumbnailJPEG on a 2-vCPU EPYC host, a 720p keyframe to an
// 852x480 JPEG takes 0.10-0.13 s wall and ~90 ms of CPU, of which ~80 ms
// is ffmpeg's start-up (`ffmpeg -version` alone); at IVS's shortest
// interval (1 s) that is ~9% of one core per recorded stream, ~0.15% at
// the default 60 s. A long-lived ffmpeg per stream would cut it to
// ~10 ms but is not worth its supervision at these rates.
// The zero value is ready to use; it is safe for concurrent use.
type Thumbnailer struct {
	FFmpeg  string        // the ffmpeg binary (default "ffmpeg" on PATH)
	Timeout time.Duration // per thumbnail (default DefaultThumbnailTimeout)
}

// JPEG decodes one keyframe and returns it as a JPEG of exactly width x
// height (both 0: the decoded size). keyframe is the access unit as NAL
// units without start codes; sps and pps are the track's parameter sets
// and may be nil when the keyframe carries its own in band (as x264's
// do). Input ffmpeg cannot decode is an error carrying the end of its
// stderr; a damaged slice ffmpeg conceals still gives a picture. The
// process is killed when ctx ends or the timeout passes (the error then
// wraps ctx's), and always waited for.
func (t *Thumbnailer) JPEG(ctx context.Context, sps, pps []byte, keyframe [][]byte, width, height int) ([]byte, error) {
	jpeg, _, err := t.jpeg(ctx, sps, pps, keyframe, width, height)
	return jpeg, err
}

// jpeg is JPEG that also reports the CPU time (user + system) ffmpeg
// used, which the benchmark reports.
func (t *Thumbnailer) jpeg(ctx context.Context, sps, pps []byte, keyframe [][]byte, width, height int) ([]byte, time.Duration, error) {
	if (width <= 0 || height <= 0) && (width != 0 || height != 0) {
		return nil, 0, fmt.Errorf("record: thumbnail: bad size %dx%d", width, height)
	}
	au, err := thumbAccessUnit(sps, pps, keyframe)
	if err != nil {
		return nil, 0, err
	}
	in, err := h264.AnnexB(au).Marshal()
	if err != nil {
		return nil, 0, fmt.Errorf("record: thumbnail: %w", err)
	}

	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultThumbnailTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	bin := t.FFmpeg
	if bin == "" {
		bin = "ffmpeg"
	}
	cmd := exec.CommandContext(ctx, bin, thumbArgs(width, height)...)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr thumbBuffer
	out.max, stderr.max, stderr.tail = thumbMaxJPEG, thumbMaxStderr, true
	cmd.Stdout, cmd.Stderr = &out, &stderr
	// If ctx kills ffmpeg while something else still holds its pipes,
	// Wait gives up on them after this instead of hanging.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if ctx.Err() != nil {
		return nil, cpu, fmt.Errorf("record: thumbnail: ffmpeg: %w", ctx.Err())
	}
	if msg := strings.TrimSpace(stderr.String()); err != nil && msg != "" {
		return nil, cpu, fmt.Errorf("record: thumbnail: ffmpeg: %w: %s", err, msg)
	} else if err != nil {
		return nil, cpu, fmt.Errorf("record: thumbnail: ffmpeg: %w", err)
	}
	if out.overflow {
		return nil, cpu, fmt.Errorf("record: thumbnail: ffmpeg wrote more than %d bytes", thumbMaxJPEG)
	}
	b := out.Bytes()
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		// ffmpeg exits 0 when the frame did not decode ("Output file is
		// empty"), so say what it said.
		return nil, cpu, fmt.Errorf("record: thumbnail: ffmpeg wrote no JPEG (%d bytes): %s", len(b), strings.TrimSpace(stderr.String()))
	}
	return b, cpu, nil
}

// thumbArgs is the ffmpeg command line: one Annex-B access unit on stdin,
// one JPEG on stdout.
func thumbArgs(width, height int) []string {
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		// One frame: decoder threads only cost their start-up.
		"-threads", "1",
		"-f", "h264", "-i", "pipe:0",
		"-an", "-sn", "-dn", "-frames:v", "1",
	}
	var vf string
	if width > 0 && height > 0 {
		// Exact size, square pixels (the caller keeps the aspect ratio;
		// a rounding SAR would otherwise land in the JFIF header).
		vf = "scale=" + strconv.Itoa(width) + ":" + strconv.Itoa(height) + ":flags=lanczos,"
	}
	vf += "setsar=1"
	return append(args, "-vf", vf,
		// JPEG is full range: yuvj420p makes swscale expand H.264's
		// limited range instead of writing it as is (washed-out blacks).
		"-pix_fmt", "yuvj420p",
		"-c:v", "mjpeg", "-q:v", "3",
		"-f", "image2pipe", "pipe:1")
}

// thumbAccessUnit builds the access unit ffmpeg decodes: the track's SPS
// and PPS, then the keyframe's NAL units. In-band parameter sets equal to
// the track's are dropped and different ones kept after them (they come
// later, so they win for their id, as they did in the stream); access
// unit delimiters and end-of-sequence/stream and filler units are
// dropped, since they would have to come first or would end the stream.
func thumbAccessUnit(sps, pps []byte, keyframe [][]byte) ([][]byte, error) {
	au := make([][]byte, 0, len(keyframe)+2)
	var haveSPS, havePPS, haveSlice bool
	if len(sps) > 0 {
		au = append(au, sps)
		haveSPS = true
	}
	if len(pps) > 0 {
		au = append(au, pps)
		havePPS = true
	}
	for _, n := range keyframe {
		if len(n) == 0 {
			continue
		}
		switch typ := h264.NALUType(n[0] & 0x1f); typ {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeEndOfSequence,
			h264.NALUTypeEndOfStream, h264.NALUTypeFillerData:
			continue
		case h264.NALUTypeSPS:
			if bytes.Equal(n, sps) {
				continue
			}
			haveSPS = true
		case h264.NALUTypePPS:
			if bytes.Equal(n, pps) {
				continue
			}
			havePPS = true
		default:
			if typ >= h264.NALUTypeNonIDR && typ <= h264.NALUTypeIDR {
				haveSlice = true
			}
		}
		au = append(au, n)
	}
	switch {
	case !haveSlice:
		return nil, errors.New("record: thumbnail: keyframe has no picture")
	case !haveSPS || !havePPS:
		return nil, errors.New("record: thumbnail: no SPS/PPS (neither the track's nor in band)")
	}
	return au, nil
}

// thumbBuffer collects at most max bytes: the first ones, or with tail
// the last ones (an error is at the end of ffmpeg's stderr). It has no
// ReadFrom on purpose: io.Copy must go through Write.
type thumbBuffer struct {
	buf      bytes.Buffer
	max      int
	tail     bool
	overflow bool
}

func (b *thumbBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if b.tail {
		if len(p) >= b.max {
			b.buf.Reset()
			b.buf.Write(p[len(p)-b.max:])
			return n, nil
		}
		if over := b.buf.Len() + len(p) - b.max; over > 0 {
			b.buf.Next(over)
		}
		b.buf.Write(p)
		return n, nil
	}
	if room := b.max - b.buf.Len(); len(p) > room {
		p = p[:room]
		b.overflow = true
	}
	b.buf.Write(p)
	return n, nil
}

func (b *thumbBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *thumbBuffer) String() string { return b.buf.String() }

// ThumbnailSize is the size of a stream's thumbnails for
// thumbnailConfiguration.resolution (spec 04 §3.4): "" is the source's
// size; SD, HD and FULL_HD are the top of their band (short edge 480, 720,
// 1080, spec 04 §0) with the source's aspect ratio, the long edge rounded
// down to even as the transcode ladder does (16:9 SD is 852x480);
// LOWEST_RESOLUTION is the smallest of renditions (width, height pairs;
// audio-only ones are 0x0), or the source's when there are none. A
// thumbnail is never larger than the source, whose odd dimensions are
// rounded down to even. An unknown resolution is the source's; a source of
// unknown size gives 0x0, which JPEG takes as "the decoded size".
func ThumbnailSize(resolution string, srcW, srcH int, renditions [][2]int) (w, h int) {
	if srcW <= 0 || srcH <= 0 {
		return 0, 0
	}
	source := func() (int, int) { return max(srcW&^1, 2), max(srcH&^1, 2) }
	var short int
	switch resolution {
	case ThumbnailSD:
		short = 480
	case ThumbnailHD:
		short = 720
	case ThumbnailFullHD:
		short = 1080
	case ThumbnailLowest:
		best := -1
		for i, r := range renditions {
			if r[0] <= 0 || r[1] <= 0 {
				continue
			}
			if best < 0 || r[0]*r[1] < renditions[best][0]*renditions[best][1] {
				best = i
			}
		}
		if best < 0 {
			return source()
		}
		r := renditions[best]
		if r[0]*r[1] >= srcW*srcH {
			return source()
		}
		return max(r[0]&^1, 2), max(r[1]&^1, 2)
	default:
		return source()
	}
	if min(srcW, srcH) <= short {
		return source()
	}
	long := max(int(float64(short)*float64(max(srcW, srcH))/float64(min(srcW, srcH)))&^1, 2)
	if srcW >= srcH {
		return long, short
	}
	return short, long
}
