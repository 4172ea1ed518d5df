package record

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/testutil/mediatest"
)

// thumbKeyframe encodes a second of testsrc2 with ffmpeg/x264 and returns
// the video track and its first keyframe as the hub carries it: an AUD,
// in-band SPS and PPS, SEI and the IDR slice(s).
func thumbKeyframe(t testing.TB, w, h int) (media.Track, [][]byte) {
	t.Helper()
	es := mediatest.Encode(t, mediatest.EncodeOptions{Width: w, Height: h, Seconds: 1})
	for _, f := range es.Frames {
		if f.Track == 0 && f.Key {
			return es.Tracks[0], f.NALUs
		}
	}
	t.Fatal("no keyframe in the encode")
	return media.Track{}, nil
}

// withoutParamSets is the keyframe with its in-band SPS and PPS removed.
func withoutParamSets(au [][]byte) [][]byte {
	var out [][]byte
	for _, n := range au {
		if typ := h264.NALUType(n[0] & 0x1f); typ != h264.NALUTypeSPS && typ != h264.NALUTypePPS {
			out = append(out, n)
		}
	}
	return out
}

func nalTypes(au [][]byte) []h264.NALUType {
	var out []h264.NALUType
	for _, n := range au {
		out = append(out, h264.NALUType(n[0]&0x1f))
	}
	return out
}

// referenceRGB is ffmpeg's own decode of the keyframe to RGB at w x h,
// which the JPEG must look like (same picture, same colour range).
func referenceRGB(t *testing.T, sps, pps []byte, keyframe [][]byte, w, h int) []byte {
	t.Helper()
	in, err := h264.AnnexB(append([][]byte{sps, pps}, keyframe...)).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mediatest.NeedFFmpeg(t, "ffmpeg"), "-hide_banner", "-loglevel", "error",
		"-f", "h264", "-i", "pipe:0", "-frames:v", "1",
		"-vf", "scale="+strconv.Itoa(w)+":"+strconv.Itoa(h)+":flags=lanczos",
		"-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || len(out) != w*h*3 {
		t.Fatalf("reference decode: %v (%d bytes): %s", err, len(out), stderr.Bytes())
	}
	return out
}

// compareToReference returns the mean absolute difference per RGB channel
// between img and ref, and the standard deviation of img's luma.
func compareToReference(img image.Image, ref []byte) (meanDiff, lumaStdDev float64) {
	b := img.Bounds()
	var diff, sum, sumSq float64
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			px := []float64{float64(r >> 8), float64(g >> 8), float64(bl >> 8)}
			o := ((y-b.Min.Y)*b.Dx() + (x - b.Min.X)) * 3
			for c := range 3 {
				diff += math.Abs(px[c] - float64(ref[o+c]))
			}
			l := 0.299*px[0] + 0.587*px[1] + 0.114*px[2]
			sum += l
			sumSq += l * l
			n++
		}
	}
	mean := sum / float64(n)
	return diff / float64(3*n), math.Sqrt(sumSq/float64(n) - mean*mean)
}

