package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ErrNoFFmpeg means the recording has to be made and ffmpeg is not on PATH.
var ErrNoFFmpeg = errors.New("bench: ffmpeg not found on PATH (install the Debian package: apt-get install ffmpeg), or pass --file with an H.264/AAC FLV")

// DefaultBitrate is the total bitrate of the generated recording: the
// ingest target is stated for 3 Mbps publishers.
const DefaultBitrate = 3_000_000

// audioBitrate is the AAC share of the recording's bitrate.
const audioBitrate = 128_000

// RecordingSpec is what a generated recording holds: total bitrate and
// the video's size and frame rate (default 1280x720 at 30 fps).
type RecordingSpec struct {
	Bitrate       int64
	Width, Height int
	FPS           int
}

func (s RecordingSpec) withDefaults() RecordingSpec {
	if s.Bitrate <= 0 {
		s.Bitrate = DefaultBitrate
	}
	if s.Width <= 0 || s.Height <= 0 {
		s.Width, s.Height = 1280, 720
	}
	if s.FPS <= 0 {
		s.FPS = 30
	}
	return s
}

// RecordingPath is where the generated recording of a bitrate is cached, so
// that repeated runs replay the same bytes and do not pay for encoding.
func RecordingPath(bitrate int64) (string, error) {
	return RecordingSpec{Bitrate: bitrate}.Path()
}

// Path is where the recording of this spec is cached.
func (s RecordingSpec) Path() (string, error) {
	s = s.withDefaults()
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		var err error
		if dir, err = os.UserCacheDir(); err != nil {
			return "", fmt.Errorf("bench: no cache dir for the recording (set XDG_CACHE_HOME or pass --file): %w", err)
		}
	}
	name := fmt.Sprintf("bench-%dkbps.flv", s.Bitrate/1000)
	if s.Width != 1280 || s.Height != 720 || s.FPS != 30 {
		name = fmt.Sprintf("bench-%dx%dp%d-%dkbps.flv", s.Width, s.Height, s.FPS, s.Bitrate/1000)
	}
	return filepath.Join(dir, "openivs", name), nil
}

// EnsureRecording returns the path of the cached 1280x720 30 fps recording
// of bitrate (see EnsureRecordingOf).
func EnsureRecording(ctx context.Context, bitrate int64) (string, error) {
	return EnsureRecordingOf(ctx, RecordingSpec{Bitrate: bitrate})
}

// EnsureRecordingOf returns the path of the cached recording of spec,
// encoding it once with ffmpeg when it is missing: 10 s of testsrc2 with a
// sine tone, x264 veryfast held near constant bitrate, a keyframe every
// 2 s (IVS's recommendation) and AAC-LC 128 kbps.
func EnsureRecordingOf(ctx context.Context, spec RecordingSpec) (string, error) {
	spec = spec.withDefaults()
	bitrate := spec.Bitrate
	path, err := spec.Path()
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return path, nil
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", ErrNoFFmpeg
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	video := max(bitrate-audioBitrate+28_000, 100_000) // 3 Mbps -> -b:v 2900k
	// Written next to the final name and renamed, so an interrupted encode
	// never leaves a truncated file that later runs would trust.
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid()) + ".flv"
	defer os.Remove(tmp)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", spec.Width, spec.Height, spec.FPS),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "10",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-profile:v", "high",
		"-b:v", strconv.FormatInt(video/1000, 10)+"k",
		"-maxrate", strconv.FormatInt(bitrate/1000, 10)+"k",
		"-bufsize", strconv.FormatInt(bitrate/1000, 10)+"k",
		"-g", strconv.Itoa(2*spec.FPS), "-keyint_min", strconv.Itoa(2*spec.FPS), "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", strconv.Itoa(audioBitrate/1000)+"k", "-ac", "2",
		"-f", "flv", tmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench: ffmpeg making the recording: %w\n%s", err, stderr.String())
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return path, nil
}

// LoadRecording reads and parses an FLV file.
func LoadRecording(path string) (*Recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	rec, err := ParseRecording(b)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	return rec, nil
}
