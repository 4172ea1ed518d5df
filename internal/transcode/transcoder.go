package transcode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/openivs/openivs/internal/media"
)

// Supervision timing: a dead ffmpeg is replaced at once (after a short
// pause if it keeps dying young), a silent one is killed after stallAfter
// of no output while the source flows, and startAllowance covers the first
// output of a new process. All are well inside the 2 s IVS-like budget
// from failure to a new process.
const (
	stallAfter     = 1500 * time.Millisecond
	startAllowance = 3 * time.Second
	crashPause     = 500 * time.Millisecond
	stopGrace      = 3 * time.Second
	// stderrLines caps how much of one process's stderr reaches the log.
	stderrLines = 50
)

// Config sets up a Transcoder.
type Config struct {
	Source *media.Hub
	// Rungs is the whole ladder; the transcoder makes the Transcoded ones.
	Rungs  []Rung
	Input  Input
	FFmpeg string // the ffmpeg binary (default "ffmpeg" on PATH)
	// X264Preset is libx264's speed preset (DefaultX264Preset).
	X264Preset string
	Logger     *slog.Logger // carries the stream id
	// StopGrace is how long ffmpeg may drain after its input ended before
	// it is killed (default 3 s, so an ended stream frees its CPU soon).
	StopGrace time.Duration
}

// Transcoder runs one ffmpeg for a live stream and keeps it running: it
// feeds the source hub to ffmpeg and writes each transcoded rung into a
// hub of its own, which a packager serves like the source.
type Transcoder struct {
	cfg   Config
	log   *slog.Logger
	src   Source
	video *media.Track
	audio *media.Track
	id3   *media.Track // timed metadata, passed around ffmpeg to every rung
	rungs []int        // indexes of cfg.Rungs that ffmpeg makes, in output order
	hubs  map[int]*media.Hub
	sinks map[int]*sink
	tl    *timeline

	restarts atomic.Int64
	pid      atomic.Int64
	// lastOutput is when ffmpeg last produced a frame (unix nanos); the
	// stall watchdog reads it.
	lastOutput atomic.Int64
	lastInput  atomic.Int64
	// captionsFedTo is the feed DTS of the newest video frame whose
	// captions were queued (touched only by the feeding goroutine).
	captionsFedTo time.Duration
}

// New prepares a transcoder and the hubs of its rungs; Run starts ffmpeg.
func New(cfg Config) (*Transcoder, error) {
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = stopGrace
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := exec.LookPath(cfg.FFmpeg); err != nil {
		return nil, fmt.Errorf("transcode: no ffmpeg (install Debian's ffmpeg package or pass --ffmpeg): %w", err)
	}
	t := &Transcoder{cfg: cfg, log: cfg.Logger, hubs: map[int]*media.Hub{}, sinks: map[int]*sink{}, tl: newTimeline()}
	for _, tr := range cfg.Source.Tracks() {
		switch {
		case tr.Kind == media.Video && t.video == nil:
			v := tr
			t.video = &v
		case tr.Kind == media.Audio && t.audio == nil:
			a := tr
			t.audio = &a
		case tr.Kind == media.Data && tr.Codec == media.CodecID3 && t.id3 == nil:
			d := tr
			t.id3 = &d
		}
	}
	if t.video == nil {
		return nil, errors.New("transcode: the source has no video")
	}
	t.src = Source{FPS: cfg.Input.FPS, HasAudio: t.audio != nil}
	if t.audio != nil {
		t.src.SampleRate, t.src.Channels = t.audio.SampleRate, t.audio.Channels
	}
	for i, r := range cfg.Rungs {
		if !r.Transcoded() || (r.AudioOnly && t.audio == nil) {
			continue
		}
		tracks, err := t.rungTracks(r)
		if err != nil {
			return nil, err
		}
		t.rungs = append(t.rungs, i)
		t.hubs[i] = media.NewHub(tracks, media.HubOptions{})
		t.sinks[i] = &sink{t: t, hub: t.hubs[i], video: !r.AudioOnly, metaTrack: -1}
		if t.id3 != nil {
			t.sinks[i].metaTrack = len(tracks) - 1
		}
	}
	return t, nil
}

