// Package bench holds openivs's load benchmarks (`openivs bench ...`). The
// ingest benchmark starts a whole node in-process and publishes many RTMP
// streams into it from a recorded FLV file — replayed, never encoded, so the
// machine's CPU goes to openivs rather than to x264 — and measures what the
// issue's targets are stated in: concurrent publishers held live, admission
// latency, CPU, and memory per stream beyond its GOP buffer.
package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/app"
	"github.com/openivs/openivs/internal/config"
	"github.com/openivs/openivs/internal/media"
)

// IngestOptions configures RunIngest. Zero values take the defaults.
type IngestOptions struct {
	Streams  int           // concurrent publishers (default 100)
	Duration time.Duration // measurement window once every stream is live (default 30 s)
	// Warmup is waited after the last stream went live and before the
	// window opens, so start-up allocations and ramp CPU stay out of it
	// (default 3 s, at most Duration).
	Warmup time.Duration
	// Bitrate of the generated recording in bits/s (default 3 Mbps);
	// ignored when File is set.
	Bitrate int64
	File    string // an H.264/AAC FLV to replay instead of the generated one
	RTMPS   bool   // publish over RTMPS instead of plain RTMP
	// IdleSubscribers per stream that never read (default 1; -1 for none),
	// standing for fan-out consumers that fell asleep.
	IdleSubscribers int
	// ClientCost also replays the same streams into a null RTMP server for
	// a short window, to estimate the in-process client's share of the CPU.
	ClientCost bool
	// CPUProfile, if set, receives a CPU profile of the measurement window.
	CPUProfile string
	// Progress receives one line per phase; nil discards.
	Progress io.Writer
	// Logger is the node's logger; nil discards (a hundred streams log a lot).
	Logger *slog.Logger
}

// IngestResult is what one run measured.
type IngestResult struct {
	Streams         int
	Protocol        string
	IdleSubscribers int
	Recording       string
	RecordingBPS    int64         // media payload bitrate of the recording
	GOPBytes        int64         // average bytes of one GOP of the recording
	Window          time.Duration // measurement window actually observed

	Admitted, WentLive, StayedLive int
	Failures                       []string // one line per failed stream

	// Admission: dial start -> publish accepted (Session Created).
	AdmissionP50, AdmissionP95, AdmissionMax time.Duration
	// Live: dial start -> the stream's hub exists (tracks discovered,
	// frames flowing to subscribers).
	LiveP50, LiveP95, LiveMax time.Duration

	CPUPercentOfCore    float64 // CPU time / wall time over the window ×100
	CPUPercentOfMachine float64 // the same divided by GOMAXPROCS cores
	Cores               int

	RSSBefore, RSSSteady, RSSMax int64 // bytes
	HeapBefore, HeapSteady       uint64
	RSSPerStream                 int64 // (steady - before) / streams
	HeapPerStream                int64
	// LivePerStream is the heap still reachable after a forced GC, per
	// stream: what the streams hold, without the collector's headroom.
	LivePerStream, LiveBeyondGOPPerStream int64
	BeyondGOPPerStream                    int64 // RSSPerStream - GOPBytes
	Goroutines                            int

	FramesSent, FramesWritten, FramesReceived int64
	ReaderDropped                             int64
	IngestLost                                int64 // sent - written by the server into hubs
	DeliveryShort                             int64 // frames written after subscribing that the readers neither got nor had counted as dropped
	GOPFramesAvg                              float64

	// ClientCPUPercentOfCore is the CPU of the same publishers against a
	// null server (client + bare RTMP demux); 0 when not measured.
	ClientCPUPercentOfCore float64
}

// OK reports whether every stream went live, stayed live and lost nothing.
func (r *IngestResult) OK() bool {
	return r.WentLive == r.Streams && r.StayedLive == r.Streams && r.ReaderDropped == 0 &&
		r.IngestLost == 0 && r.DeliveryShort == 0 && len(r.Failures) == 0
}