func TestThumbnailJPEG(t *testing.T) {
	track, key := thumbKeyframe(t, 1280, 720)
	if len(withoutParamSets(key)) == len(key) {
		t.Fatalf("x264 keyframe has no in-band SPS: NAL types %v", nalTypes(key))
	}
	bare := withoutParamSets(key)
	ref := map[[2]int][]byte{}
	for _, tc := range []struct {
		name     string
		sps, pps []byte
		keyframe [][]byte
		w, h     int // requested
		wantW    int
		wantH    int
	}{
		{"in-band and track parameter sets, 640x360", track.SPS, track.PPS, key, 640, 360, 640, 360},
		{"track parameter sets only, 1280x720", track.SPS, track.PPS, bare, 1280, 720, 1280, 720},
		{"in-band parameter sets only, 852x480", nil, nil, key, 852, 480, 852, 480},
		{"decoded size", track.SPS, track.PPS, bare, 0, 0, 1280, 720},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var th Thumbnailer
			b, err := th.JPEG(ctx, tc.sps, tc.pps, tc.keyframe, tc.w, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			img, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("output is not a JPEG (%d bytes): %v", len(b), err)
			}
			if got := img.Bounds().Size(); got.X != tc.wantW || got.Y != tc.wantH {
				t.Fatalf("JPEG is %dx%d, want %dx%d", got.X, got.Y, tc.wantW, tc.wantH)
			}
			size := [2]int{tc.wantW, tc.wantH}
			if ref[size] == nil {
				ref[size] = referenceRGB(t, track.SPS, track.PPS, bare, tc.wantW, tc.wantH)
			}
			diff, sd := compareToReference(img, ref[size])
			t.Logf("%d bytes, mean |diff| to ffmpeg's RGB decode %.2f, luma std dev %.1f", len(b), diff, sd)
			// testsrc2 is colour bars and gradients: a blank or grey
			// picture has a std dev near 0.
			if sd < 20 {
				t.Errorf("picture looks blank: luma std dev %.1f", sd)
			}
			// JPEG at q 3 is within a few levels; a limited-range picture
			// written as full range, or another frame, is far off.
			if diff > 6 {
				t.Errorf("picture differs from the keyframe: mean |diff| %.2f per channel", diff)
			}
		})
	}
}