// rungTracks describes what ffmpeg will write for a rung: H.264 at the
// rung's size (parameter sets arrive in-band with the first keyframe) and
// the source's AAC or a new AAC-LC encoding at the source's sample rate
// and channel count.
func (t *Transcoder) rungTracks(r Rung) ([]media.Track, error) {
	var tracks []media.Track
	if !r.AudioOnly {
		tracks = append(tracks, media.Track{ID: 0, Kind: media.Video, Codec: media.CodecH264, Width: r.Width, Height: r.Height})
	}
	if t.audio != nil {
		a := *t.audio
		if r.AudioKbps > 0 {
			conf := mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: t.audio.SampleRate, ChannelCount: t.audio.Channels}
			if t.audio.Channels >= 1 && t.audio.Channels <= 6 {
				conf.ChannelConfig = uint8(t.audio.Channels)
			}
			a = media.AACTrack(conf)
			if len(a.AudioConfig) == 0 {
				return nil, fmt.Errorf("transcode: no AAC configuration for %d Hz, %d channels", t.audio.SampleRate, t.audio.Channels)
			}
		}
		a.ID = len(tracks)
		tracks = append(tracks, a)
	}
	if t.id3 != nil {
		tracks = append(tracks, media.Track{ID: len(tracks), Kind: media.Data, Codec: media.CodecID3})
	}
	return tracks, nil
}

// Hub returns the hub ffmpeg writes rung i (an index into Config.Rungs)
// into, or nil when ffmpeg does not make that rung.
func (t *Transcoder) Hub(i int) *media.Hub { return t.hubs[i] }

// Restarts is how many times ffmpeg was replaced.
func (t *Transcoder) Restarts() int64 { return t.restarts.Load() }

// PID is the running ffmpeg's process id (0 between processes).
func (t *Transcoder) PID() int { return int(t.pid.Load()) }

// Args is the ffmpeg command line the transcoder runs (without the
// binary), for logs and for the reference benchmark.
func (t *Transcoder) Args() []string {
	return ffmpegArgs("pipe:0", t.src, t.cfg.Rungs, t.cfg.X264Preset, t.pipeName)
}

// ReferenceArgs is the same ladder as a plain ffmpeg command from a file
// to files, the bare-ffmpeg reference the CPU benchmark compares with.
func ReferenceArgs(input string, src Source, rungs []Rung, x264Preset string, out Output) []string {
	return ffmpegArgs(input, src, rungs, x264Preset, out)
}

// pipeName is where rung i's output goes: its position among the outputs
// after stdin, stdout and stderr.
func (t *Transcoder) pipeName(i int) string {
	for j, r := range t.rungs {
		if r == i {
			return fmt.Sprintf("pipe:%d", 3+j)
		}
	}
	return "pipe:1"
}

// Run keeps ffmpeg running until the source hub closes (or ctx ends),
// then closes every rung hub so their packagers finish.
func (t *Transcoder) Run(ctx context.Context) {
	defer func() {
		for _, h := range t.hubs {
			h.Close()
		}
	}()
	if len(t.rungs) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		started := time.Now()
		err := t.runOnce(ctx)
		if ctx.Err() != nil || errors.Is(err, media.ErrHubClosed) {
			return
		}
		t.restarts.Add(1)
		t.log.Warn("transcode: restarting ffmpeg", "err", err, "ran", time.Since(started).Round(time.Millisecond))
		if time.Since(started) < 2*time.Second {
			select { // dying young again and again must not spin
			case <-ctx.Done():
				return
			case <-time.After(crashPause):
			}
		}
	}
}

// runOnce runs one ffmpeg process to its end: the source ended (returns
// media.ErrHubClosed), ffmpeg died, or it stalled and was killed.
func (t *Transcoder) runOnce(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.Command(t.cfg.FFmpeg, t.Args()...)
	// ffmpeg must not outlive us, even if we are killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	readers := make([]*os.File, len(t.rungs))
	for j := range t.rungs {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range readers[:j] {
				f.Close()
			}
			for _, f := range cmd.ExtraFiles {
				f.Close()
			}
			return err
		}
		readers[j] = r
		cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	}
	if err := cmd.Start(); err != nil {
		for _, f := range readers {
			f.Close()
		}
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
		return fmt.Errorf("transcode: starting ffmpeg: %w", err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close() // ffmpeg holds the write ends now
	}
	t.pid.Store(int64(cmd.Process.Pid))
	defer t.pid.Store(0)
	start := time.Now()
	t.lastOutput.Store(0)
	t.log.Info("transcode: ffmpeg started", "pid", cmd.Process.Pid, "renditions", len(t.rungs))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); t.logStderr(stderr) }()

	// Readers: one per rung output.
	outputsDone := make(chan struct{})
	var rwg sync.WaitGroup
	for j, i := range t.rungs {
		rwg.Add(1)
		s := t.sinks[i]
		s.restart()
		go func(r *os.File) {
			defer rwg.Done()
			defer r.Close()
			if err := readOutput(r, s.emit); err != nil {
				t.log.Warn("transcode: rung output", "rendition", t.cfg.Rungs[i].Name, "err", err)
			}
			// One output ending means the process is going away: stop
			// feeding it so it ends for good.
			cancel()
		}(readers[j])
	}
	go func() { rwg.Wait(); close(outputsDone) }()

	// Feeder: the source hub into ffmpeg's stdin.
	feedErr := make(chan error, 1)
	go func() { feedErr <- t.feed(runCtx, stdin) }()

	// Watchdog: a stalled ffmpeg is killed; the readers then end.
	var result error
	watch := time.NewTicker(250 * time.Millisecond)
	defer watch.Stop()
	var fed error
	feeding := true
