package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/openivs/openivs/internal/transcode"
)

// TranscodeOptions configure RunTranscode.
type TranscodeOptions struct {
	// Recording is generated when File is empty (default 1920x1080 30 fps
	// at 6 Mbps).
	Recording RecordingSpec
	File      string
	Type      string // channel type (STANDARD; ADVANCED_* use their default preset)
	// Duration is each measurement window (default 30 s); Warmup is waited
	// before it (default 5 s).
	Duration, Warmup time.Duration
	Logger           *slog.Logger
	Progress         io.Writer
}

func (o *TranscodeOptions) defaults() {
	if o.Recording == (RecordingSpec{}) {
		o.Recording = RecordingSpec{Bitrate: 6_000_000, Width: 1920, Height: 1080, FPS: 30}
	}
	if o.Type == "" {
		o.Type = transcode.TypeStandard
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Warmup <= 0 {
		o.Warmup = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// TranscodeResult compares the CPU of a live transcoded stream — the whole
// node (ingest, hub, every packager) plus its ffmpeg — with a bare ffmpeg
// encoding the same ladder from the same file in real time. CPU figures
// are cores (CPU seconds per second, which is also per second of input).
type TranscodeResult struct {
	Recording string   `json:"recording"`
	Type      string   `json:"type"`
	Ladder    []string `json:"ladder"`
	Cores     int      `json:"cores"`
	// PipelineCores is node + ffmpeg, less the in-process publisher.
	PipelineCores  float64  `json:"pipelineCores"`
	NodeCores      float64  `json:"nodeCores"`      // the node process alone (publisher removed)
	FFmpegCores    float64  `json:"ffmpegCores"`    // the node's ffmpeg
	PublisherCores float64  `json:"publisherCores"` // the publisher against a null server
	BareCores      float64  `json:"bareCores"`      // bare ffmpeg, same ladder
	Ratio          float64  `json:"ratio"`          // PipelineCores / BareCores
	Restarts       int      `json:"ffmpegRestarts"` // ffmpeg processes seen beyond the first
	Errors         []string `json:"errors,omitempty"`
}

// OK reports whether both sides were measured.
func (r *TranscodeResult) OK() bool {
	return len(r.Errors) == 0 && r.PipelineCores > 0 && r.BareCores > 0
}

// JSON writes the result as JSON.
func (r *TranscodeResult) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Report writes the result for people.
func (r *TranscodeResult) Report(w io.Writer) {
	fmt.Fprintf(w, "openivs bench transcode: %s, %d cores\n", r.Type, r.Cores)
	fmt.Fprintf(w, "  recording            %s\n", r.Recording)
	fmt.Fprintf(w, "  ladder               %s\n", strings.Join(r.Ladder, " "))
	fmt.Fprintf(w, "  pipeline             %.3f cores (node %.3f + ffmpeg %.3f; publisher %.3f removed)\n",
		r.PipelineCores, r.NodeCores, r.FFmpegCores, r.PublisherCores)
	fmt.Fprintf(w, "  bare ffmpeg          %.3f cores\n", r.BareCores)
	fmt.Fprintf(w, "  ratio                %.3f× (target ≤ 1.10×)\n", r.Ratio)
	if r.Restarts > 0 {
		fmt.Fprintf(w, "  ffmpeg restarts      %d (the figure is suspect)\n", r.Restarts)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error                %s\n", e)
	}
}

// RunTranscode measures one transcoded stream against bare ffmpeg.
func RunTranscode(ctx context.Context, opts TranscodeOptions) (*TranscodeResult, error) {
	opts.defaults()
	say := func(format string, args ...any) { fmt.Fprintf(opts.Progress, format+"\n", args...) }
	path := opts.File
	if path == "" {
		say("making/reusing the recording (%dx%d %d fps, %d kbps)...", opts.Recording.Width, opts.Recording.Height, opts.Recording.FPS, opts.Recording.Bitrate/1000)
		var err error
		if path, err = EnsureRecordingOf(ctx, opts.Recording); err != nil {
			return nil, err
		}
	}
	rec, err := LoadRecording(path)
	if err != nil {
		return nil, err
	}
	var sps h264.SPS
	if err := sps.Unmarshal(rec.SPS); err != nil {
		return nil, fmt.Errorf("bench: the recording's SPS: %w", err)
	}
	fps := sps.FPS()
	if fps <= 0 {
		fps = float64(rec.VideoFrames) / rec.Duration.Seconds()
	}
	in := transcode.Input{Width: sps.Width(), Height: sps.Height(), FPS: fps}
	rungs := transcode.Ladder(opts.Type, "", in)
	res := &TranscodeResult{Recording: path, Type: opts.Type, Cores: runtime.NumCPU()}
	for _, r := range rungs {
		res.Ladder = append(res.Ladder, r.Name)
	}

	// The pipeline: a node, one channel, one publisher replaying the file.
	node, cfg, stopNode, err := startNode(ctx, 1, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer stopNode()
	_, key, err := node.IVS().CreateChannel(ctx, cfg.AccountID, "bench-transcode", opts.Type, true)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(fmt.Sprintf("rtmp://127.0.0.1:%d/app#%s", node.Ports()["rtmp"], key))
	if err != nil {
		return nil, err
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	pub := &publisher{url: u, rec: rec, admitted: make(chan struct{})}
	pubErr := make(chan error, 1)
	go func() { pubErr <- pub.run(pubCtx) }()
	say("publishing; warming up %s, then measuring the pipeline for %s", opts.Warmup, opts.Duration)
	sleep(ctx, opts.Warmup)
	kids := childrenNamed(os.Getpid(), "ffmpeg")
	if len(kids) != 1 {
		stopPub()
		return nil, fmt.Errorf("bench: %d ffmpeg processes under the node after the warm-up, want 1 (is the channel transcoding? is ffmpeg installed?)", len(kids))
	}
	ff := kids[0]
	self1, err := sampleProc()
	if err != nil {
		stopPub()
		return nil, err
	}
	ff1, err := procCPU(ff)
	if err != nil {
		stopPub()
		return nil, err
	}
	sleep(ctx, opts.Duration)
	self2, err := sampleProc()
	if err != nil {
		stopPub()
		return nil, err
	}
	ff2, err := procCPU(ff)
	if err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("the node's ffmpeg %d went away during the window: %v", ff, err))
	}
	if now := childrenNamed(os.Getpid(), "ffmpeg"); len(now) != 1 || now[0] != ff {
		res.Restarts = 1
	}
	stopPub()
	if err := <-pubErr; err != nil {
		res.Errors = append(res.Errors, "publisher: "+err.Error())
	}
	stopNode()
	span := self2.at.Sub(self1.at).Seconds()
	res.FFmpegCores = (ff2 - ff1).Seconds() / span
	nodeWithPublisher := float64(self2.cpu-self1.cpu) / float64(self2.at.Sub(self1.at))

	say("measuring the publisher alone for %s", opts.Duration)
	pubPct, err := clientCost(ctx, rec, 1, opts.Duration, opts.Warmup)
	if err != nil {
		return nil, err
	}
	res.PublisherCores = pubPct / 100
	res.NodeCores = max(0, nodeWithPublisher-res.PublisherCores)
	res.PipelineCores = res.NodeCores + res.FFmpegCores

	say("measuring bare ffmpeg for %s", opts.Duration)
	bare, err := bareLadder(ctx, path, rec, in, rungs, opts.Warmup, opts.Duration)
	if err != nil {
		return nil, err
	}
	res.BareCores = bare
	if res.BareCores > 0 {
		res.Ratio = res.PipelineCores / res.BareCores
	}
	return res, nil
}

// bareLadder runs the reference: ffmpeg reading the file in real time
// (looped) and encoding the same ladder with the same arguments the
// transcoder uses, to /dev/null; it returns its cores over the window.
func bareLadder(ctx context.Context, path string, rec *Recording, in transcode.Input, rungs []transcode.Rung, warmup, window time.Duration) (float64, error) {
	src := transcode.Source{FPS: in.FPS, HasAudio: rec.AudioConfig != nil}
	if rec.AudioConfig != nil {
		src.SampleRate, src.Channels = rec.AudioConfig.SampleRate, rec.AudioConfig.ChannelCount
		if c := int(rec.AudioConfig.ChannelConfig); c >= 1 && c <= 6 {
			src.Channels = c
		}
	}
	args := transcode.ReferenceArgs(path, src, rungs, "", func(int) string { return os.DevNull })
	// Real time and looped, as the live stream is: -re and -stream_loop
	// are input options and go before -i.
	for i, a := range args {
		if a == "-i" {
			args = append(args[:i:i], append([]string{"-re", "-stream_loop", "-1"}, args[i:]...)...)
			break
		}
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return 0, ErrNoFFmpeg
	}
	cmd := exec.CommandContext(ctx, ffmpeg, append([]string{"-y"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	defer stop()
	failed := func(err error) (float64, error) {
		stop() // stderr is complete once ffmpeg is reaped
		return 0, fmt.Errorf("bench: bare ffmpeg ended early: %w\n%s", err, stderr.String())
	}
	sleep(ctx, warmup)
	at1 := time.Now()
	t1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return failed(err)
	}
	sleep(ctx, window)
	t2, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return failed(err)
	}
	return (t2 - t1).Seconds() / time.Since(at1).Seconds(), nil
}

// clockTick is the unit of /proc/PID/stat CPU times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// procCPU is a process's user + system CPU time from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	st := string(raw)
	end := strings.LastIndexByte(st, ')')
	if end < 0 {
		return 0, fmt.Errorf("bench: unreadable /proc/%d/stat", pid)
	}
	// After "pid (comm)": state ppid ... utime is field 14, stime 15 of the
	// whole line, so the 12th and 13th after the comm.
	f := strings.Fields(st[end+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	if f[0] == "Z" {
		return 0, fmt.Errorf("bench: process %d exited", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: unreadable CPU times in /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// Process is one entry of /proc: a process id and its state (R, S, Z
// for a zombie, ...).
type Process struct {
	PID   int
	State string
}

// ChildProcesses lists the child processes of ppid named comm, zombies
// included, from /proc.
func ChildProcesses(ppid int, comm string) ([]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	parent := strconv.Itoa(ppid)
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		st := string(raw)
		open, end := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || end < open || st[open+1:end] != comm {
			continue
		}
		if f := strings.Fields(st[end+1:]); len(f) > 1 && f[1] == parent {
			out = append(out, Process{PID: pid, State: f[0]})
		}
	}
	return out, nil
}

// childrenNamed lists the live (not zombie) child processes of ppid
// named comm.
func childrenNamed(ppid int, comm string) []int {
	procs, _ := ChildProcesses(ppid, comm)
	var out []int
	for _, p := range procs {
		if p.State != "Z" {
			out = append(out, p.PID)
		}
	}
	return out
}