func TestThumbnailAccessUnit(t *testing.T) {
	sps := []byte{0x67, 1, 2, 3}
	pps := []byte{0x68, 4}
	otherPPS := []byte{0x68, 5}
	aud := []byte{0x09, 0xF0}
	sei := []byte{0x06, 7}
	idr := []byte{0x65, 8, 9}
	for _, tc := range []struct {
		name     string
		sps, pps []byte
		keyframe [][]byte
		want     [][]byte
		err      string
	}{
		{"track sets prepended", sps, pps, [][]byte{sei, idr}, [][]byte{sps, pps, sei, idr}, ""},
		{"identical in-band sets dropped, AUD dropped", sps, pps, [][]byte{aud, sps, pps, sei, idr}, [][]byte{sps, pps, sei, idr}, ""},
		{"different in-band PPS kept after the track's", sps, pps, [][]byte{aud, sps, otherPPS, idr}, [][]byte{sps, pps, otherPPS, idr}, ""},
		{"in-band only", nil, nil, [][]byte{aud, sps, pps, idr, {}, {0x0B}}, [][]byte{sps, pps, idr}, ""},
		{"no SPS", nil, pps, [][]byte{idr}, nil, "no SPS/PPS"},
		{"no PPS", sps, nil, [][]byte{idr}, nil, "no SPS/PPS"},
		{"no slice", sps, pps, [][]byte{aud, sei}, nil, "no picture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := thumbAccessUnit(tc.sps, tc.pps, tc.keyframe)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got NAL types %v, want %v", nalTypes(got), nalTypes(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("NAL %d = %x, want %x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// Broken input ends in an error with ffmpeg's words, never in a hang.
func TestThumbnailGarbage(t *testing.T) {
	mediatest.NeedFFmpeg(t, "ffmpeg")
	track, key := thumbKeyframe(t, 640, 360)
	noise := make([]byte, 20000)
	for i := range noise {
		noise[i] = byte(i*7919 + i/13)
	}
	for _, tc := range []struct {
		name     string
		sps, pps []byte
		keyframe [][]byte
		w, h     int
	}{
		{"noise slice", track.SPS, track.PPS, [][]byte{append([]byte{0x65}, noise...)}, 320, 180},
		{"noise parameter sets", append([]byte{0x67}, noise[:30]...), append([]byte{0x68}, noise[30:40]...), withoutParamSets(key), 320, 180},
		{"bad size", track.SPS, track.PPS, key, 320, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var th Thumbnailer
			start := time.Now()
			b, err := th.JPEG(ctx, tc.sps, tc.pps, tc.keyframe, tc.w, tc.h)
			if err == nil {
				t.Fatalf("no error for garbage, got %d bytes", len(b))
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("ffmpeg hung on garbage: %v", err)
			}
			if len(err.Error()) > thumbMaxStderr+200 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
			t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
		})
	}
}

// fakeFFmpeg writes a shell script standing in for ffmpeg; body runs
// after it has written its pid to the returned file.
func fakeFFmpeg(t *testing.T, body string) (bin, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	bin, pidFile = filepath.Join(dir, "ffmpeg"), filepath.Join(dir, "pid")
	script := "#!/bin/sh\necho $$ > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile + "\n" + body + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, pidFile
}

// waitPID waits for the fake ffmpeg to have started and returns its pid.
func waitPID(t *testing.T, pidFile string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("fake ffmpeg did not start")
	return 0
}

// gone reports that pid no longer exists: JPEG has killed and reaped it.
func gone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }

// A stuck ffmpeg is killed when the context ends (cancel, deadline, or
// the Thumbnailer's own timeout); JPEG returns at once and leaves no
// process behind.
func TestThumbnailCancel(t *testing.T) {
	sps, pps, key := []byte{0x67, 1}, []byte{0x68, 1}, [][]byte{{0x65, 1}}

	t.Run("cancel", func(t *testing.T) {
		// exec: the pid written is the one that sleeps.
		bin, pidFile := fakeFFmpeg(t, "exec sleep 60")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := (&Thumbnailer{FFmpeg: bin}).JPEG(ctx, sps, pps, key, 64, 36)
			done <- err
		}()
		pid := waitPID(t, pidFile)
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("JPEG returned %v after cancel", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("JPEG did not return after cancel")
		}
		if !gone(pid) {
			t.Errorf("ffmpeg %d is still there after JPEG returned", pid)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		bin, pidFile := fakeFFmpeg(t, "exec sleep 60")
		start := time.Now()
		_, err := (&Thumbnailer{FFmpeg: bin, Timeout: 300 * time.Millisecond}).JPEG(t.Context(), sps, pps, key, 64, 36)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("JPEG took %v with a 300ms timeout", d)
		}
		if pid := waitPID(t, pidFile); !gone(pid) {
			t.Errorf("ffmpeg %d is still there after JPEG returned", pid)
		}
	})

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		_, err := (&Thumbnailer{}).JPEG(ctx, sps, pps, key, 64, 36)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("JPEG took %v with a cancelled context", d)
		}
	})

	t.Run("missing binary", func(t *testing.T) {
		_, err := (&Thumbnailer{FFmpeg: filepath.Join(t.TempDir(), "no-ffmpeg")}).JPEG(t.Context(), sps, pps, key, 64, 36)
		if err == nil {
			t.Fatal("no error without ffmpeg")
		}
	})
}

// A failing ffmpeg's error carries the end of its stderr, bounded; a
// successful exit without a JPEG is an error too.
func TestThumbnailFFmpegErrors(t *testing.T) {
	sps, pps, key := []byte{0x67, 1}, []byte{0x68, 1}, [][]byte{{0x65, 1}}
	bin, _ := fakeFFmpeg(t, `cat >/dev/null; i=0; while [ $i -lt 2000 ]; do echo "noise line $i" >&2; i=$((i+1)); done; echo "the real error" >&2; exit 1`)
	_, err := (&Thumbnailer{FFmpeg: bin}).JPEG(t.Context(), sps, pps, key, 64, 36)
	if err == nil || !strings.Contains(err.Error(), "the real error") || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("err = %v, want the exit status and stderr's last line", err)
	}
	if err != nil && len(err.Error()) > thumbMaxStderr+200 {
		t.Errorf("error message is %d bytes long", len(err.Error()))
	}

	bin, _ = fakeFFmpeg(t, `cat >/dev/null; echo "Output file is empty, nothing was encoded" >&2; exit 0`)
	_, err = (&Thumbnailer{FFmpeg: bin}).JPEG(t.Context(), sps, pps, key, 64, 36)
	if err == nil || !strings.Contains(err.Error(), "no JPEG") || !strings.Contains(err.Error(), "nothing was encoded") {
		t.Errorf("err = %v, want no JPEG", err)
	}
}