loop:
	for {
		select {
		case err := <-feedErr:
			feeding = false
			fed = err
			stdin.Close()
			if !errors.Is(err, media.ErrHubClosed) {
				break loop // ffmpeg's stdin broke, or ctx ended
			}
			// The source ended: let ffmpeg drain, within reason.
			select {
			case <-outputsDone:
			case <-time.After(t.cfg.StopGrace):
				t.log.Warn("transcode: ffmpeg did not finish after its input ended; killing it")
			}
			break loop
		case <-outputsDone:
			result = errors.New("ffmpeg output ended")
			break loop
		case now := <-watch.C:
			last := t.lastOutput.Load()
			in := t.lastInput.Load()
			allowance := stallAfter
			ref := time.Unix(0, last)
			if last == 0 {
				allowance, ref = startAllowance, start
			}
			if feeding && in != 0 && now.Sub(time.Unix(0, in)) < time.Second && now.Sub(ref) > allowance {
				result = fmt.Errorf("ffmpeg stalled: no output for %s", now.Sub(ref).Round(time.Millisecond))
				break loop
			}
		}
	}
	cancel()
	stdin.Close()
	_ = cmd.Process.Kill() // no-op once it exited by itself
	<-outputsDone
	if feeding {
		fed = <-feedErr
	}
	waitErr := cmd.Wait() // reaps the process: no zombies
	wg.Wait()
	if errors.Is(fed, media.ErrHubClosed) {
		return media.ErrHubClosed
	}
	if result == nil {
		result = fmt.Errorf("ffmpeg exited: %v", waitErr)
	}
	return result
}

// feed writes the source hub's frames to w as FLV until the hub closes
// (media.ErrHubClosed), ctx ends or w breaks.
func (t *Transcoder) feed(ctx context.Context, w io.Writer) error {
	sub := t.cfg.Source.Subscribe("transcode")
	defer sub.Close()
	fw := newFLVWriter(w, t.video, t.audio)
	if err := fw.header(); err != nil {
		return err
	}
	started := false
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if t.id3 != nil && f.Track == t.id3.ID {
			// Metadata does not go through ffmpeg: each rung inserts it
			// when its own output reaches the frame's time.
			if feed, ok := t.tl.feedTime(f.PTS); ok {
				for _, s := range t.sinks {
					s.queueMeta(feed, f)
				}
			}
			continue
		}
		video := f.Track == t.video.ID
		if !video && (t.audio == nil || f.Track != t.audio.ID) {
			continue
		}
		if !started {
			if !video || !f.Key {
				continue // ffmpeg starts decoding at a keyframe
			}
			started = true
		}
		dts, pts := t.tl.feed(f, video)
		if video && dts > t.captionsFedTo {
			// Captions bypass ffmpeg too (libx264 runs with -a53cc 0):
			// each video rung re-inserts them when its own output reaches
			// their time, so a rung at half the frame rate carries the
			// dropped frames' captions on the frames it keeps. The DTS
			// check keeps a GOP replayed after a restart from queueing twice.
			t.captionsFedTo = dts
			if cc := media.CaptionsInAccessUnit(f.NALUs); len(cc) > 0 {
				for _, s := range t.sinks {
					s.queueCaptions(pts, cc)
				}
			}
		}
		if err := fw.frame(f, video, dts, pts); err != nil {
			return err
		}
		t.lastInput.Store(time.Now().UnixNano())
	}
}

// harmlessStderr are ffmpeg warnings every live start produces: probing
// stops early on purpose (the FLV headers already describe the tracks),
// and FLV does not state an AAC frame size. They go to the debug log.
var harmlessStderr = []string{
	"not enough frames to estimate rate",
	"Could not find codec parameters for stream",
	"Consider increasing the value for the 'analyzeduration'",
	"frame size not set",
}

func (t *Transcoder) logStderr(r io.Reader) {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if slices.ContainsFunc(harmlessStderr, func(s string) bool { return strings.Contains(line, s) }) {
			t.log.Debug("ffmpeg", "line", line)
			continue
		}
		n++
		switch {
		case n <= stderrLines:
			t.log.Warn("ffmpeg", "line", line)
		case n == stderrLines+1:
			t.log.Warn("ffmpeg: further output of this process not logged")
		}
	}
}