// stream is one publisher and the in-process consumers of its hub.
type stream struct {
	arn string
	pub *publisher

	hub        *media.Hub
	live       time.Duration // dial start -> hub seen
	preWritten int64         // hub FramesWritten just before the reader subscribed
	idle       []*media.Subscriber
	reader     *media.Subscriber
	received   int64 // set when the reader finished
	readerDone chan struct{}
	stayed     bool
	pubErr     error
}

func (o *IngestOptions) defaults() {
	if o.Streams <= 0 {
		o.Streams = 100
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Warmup <= 0 {
		o.Warmup = 3 * time.Second
	}
	o.Warmup = min(o.Warmup, o.Duration)
	if o.Bitrate <= 0 {
		o.Bitrate = DefaultBitrate
	}
	switch {
	case o.IdleSubscribers == 0:
		o.IdleSubscribers = 1
	case o.IdleSubscribers < 0:
		o.IdleSubscribers = 0
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// RunIngest runs the ingest benchmark. It returns an error when the
// benchmark could not run at all; streams that failed are in the result.
func RunIngest(ctx context.Context, opts IngestOptions) (*IngestResult, error) {
	opts.defaults()
	say := func(format string, args ...any) { fmt.Fprintf(opts.Progress, format+"\n", args...) }

	path := opts.File
	if path == "" {
		say("making/reusing the recording (%d kbps)...", opts.Bitrate/1000)
		var err error
		if path, err = EnsureRecording(ctx, opts.Bitrate); err != nil {
			return nil, err
		}
	}
	rec, err := LoadRecording(path)
	if err != nil {
		return nil, err
	}
	keyframes := 0
	for _, u := range rec.Units {
		if u.Video && u.Key {
			keyframes++
		}
	}
	res := &IngestResult{
		Streams: opts.Streams, Protocol: "rtmp", IdleSubscribers: opts.IdleSubscribers, Recording: path,
		RecordingBPS: rec.Bytes * 8 * int64(time.Second) / int64(rec.Duration),
		GOPBytes:     rec.Bytes / int64(max(keyframes, 1)),
		Cores:        runtime.GOMAXPROCS(0),
	}
	if opts.RTMPS {
		res.Protocol = "rtmps"
	}

	node, cfg, stopNode, err := startNode(ctx, opts.Streams, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer stopNode()
	say("node up: rtmp=%d rtmps=%d, data dir %s", node.Ports()["rtmp"], node.Ports()["rtmps"], cfg.DataDir)

	var tlsCfg *tls.Config
	port := node.Ports()["rtmp"]
	if opts.RTMPS {
		port = node.Ports()["rtmps"]
		if tlsCfg, err = trustNode(node); err != nil {
			return nil, err
		}
	}
	streams := make([]*stream, opts.Streams)
	for i := range streams {
		// BASIC: ingest alone; transcoding has its own benchmark.
		arn, key, err := node.IVS().CreateChannel(ctx, cfg.AccountID, "bench-"+strconv.Itoa(i), "BASIC", !opts.RTMPS)
		if err != nil {
			return nil, fmt.Errorf("creating channel %d: %w", i, err)
		}
		u, err := url.Parse(fmt.Sprintf("%s://127.0.0.1:%d/app#%s", res.Protocol, port, key))
		if err != nil {
			return nil, err
		}
		streams[i] = &stream{arn: arn, readerDone: make(chan struct{}),
			pub: &publisher{url: u, tls: tlsCfg, rec: rec, admitted: make(chan struct{})}}
	}

	liveBefore := liveHeap()
	before, err := sampleProc()
	if err != nil {
		return nil, err
	}
	res.RSSBefore, res.HeapBefore = before.rss, before.heapInuse

	pubCtx, stopPubs := context.WithCancel(ctx)
	defer stopPubs()
	var pubs, watchers sync.WaitGroup
	say("publishing %d streams over %s...", opts.Streams, res.Protocol)
	for _, s := range streams {
		pubs.Go(func() { s.pubErr = s.pub.run(pubCtx) })
		watchers.Go(func() { s.watch(pubCtx, node, opts.IdleSubscribers) })
	}
	watchers.Wait()
	for _, s := range streams {
		if s.hub != nil {
			res.WentLive++
		}
		select {
		case <-s.pub.admitted:
			res.Admitted++
		default:
		}
	}
	say("%d/%d admitted, %d live; warming up %s, then measuring %s", res.Admitted, opts.Streams, res.WentLive, opts.Warmup, opts.Duration)

	// Window: CPU and memory from t1 to t2, liveness checked throughout.
	sleep(ctx, opts.Warmup)
	for _, s := range streams {
		s.stayed = s.hub != nil
	}
	stopProfile, err := startCPUProfile(opts.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile() // a no-op once stopped at the window's end
	t1, err := sampleProc()
	if err != nil {
		return nil, err
	}
	res.RSSMax = t1.rss
	tick := time.NewTicker(500 * time.Millisecond)
	deadline := time.After(opts.Duration)
window:
	for {
		select {
		case <-ctx.Done():
			break window
		case <-deadline:
			break window
		case <-tick.C:
			for _, s := range streams {
				if h, ok := node.Live().Hub(s.arn); !ok || h != s.hub {
					s.stayed = false
				}
			}
			if rss, err := vmRSS(); err == nil {
				res.RSSMax = max(res.RSSMax, rss)
			}
		}
	}
	tick.Stop()
	t2, err := sampleProc()
	if err != nil {
		return nil, err
	}
	stopProfile()
	res.Window = t2.at.Sub(t1.at)
	res.CPUPercentOfCore = 100 * float64(t2.cpu-t1.cpu) / float64(res.Window)
	res.CPUPercentOfMachine = res.CPUPercentOfCore / float64(res.Cores)
	res.RSSSteady, res.HeapSteady, res.Goroutines = t2.rss, t2.heapInuse, t2.goroutine
	res.RSSPerStream = (t2.rss - before.rss) / int64(opts.Streams)
	res.HeapPerStream = (int64(t2.heapInuse) - int64(before.heapInuse)) / int64(opts.Streams)
	res.BeyondGOPPerStream = res.RSSPerStream - res.GOPBytes
	res.LivePerStream = (liveHeap() - liveBefore) / int64(opts.Streams)
	res.LiveBeyondGOPPerStream = res.LivePerStream - res.GOPBytes
	var gopFrames, live int
	for _, s := range streams {
		if s.stayed {
			res.StayedLive++
		}
		if s.hub != nil {
			gopFrames += s.hub.Stats().GOPFrames
			live++
		}
	}
	if live > 0 {
		res.GOPFramesAvg = float64(gopFrames) / float64(live)
	}

	// Stop publishing; each session ends when its connection closes, its
	// hub closes, and the readers drain what they were owed.
	say("stopping publishers...")
	stopPubs()
	pubs.Wait()
	drain := time.After(15 * time.Second)
	for _, s := range streams {
		if s.reader == nil {
			continue
		}
		select {
		case <-s.readerDone:
		case <-drain:
			s.reader.Close() // report what was counted so far
			<-s.readerDone
		}
	}
	for i, s := range streams {
		adm := false
		select {
		case <-s.pub.admitted:
			adm = true
		default:
		}
		switch {
		case s.pubErr != nil:
			res.Failures = append(res.Failures, fmt.Sprintf("stream %d: %v", i, s.pubErr))
		case !adm:
			res.Failures = append(res.Failures, fmt.Sprintf("stream %d: never admitted", i))
		case s.hub == nil:
			res.Failures = append(res.Failures, fmt.Sprintf("stream %d: admitted but never live", i))
		case !s.stayed:
			res.Failures = append(res.Failures, fmt.Sprintf("stream %d: stopped being live during the window", i))
		}
		sent := s.pub.sent.Load()
		res.FramesSent += sent
		if s.hub == nil {
			continue
		}
		written := s.hub.Stats().FramesWritten
		res.FramesWritten += written
		res.FramesReceived += s.received
		res.ReaderDropped += s.reader.Dropped()
		res.IngestLost += max(sent-written, 0)
		// The reader starts at the GOP before it subscribed, so it may get
		// more than was written after; only fewer is a loss.
		res.DeliveryShort += max(written-s.preWritten-s.received-s.reader.Dropped(), 0)
	}
	var adm, liv []time.Duration
	for _, s := range streams {
		select {
		case <-s.pub.admitted:
			adm = append(adm, s.pub.admission)
		default:
		}
		if s.hub != nil {
			liv = append(liv, s.live)
		}
	}
	res.AdmissionP50, res.AdmissionP95, res.AdmissionMax = percentiles(adm)
	res.LiveP50, res.LiveP95, res.LiveMax = percentiles(liv)

	if opts.ClientCost && ctx.Err() == nil {
		say("measuring the client alone against a null RTMP server...")
		pct, err := clientCost(ctx, rec, opts.Streams, min(opts.Duration, 10*time.Second), opts.Warmup)
		if err != nil {
			return nil, fmt.Errorf("client cost: %w", err)
		}
		res.ClientCPUPercentOfCore = pct
	}
	return res, nil
}

// startNode starts an in-process node for streams concurrent publishers:
// a temporary data dir with SQLite, loopback ports picked by the kernel, no
// API rate limits, and quotas raised so the benchmark measures ingest rather
// than being refused by IVS's defaults. stop shuts it down and removes the
// data dir.
func startNode(ctx context.Context, streams int, logger *slog.Logger) (node *app.App, cfg config.Config, stop func(), err error) {
	dataDir, err := os.MkdirTemp("", "openivs-bench-")
	if err != nil {
		return nil, cfg, nil, err
	}
	cfg = config.Default()
	cfg.DataDir = dataDir
	cfg.HTTPAddr, cfg.RTMPAddr, cfg.RTMPSAddr, cfg.SRTAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.PublicHost = "127.0.0.1"
	cfg.DisableRateLimits = true
	cfg.Quotas = map[string]int{"concurrent-streams": max(streams, 100), "channels": max(streams, 5000)}
	// Fixed credentials keep the run from writing and printing a secret.
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDBENCHBENCHBENCH0", "bench-secret-bench-secret-bench-secret-00"

	node, err = app.New(ctx, cfg, logger)
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, cfg, nil, err
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		_ = node.Shutdown(sctx)
		os.RemoveAll(dataDir)
	}
	if err := node.Start(ctx); err != nil {
		stop()
		return nil, cfg, nil, err
	}
	return node, cfg, stop, nil
}

// watch waits for the stream's hub to appear, then subscribes its
// consumers: idle ones that never read, and one reader that counts frames
// as a probe would.
func (s *stream) watch(ctx context.Context, node *app.App, idle int) {
	select {
	case <-s.pub.admitted:
	case <-ctx.Done():
		return
	case <-time.After(15 * time.Second):
		return
	}
	// Track discovery runs after admission; poll finely so the figure is
	// the server's, not the poll interval's.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(15 * time.Second)
	for {
		if h, ok := node.Live().Hub(s.arn); ok {
			s.hub, s.live = h, time.Since(s.pub.dialStart)
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-timeout:
			return
		case <-tick.C:
		}
	}
	for i := range idle {
		s.idle = append(s.idle, s.hub.Subscribe("bench-idle-"+strconv.Itoa(i)))
	}
	s.preWritten = s.hub.Stats().FramesWritten
	s.reader = s.hub.Subscribe("bench-reader")
	go func() {
		defer close(s.readerDone)
		var n int64
		for {
			if _, err := s.reader.Next(context.Background()); err != nil {
				s.received = n
				return
			}
			n++
		}
	}()
}

// clientCost replays streams into a null RTMP server and returns the CPU
// of the process over window, as % of one core.
func clientCost(ctx context.Context, rec *Recording, streams int, window, warmup time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { nullServe(ctx, ln) })
	u, _ := url.Parse("rtmp://" + ln.Addr().String() + "/app#null")
	errs := make(chan error, streams)
	for range streams {
		p := &publisher{url: u, rec: rec, admitted: make(chan struct{})}
		wg.Go(func() {
			if err := p.run(ctx); err != nil {
				errs <- err
			}
		})
	}
	sleep(ctx, warmup)
	t1, err := sampleProc()
	if err != nil {
		return 0, err
	}
	sleep(ctx, window)
	t2, err := sampleProc()
	if err != nil {
		return 0, err
	}
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return 100 * float64(t2.cpu-t1.cpu) / float64(t2.at.Sub(t1.at)), nil
}

// trustNode returns a TLS config that verifies the node's own certificate,
// so RTMPS runs pay for a real handshake and verification.
func trustNode(node *app.App) (*tls.Config, error) {
	cert := node.Certificate()
	if len(cert.Certificate) == 0 {
		return nil, errors.New("bench: the node has no TLS certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	name := "127.0.0.1"
	if len(leaf.IPAddresses) == 0 && len(leaf.DNSNames) > 0 {
		name = leaf.DNSNames[0]
	}
	return &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}, nil
}

func percentiles(d []time.Duration) (p50, p95, maxd time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(int(q*float64(len(d))), len(d)-1)] }
	return at(0.50), at(0.95), d[len(d)-1]
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Report writes the result for a person.
func (r *IngestResult) Report(w io.Writer) {
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "openivs bench ingest: %d × %s publishers, %s window, %d idle + 1 reading subscriber per stream\n",
		r.Streams, r.Protocol, r.Window.Round(time.Millisecond), r.IdleSubscribers)
	fmt.Fprintf(w, "  recording            %s (%.2f Mbps media, GOP ≈ %s)\n", r.Recording, float64(r.RecordingBPS)/1e6, mb(r.GOPBytes))
	fmt.Fprintf(w, "  NOTE                 the publishers run in the same process as the server; CPU and memory include them\n")
	fmt.Fprintf(w, "  streams              %d admitted, %d went live, %d stayed live through the window\n", r.Admitted, r.WentLive, r.StayedLive)
	fmt.Fprintf(w, "  admission            p50 %s  p95 %s  max %s   (dial -> publish accepted = Session Created)\n", ms(r.AdmissionP50), ms(r.AdmissionP95), ms(r.AdmissionMax))
	fmt.Fprintf(w, "  live                 p50 %s  p95 %s  max %s   (dial -> hub exists; includes RTMP track discovery)\n", ms(r.LiveP50), ms(r.LiveP95), ms(r.LiveMax))
	fmt.Fprintf(w, "  CPU                  %.1f%% of one core = %.1f%% of %d cores\n", r.CPUPercentOfCore, r.CPUPercentOfMachine, r.Cores)
	if r.ClientCPUPercentOfCore > 0 {
		fmt.Fprintf(w, "  CPU, client alone    %.1f%% of one core (same publishers into a null RTMP server that only demuxes)\n", r.ClientCPUPercentOfCore)
		fmt.Fprintf(w, "  CPU, openivs ≈       %.1f%% of one core (difference)\n", r.CPUPercentOfCore-r.ClientCPUPercentOfCore)
	}
	fmt.Fprintf(w, "  RSS                  %s before publishing, %s steady, %s max\n", mb(r.RSSBefore), mb(r.RSSSteady), mb(r.RSSMax))
	fmt.Fprintf(w, "  per stream           %s RSS, %s Go heap in use; GOP buffer ≈ %s; RSS beyond GOP %s\n",
		mb(r.RSSPerStream), mb(r.HeapPerStream), mb(r.GOPBytes), mb(r.BeyondGOPPerStream))
	fmt.Fprintf(w, "  live heap per stream %s after a forced GC; beyond the GOP %s\n", mb(r.LivePerStream), mb(r.LiveBeyondGOPPerStream))
	fmt.Fprintf(w, "  goroutines           %d\n", r.Goroutines)
	fmt.Fprintf(w, "  frames               %d sent, %d written to hubs, %d received by readers; ingest lost %d, reader dropped %d, delivery short %d\n",
		r.FramesSent, r.FramesWritten, r.FramesReceived, r.IngestLost, r.ReaderDropped, r.DeliveryShort)
	fmt.Fprintf(w, "  hub GOP frames       %.1f average at the end of the window\n", r.GOPFramesAvg)
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  FAIL                 %s\n", f)
	}
	if r.OK() {
		fmt.Fprintf(w, "  result               PASS: every stream live throughout, nothing lost or dropped\n")
	} else {
		fmt.Fprintf(w, "  result               FAIL\n")
	}
}

// liveHeap forces a collection and returns the heap still reachable.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