func TestThumbnailSize(t *testing.T) {
	ladder720 := [][2]int{{1280, 720}, {852, 480}, {640, 360}, {284, 160}, {0, 0}}
	for _, tc := range []struct {
		resolution string
		srcW, srcH int
		renditions [][2]int
		w, h       int
	}{
		{"", 1280, 720, ladder720, 1280, 720},
		{"", 1279, 719, nil, 1278, 718},
		{"UNKNOWN", 1920, 1080, nil, 1920, 1080},
		{ThumbnailSD, 1280, 720, ladder720, 852, 480}, // the spec's example
		{ThumbnailSD, 1920, 1080, nil, 852, 480},
		{ThumbnailSD, 640, 480, nil, 640, 480},  // 4:3, already SD
		{ThumbnailSD, 640, 360, nil, 640, 360},  // never upscaled
		{ThumbnailSD, 720, 1280, nil, 480, 852}, // portrait: the short edge
		{ThumbnailSD, 1440, 1080, nil, 640, 480},
		{ThumbnailHD, 1920, 1080, nil, 1280, 720},
		{ThumbnailHD, 1280, 720, nil, 1280, 720},
		{ThumbnailHD, 852, 480, nil, 852, 480},
		{ThumbnailHD, 2560, 1080, nil, 1706, 720}, // 21:9
		{ThumbnailFullHD, 3840, 2160, nil, 1920, 1080},
		{ThumbnailFullHD, 1920, 1080, nil, 1920, 1080},
		{ThumbnailFullHD, 1280, 720, nil, 1280, 720},
		{ThumbnailFullHD, 1080, 1920, nil, 1080, 1920},
		{ThumbnailLowest, 1280, 720, ladder720, 284, 160},
		{ThumbnailLowest, 1280, 720, [][2]int{{852, 480}, {1280, 720}}, 852, 480},
		{ThumbnailLowest, 1280, 720, nil, 1280, 720},              // BASIC: the source only
		{ThumbnailLowest, 1280, 720, [][2]int{{0, 0}}, 1280, 720}, // audio only
		{ThumbnailLowest, 640, 360, [][2]int{{1280, 720}}, 640, 360},
		{ThumbnailSD, 0, 0, nil, 0, 0},
	} {
		name := tc.resolution + "/" + strconv.Itoa(tc.srcW) + "x" + strconv.Itoa(tc.srcH)
		t.Run(name, func(t *testing.T) {
			w, h := ThumbnailSize(tc.resolution, tc.srcW, tc.srcH, tc.renditions)
			if w != tc.w || h != tc.h {
				t.Errorf("ThumbnailSize = %dx%d, want %dx%d", w, h, tc.w, tc.h)
			}
		})
	}
}

// BenchmarkThumbnailJPEG is the cost of one thumbnail: a 720p keyframe to
// an 852x480 JPEG, wall time (ns/op) and ffmpeg's CPU time.
func BenchmarkThumbnailJPEG(b *testing.B) {
	track, key := thumbKeyframe(b, 1280, 720)
	key = withoutParamSets(key)
	var th Thumbnailer
	var cpu time.Duration
	var size int
	for b.Loop() {
		jpg, c, err := th.jpeg(b.Context(), track.SPS, track.PPS, key, 852, 480)
		if err != nil {
			b.Fatal(err)
		}
		cpu += c
		size = len(jpg)
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(size), "jpeg-bytes")
}