// sink turns one rung's output frames into hub frames: source media time
// and ingest wall clock from the timeline, and after a restart nothing
// until a keyframe newer than what the rung already delivered, marked as
// a discontinuity.
type sink struct {
	t     *Transcoder
	hub   *media.Hub
	video bool

	// metaTrack is the rung hub's ID3 track (-1: none); metas wait, in
	// feed-time order, for the rung's output to reach them. The feeder
	// queues, the reader delivers.
	metaTrack int
	metaMu    sync.Mutex
	metas     []pendingMeta
	queued    [64]*media.Frame // recently queued, so a replay after a restart is not queued twice
	queuedAt  int

	// captions wait, in feed-PTS (presentation) order, like metas.
	captionMu sync.Mutex
	captions  []pendingCaptions

	// Touched only by the rung's reader goroutine (one at a time).
	lastFeed  time.Duration // newest feed PTS delivered
	delivered bool
	resuming  bool // after a restart: wait for a newer keyframe
	epoch     int
}

// pendingMeta is a timed-metadata frame waiting for its rung's output.
type pendingMeta struct {
	feed  time.Duration
	frame *media.Frame
}

// pendingCaptions are one source picture's cc triplets waiting for the
// rung's output to reach its presentation time.
type pendingCaptions struct {
	feed time.Duration
	cc   []media.CCTriplet
}

// maxPendingCaptions bounds the triplets a rung holds while its ffmpeg is
// stalled or restarting: a few seconds of 708 captions at 60 fps.
const maxPendingCaptions = 31 * 40

func (s *sink) queueCaptions(feed time.Duration, cc []media.CCTriplet) {
	if !s.video {
		return
	}
	s.captionMu.Lock()
	defer s.captionMu.Unlock()
	// Source pictures arrive in decode order; captions play in
	// presentation order.
	i := len(s.captions)
	for i > 0 && s.captions[i-1].feed > feed {
		i--
	}
	s.captions = slices.Insert(s.captions, i, pendingCaptions{feed: feed, cc: cc})
	n := 0
	for _, p := range s.captions {
		n += len(p.cc)
	}
	for n > maxPendingCaptions && len(s.captions) > 1 {
		n -= len(s.captions[0].cc)
		s.captions = s.captions[1:]
	}
}

// takeCaptions returns the triplets due at or before feed time upTo, in order.
func (s *sink) takeCaptions(upTo time.Duration) []media.CCTriplet {
	s.captionMu.Lock()
	defer s.captionMu.Unlock()
	var cc []media.CCTriplet
	n := 0
	for n < len(s.captions) && s.captions[n].feed <= upTo {
		cc = append(cc, s.captions[n].cc...)
		n++
	}
	s.captions = s.captions[n:]
	return cc
}

func (s *sink) restart() {
	s.resuming = s.delivered
}

func (s *sink) queueMeta(feed time.Duration, f *media.Frame) {
	if s.metaTrack < 0 {
		return
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	for _, q := range s.queued {
		if q == f {
			return
		}
	}
	s.queued[s.queuedAt%len(s.queued)] = f
	s.queuedAt++
	s.metas = append(s.metas, pendingMeta{feed: feed, frame: f})
}

// flushMetas writes the metadata due at or before feed time upTo.
func (s *sink) flushMetas(upTo time.Duration) {
	s.metaMu.Lock()
	n := 0
	for n < len(s.metas) && s.metas[n].feed <= upTo {
		n++
	}
	due := s.metas[:n:n]
	s.metas = s.metas[n:]
	s.metaMu.Unlock()
	for _, m := range due {
		g := *m.frame
		g.Track = s.metaTrack
		s.hub.Write(&g)
	}
}

func (s *sink) emit(of outputFrame) {
	s.t.lastOutput.Store(time.Now().UnixNano())
	trackID := 0
	if s.video && !of.video {
		trackID = 1
	}
	if s.resuming {
		// Video rungs resume on a keyframe, audio-only on any newer frame.
		if of.pts <= s.lastFeed || (s.video && (!of.video || !of.key)) {
			return
		}
	}
	if s.video && !of.video && !s.delivered {
		return // audio before the first video frame has nothing to follow
	}
	if of.video || !s.video {
		s.flushMetas(of.pts) // before the frame they are dated at
	}
	pts, epoch, wall := s.t.tl.source(of.pts)
	dts := of.dts - (of.pts - pts)
	nalus := of.nalus
	if of.video {
		if sei := media.CaptionSEI(s.takeCaptions(of.pts)); sei != nil {
			nalus = media.WithCaptions(nalus, sei)
		}
	}
	f := &media.Frame{Track: trackID, PTS: pts, DTS: dts, Wall: wall, Key: of.key, NALUs: nalus}
	if s.resuming || (s.delivered && epoch != s.epoch) {
		f.Discontinuity = true
	}
	s.resuming, s.delivered, s.epoch = false, true, epoch
	if of.pts > s.lastFeed {
		s.lastFeed = of.pts
	}
	s.hub.Write(f)
}
