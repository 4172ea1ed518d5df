package bench

// The viewers benchmark (`openivs bench viewers`) plays any LL-HLS URL with
// many simulated viewers that request what hls.js in low-latency mode
// requests, and measures what the delivery target is stated in: bytes
// delivered, request rates, and how long after a part existed at the
// server its last byte reached the viewer.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ViewersOptions configures RunViewers. Zero values take the defaults.
type ViewersOptions struct {
	// URL is a multivariant or media playlist of a live LL-HLS stream.
	URL      string
	Viewers  int           // concurrent viewers (default 100)
	Duration time.Duration // measurement window (default 30 s)
	// Warmup is waited after the last viewer started and before the window
	// opens, so start-up (each viewer first fetches the parts between its
	// start position and the live edge at once) stays out of it
	// (default 3 s).
	Warmup time.Duration
	// Ramp spreads the viewers' starts evenly over this long; 0 starts
	// them all at once.
	Ramp time.Duration
	// Rendition is the index of the variant to play in a multivariant
	// playlist (default 0: the first listed, which hls.js also starts with
	// when it has no bandwidth estimate).
	Rendition int
	Insecure  bool // skip TLS certificate verification (self-signed servers)
	HTTP1     bool // never negotiate HTTP/2 over TLS
	// NetHTTP sends cleartext requests through net/http's Transport
	// instead of the lean HTTP/1.1 client (see h1Client), at about twice
	// the client CPU per request.
	NetHTTP bool
	NoHints bool          // do not fetch EXT-X-PRELOAD-HINT parts ahead of the playlist
	NoSkip  bool          // never ask for playlist delta updates (_HLS_skip)
	Timeout time.Duration // per request, blocking ones included (default 10 s)
	// ServerPID, when set, is a local process (the server) whose CPU time
	// over the window is reported next to the bench's own.
	ServerPID int
	// MaxP99, when set, fails the run if the p99 part delay exceeds it.
	MaxP99 time.Duration
	// MinKeepUp, when set, fails the run if the viewers received less
	// media than this share of real time (they stalled behind the live
	// edge); see ViewersResult.KeepUp.
	MinKeepUp float64
	// CPUProfile, if set, receives a CPU profile of the bench process over
	// the window.
	CPUProfile string
	// Progress receives one line per phase and a line every few seconds of
	// the window; nil discards.
	Progress io.Writer
}

func (o *ViewersOptions) defaults() {
	if o.Viewers <= 0 {
		o.Viewers = 100
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Warmup <= 0 {
		o.Warmup = 3 * time.Second
	}
	if o.Ramp < 0 {
		o.Ramp = 0
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Quantiles summarise a set of durations.
type Quantiles struct {
	N                        int
	P50, P90, P99, P999, Max time.Duration
}

func quantiles(d []time.Duration) Quantiles {
	if len(d) == 0 {
		return Quantiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(int(q*float64(len(d))), len(d)-1)] }
	return Quantiles{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: d[len(d)-1]}
}

// ViewersResult is what one run measured. Counters and rates cover the
// window only, unless they say otherwise.
type ViewersResult struct {
	URL        string
	MediaURL   string // the media playlist the viewers play
	Variant    string // the chosen variant's BANDWIDTH/RESOLUTION, when from a multivariant playlist
	Protocol   string // HTTP version of the first response, e.g. "HTTP/1.1"
	Client     string // "net/http" or "lean HTTP/1.1 client" (h1Client)
	PartTarget time.Duration
	HasPDT     bool // the playlist carries EXT-X-PROGRAM-DATE-TIME
	Hints      bool // the viewers fetched preload hints
	Skip       bool // the viewers asked for delta updates

	Viewers int
	Window  time.Duration
	// Started viewers got their first part; Failed never did. Ended saw
	// EXT-X-ENDLIST, Gone got 404 for the playlist (stream gone); both
	// stop the viewer, at any time of the run.
	Started, Failed, Ended, Gone int

	PlaylistRequests int64 // multivariant and media playlists
	PartRequests     int64 // listed parts and preload hints
	HintRequests     int64 // of PartRequests, issued from a preload hint
	HintMisses       int64 // hinted part that never came (404): the segment ended first
	InitRequests     int64
	Errors           int64 // failed requests in the window (hint misses excluded)
	ErrorsTotal      int64 // the same over the whole run
	ErrorKinds       map[string]int64
	Resyncs          int64 // a viewer fell out of the playlist's parts and jumped to the live edge

	PartsReceived int64
	PartBytes     int64 // parts and init sections
	PlaylistBytes int64 // decoded (a gzip playlist counts its decoded size)
	MediaSeconds  float64
	Untimed       int64 // parts received that no playlist listed before the end

	// PartDelay: the part's wall-clock end from the playlist
	// (EXT-X-PROGRAM-DATE-TIME of its segment + durations of the parts up
	// to and including it) → its last byte received. Needs the server's
	// clock to agree with ours.
	PartDelay Quantiles
	// AnnounceDelay: the viewer first learned the part exists (the
	// playlist response listing it, or the response headers of its
	// preload-hint request, whichever came first) → its last byte received.
	AnnounceDelay Quantiles
	// Startup: the viewer's first request → its first part received (all
	// viewers, whenever they started).
	Startup Quantiles

	CPUPercentOfCore       float64 // the bench process over the window
	Cores                  int
	ServerCPUPercentOfCore float64 // -1 when not measured
	RSS                    int64
	Goroutines             int

	MaxP99    time.Duration
	MinKeepUp float64
}

// ErrorRate is failed requests over all requests in the window.
func (r *ViewersResult) ErrorRate() float64 {
	n := r.PlaylistRequests + r.PartRequests + r.InitRequests
	if n == 0 {
		return 0
	}
	return float64(r.Errors) / float64(n)
}

// BitsPerSecond is the media delivered to all viewers in the window.
func (r *ViewersResult) BitsPerSecond() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.PartBytes*8) / r.Window.Seconds()
}

// KeepUp is the media time received per viewer per second of the window:
// 1.0 when every viewer keeps up with the live edge, less when they fall
// behind.
func (r *ViewersResult) KeepUp() float64 {
	if r.Window <= 0 || r.Viewers == 0 {
		return 0
	}
	return r.MediaSeconds / r.Window.Seconds() / float64(r.Viewers)
}

// OK reports whether the run worked: parts arrived, at most 1% of
// requests and 1% of viewers failed, and the p99 and keep-up bounds held
// when they were set.
func (r *ViewersResult) OK() bool {
	return len(r.problems()) == 0
}

func (r *ViewersResult) problems() []string {
	var p []string
	if r.PartsReceived == 0 {
		p = append(p, "no part received in the window")
	}
	if r.ErrorRate() > 0.01 {
		p = append(p, fmt.Sprintf("%.1f%% of requests failed", 100*r.ErrorRate()))
	}
	if r.Failed*100 > r.Viewers {
		p = append(p, fmt.Sprintf("%d of %d viewers never received a part", r.Failed, r.Viewers))
	}
	if r.MinKeepUp > 0 && r.KeepUp() < r.MinKeepUp {
		p = append(p, fmt.Sprintf("keep-up %.3f < %.3f: viewers fell behind the live edge", r.KeepUp(), r.MinKeepUp))
	}
	if r.MaxP99 > 0 {
		d := r.PartDelay
		if !r.HasPDT {
			d = r.AnnounceDelay
		}
		if d.N == 0 || d.P99 > r.MaxP99 {
			p = append(p, fmt.Sprintf("p99 part delay %s > %s", fmtMS(d.P99), fmtMS(r.MaxP99)))
		}
	}
	return p
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// Report writes the result for a person.
func (r *ViewersResult) Report(w io.Writer) {
	secs := r.Window.Seconds()
	rate := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	q := func(x Quantiles) string {
		if x.N == 0 {
			return "no samples"
		}
		return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%d parts)", fmtMS(x.P50), fmtMS(x.P90), fmtMS(x.P99), fmtMS(x.P999), fmtMS(x.Max), x.N)
	}
	fmt.Fprintf(w, "openivs bench viewers: %d LL-HLS viewers, %s window\n", r.Viewers, r.Window.Round(time.Millisecond))
	fmt.Fprintf(w, "  url                  %s\n", r.URL)
	if r.MediaURL != r.URL {
		fmt.Fprintf(w, "  rendition            %s (%s)\n", r.MediaURL, r.Variant)
	}
	fmt.Fprintf(w, "  client               %s (%s), one connection pool per viewer, preload hints %s, delta updates %s; part target %s\n",
		r.Protocol, r.Client, onOff(r.Hints), onOff(r.Skip), fmtMS(r.PartTarget))
	fmt.Fprintf(w, "  viewers              %d started, %d failed to start, %d saw ENDLIST, %d got 404 (stream gone)\n", r.Started, r.Failed, r.Ended, r.Gone)
	fmt.Fprintf(w, "  delivered            %.1f Mbit/s total, %.3f Mbit/s per viewer (parts and init); playlists %.2f Mbit/s total\n",
		r.BitsPerSecond()/1e6, r.BitsPerSecond()/1e6/float64(max(r.Viewers, 1)), float64(r.PlaylistBytes*8)/1e6/max(secs, 1e-9))
	fmt.Fprintf(w, "  keep-up              %.3f s of media received per viewer per second (1.000 = at the live edge)\n", r.KeepUp())
	fmt.Fprintf(w, "  requests             %.0f playlist/s, %.0f part/s (%.0f from preload hints, %.0f hint misses/s), %d init\n",
		rate(r.PlaylistRequests), rate(r.PartRequests), rate(r.HintRequests), rate(r.HintMisses), r.InitRequests)
	fmt.Fprintf(w, "  errors               %d in the window (%.3f%% of requests), %d over the whole run; %d resyncs to the live edge\n",
		r.Errors, 100*r.ErrorRate(), r.ErrorsTotal, r.Resyncs)
	kinds := make([]string, 0, len(r.ErrorKinds))
	for k := range r.ErrorKinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "    %-18s %d\n", k, r.ErrorKinds[k])
	}
	fmt.Fprintf(w, "  parts                %d received (%.0f/s), %.1f s of media\n", r.PartsReceived, rate(r.PartsReceived), r.MediaSeconds)
	if r.HasPDT {
		fmt.Fprintf(w, "  part delay           %s\n", q(r.PartDelay))
		fmt.Fprintf(w, "                       (program-date-time + part durations → last byte received; assumes the server's clock = ours)\n")
	} else {
		fmt.Fprintf(w, "  part delay           not measured: the playlist has no EXT-X-PROGRAM-DATE-TIME\n")
	}
	fmt.Fprintf(w, "  announce → received  %s\n", q(r.AnnounceDelay))
	fmt.Fprintf(w, "                       (playlist listing the part or preload-hint response headers, whichever first → last byte)\n")
	fmt.Fprintf(w, "  startup              %s (first request → first part, per viewer)\n", strings.TrimSuffix(q(r.Startup), fmt.Sprintf("  (%d parts)", r.Startup.N)))
	fmt.Fprintf(w, "  bench CPU            %.1f%% of one core = %.1f%% of %d cores; RSS %.0f MB; %d goroutines\n",
		r.CPUPercentOfCore, r.CPUPercentOfCore/float64(max(r.Cores, 1)), r.Cores, float64(r.RSS)/1e6, r.Goroutines)
	if r.ServerCPUPercentOfCore >= 0 {
		fmt.Fprintf(w, "  server CPU           %.1f%% of one core (the --server-pid process)\n", r.ServerCPUPercentOfCore)
	}
	if p := r.problems(); len(p) > 0 {
		fmt.Fprintf(w, "  result               FAIL: %s\n", strings.Join(p, "; "))
	} else {
		fmt.Fprintf(w, "  result               PASS\n")
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// JSON writes the result as one JSON object (durations in nanoseconds).
func (r *ViewersResult) JSON(w io.Writer) error {
	type out struct {
		*ViewersResult
		OK            bool
		BitsPerSecond float64
		KeepUp        float64
		ErrorRate     float64
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out{r, r.OK(), r.BitsPerSecond(), r.KeepUp(), r.ErrorRate()})
}

// Phases of a run; counters only move in phaseWindow.
const (
	phaseWarmup int32 = iota
	phaseWindow
	phaseDone
)

// viewersRun is what the viewers of one run share.
type viewersRun struct {
	opts     ViewersOptions
	tls      *tls.Config
	dialer   *net.Dialer
	phase    atomic.Int32
	parts    atomic.Int64           // progress only
	errs     atomic.Int64           // progress only
	bytes    atomic.Int64           // progress only
	protocol atomic.Pointer[string] // HTTP version of the first response
	lean     bool                   // cleartext URLs use h1Client
}

func (r *viewersRun) measuring() bool { return r.phase.Load() == phaseWindow }

// RunViewers runs the viewers benchmark against opts.URL. It returns an
// error when the URL does not answer as a live LL-HLS stream at all; what
// went wrong for single viewers is in the result.
func RunViewers(ctx context.Context, opts ViewersOptions) (*ViewersResult, error) {
	opts.defaults()
	say := func(format string, args ...any) { fmt.Fprintf(opts.Progress, format+"\n", args...) }
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not an http(s) URL", opts.URL)
	}
	run := &viewersRun{
		opts:   opts,
		tls:    &tls.Config{InsecureSkipVerify: opts.Insecure}, //nolint:gosec // asked for with --insecure
		dialer: &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		lean:   !opts.NetHTTP,
	}
	res := &ViewersResult{
		URL: opts.URL, Viewers: opts.Viewers, Hints: !opts.NoHints, Cores: runtime.GOMAXPROCS(0),
		ServerCPUPercentOfCore: -1, MaxP99: opts.MaxP99, MinKeepUp: opts.MinKeepUp, ErrorKinds: map[string]int64{},
	}

	// One probe viewer first: a URL that is not a live LL-HLS stream is
	// reported as such instead of as N viewers failing.
	probe := run.newViewer(-1)
	mediaURL, variant, err := probe.resolve(ctx)
	if err != nil {
		probe.close()
		return nil, err
	}
	pl, _, err := probe.loadPlaylist(ctx, mediaURL, nil)
	probe.close()
	if err != nil {
		return nil, err
	}
	if pl.partTarget == 0 && !pl.hasParts() {
		return nil, fmt.Errorf("%s is not a low-latency playlist: no EXT-X-PART-INF or EXT-X-PART", mediaURL)
	}
	if pl.ended {
		return nil, fmt.Errorf("%s has EXT-X-ENDLIST: the stream is not live", mediaURL)
	}
	res.MediaURL, res.Variant, res.PartTarget = mediaURL.String(), variant, pl.partTarget
	res.Skip = !opts.NoSkip && pl.canSkipUntil > 0
	for _, s := range pl.segments {
		if !s.pdt.IsZero() {
			res.HasPDT = true
		}
	}
	if p := run.protocol.Load(); p != nil {
		res.Protocol = *p
	}
	res.Client = "net/http"
	if run.lean && u.Scheme == "http" {
		res.Client = "lean HTTP/1.1 client"
	}
	say("%s: part target %s, program-date-time %v, blocking reload %v; starting %d viewers over %s",
		mediaURL, pl.partTarget, res.HasPDT, pl.canBlockReload, opts.Viewers, opts.Ramp)

	vctx, stopViewers := context.WithCancel(ctx)
	defer stopViewers()
	viewers := make([]*viewer, opts.Viewers)
	var wg sync.WaitGroup
	allDone := make(chan struct{})
	start := time.Now()
	for i := range viewers {
		v := run.newViewer(i)
		viewers[i] = v
		at := start
		if opts.Viewers > 1 {
			at = start.Add(opts.Ramp * time.Duration(i) / time.Duration(opts.Viewers-1))
		}
		wg.Go(func() {
			defer v.close()
			sleep(vctx, time.Until(at))
			if vctx.Err() == nil {
				v.play(vctx)
			}
		})
	}
	go func() { wg.Wait(); close(allDone) }()

	select {
	case <-ctx.Done():
	case <-allDone:
	case <-time.After(opts.Ramp + opts.Warmup):
	}
	say("viewers started; measuring %s", opts.Duration)

	stopProfile, err := startCPUProfile(opts.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile() // a no-op once stopped at the window's end
	t1, err := sampleProc()
	if err != nil {
		return nil, err
	}
	srv1, srvErr := processCPU(opts.ServerPID)
	run.phase.Store(phaseWindow)
	tick := time.NewTicker(5 * time.Second)
	deadline := time.NewTimer(opts.Duration)
	lastAt, lastParts, lastErrs, lastBytes := time.Now(), int64(0), int64(0), int64(0)
window:
	for {
		select {
		case <-ctx.Done():
			break window
		case <-deadline.C:
			break window
		case <-allDone:
			say("every viewer stopped")
			break window
		case now := <-tick.C:
			p, e, b := run.parts.Load(), run.errs.Load(), run.bytes.Load()
			dt := now.Sub(lastAt).Seconds()
			say("  %4.0fs  %6.0f parts/s  %7.1f Mbit/s  %d errors", now.Sub(t1.at).Seconds(),
				float64(p-lastParts)/dt, float64(b-lastBytes)*8/dt/1e6, e-lastErrs)
			lastAt, lastParts, lastErrs, lastBytes = now, p, e, b
		}
	}
	run.phase.Store(phaseDone)
	tick.Stop()
	deadline.Stop()
	t2, err := sampleProc()
	if err != nil {
		return nil, err
	}
	stopProfile()
	res.Window = t2.at.Sub(t1.at)
	res.CPUPercentOfCore = 100 * float64(t2.cpu-t1.cpu) / float64(res.Window)
	res.RSS, res.Goroutines = t2.rss, t2.goroutine
	if srv2, err := processCPU(opts.ServerPID); opts.ServerPID > 0 && err == nil && srvErr == nil {
		res.ServerCPUPercentOfCore = 100 * float64(srv2-srv1) / float64(res.Window)
	}

	stopViewers()
	<-allDone
	var partDelay, announce, startup []time.Duration
	for _, v := range viewers {
		s := &v.st
		switch {
		case s.startup > 0:
			res.Started++
			startup = append(startup, s.startup)
		default:
			res.Failed++
		}
		if s.ended {
			res.Ended++
		}
		if s.gone {
			res.Gone++
		}
		res.PlaylistRequests += s.playlistReqs.Load()
		res.PartRequests += s.partReqs.Load()
		res.HintRequests += s.hintReqs.Load()
		res.HintMisses += s.hintMisses.Load()
		res.InitRequests += s.initReqs.Load()
		res.Errors += s.errors.Load()
		res.PartBytes += s.partBytes.Load()
		res.PlaylistBytes += s.playlistBytes.Load()
		res.PartsReceived += s.parts
		res.MediaSeconds += s.media.Seconds()
		res.Untimed += s.untimed
		for _, rp := range v.pending {
			if rp.inWindow { // received in the window, never listed before the end
				res.Untimed++
			}
		}
		res.Resyncs += s.resyncs
		for k, n := range s.errorKinds {
			res.ErrorKinds[k] += n
			res.ErrorsTotal += n
		}
		partDelay = append(partDelay, s.partDelay...)
		announce = append(announce, s.announce...)
	}
	res.PartDelay, res.AnnounceDelay, res.Startup = quantiles(partDelay), quantiles(announce), quantiles(startup)
	return res, nil
}

// processCPU is the user+system CPU time of a local process, from
// /proc/PID/stat (clock ticks of 10 ms: enough over a window of seconds).
func processCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses; fields start after
	// the last ')'. utime and stime are fields 14 and 15 of the line, 12
	// and 13 after the state field.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unreadable /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable /proc stat")
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on every Linux ABI Go supports
	return time.Duration(ut+st) * tick, nil
}

// partKey is a part's position: media sequence number and index.
type partKey struct {
	msn uint64
	idx int
}

// partInfo is what the playlists said about a part.
type partInfo struct {
	wallEnd   time.Time // zero without program-date-time
	announced time.Time // the playlist response that first listed it arrived
	duration  time.Duration
}

// receivedPart is a part received before any playlist listed it (from a
// preload hint): its delays are computed once one does.
type receivedPart struct {
	key      partKey
	hdrAt    time.Time
	endAt    time.Time
	inWindow bool
}

// viewerStats are one viewer's counters. The atomics are written by both
// of its goroutines; the rest are guarded by viewer.mu.
type viewerStats struct {
	playlistReqs, partReqs, hintReqs, hintMisses, initReqs atomic.Int64
	errors                                                 atomic.Int64
	partBytes, playlistBytes                               atomic.Int64

	parts, untimed, resyncs int64
	media                   time.Duration
	partDelay, announce     []time.Duration
	errorKinds              map[string]int64
	startup                 time.Duration
	ended, gone             bool
}

// viewer is one simulated LL-HLS player. Like hls.js it runs two request
// loops: blocking playlist reloads, and the parts in order (each preload
// hint requested as soon as it is announced).
//
// Every viewer has its own http.Transport, as each browser has its own
// connection pool: over HTTP/1.1 it keeps its own keep-alive connections
// (a blocking playlist request and a part request in flight make two), and
// over HTTPS with HTTP/2 it multiplexes both on one connection. A single
// shared Transport would be lighter, but over HTTP/2 it would put every
// viewer on a handful of connections, and over HTTP/1.1 viewers would
// trade connections: neither is what a server sees from real viewers. A
// Transport costs a few kilobytes, so thousands are fine.
type viewer struct {
	id        int
	run       *viewersRun
	transport *http.Transport
	client    *http.Client
	h1        *h1Client // the lean client, for cleartext URLs (see h1Client)
	startAt   time.Time
	buf       bytes.Buffer // the playlist loop's response buffer
	target    atomic.Int64 // EXT-X-TARGETDURATION of the newest playlist, ns

	mu      sync.Mutex
	pl      *mediaPlaylist // newest playlist
	version uint64
	changed chan struct{} // closed and replaced when pl changes or the viewer stops
	stopped bool          // the playlist loop ended (ENDLIST, 404 or context)
	known   map[partKey]partInfo
	pending []receivedPart
	st      viewerStats
}

func (r *viewersRun) newViewer(id int) *viewer {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(!r.opts.HTTP1)
	t := &http.Transport{
		DialContext:         r.dialer.DialContext,
		TLSClientConfig:     r.tls.Clone(), // the Transport adds its ALPN protocols to it
		TLSHandshakeTimeout: 10 * time.Second,
		Protocols:           protocols,
		// A browser's limits per host.
		MaxIdleConnsPerHost: 6,
		MaxConnsPerHost:     6,
		IdleConnTimeout:     90 * time.Second,
	}
	var h1 *h1Client
	if r.lean {
		h1 = &h1Client{dial: r.dialer.DialContext}
	}
	return &viewer{
		id: id, run: r, transport: t, client: &http.Client{Transport: t}, h1: h1,
		changed: make(chan struct{}), known: map[partKey]partInfo{},
		st: viewerStats{errorKinds: map[string]int64{}},
	}
}

func (v *viewer) close() {
	v.transport.CloseIdleConnections()
	if v.h1 != nil {
		v.h1.close()
	}
}

// play plays until ctx ends, the stream ends or the playlist is gone.
func (v *viewer) play(ctx context.Context) {
	v.startAt = time.Now()
	var mediaURL *url.URL
	var pl *mediaPlaylist
	for attempt := 0; ; attempt++ {
		// hls.js retries a failed manifest load; so do we, a few times.
		var err error
		if mediaURL, _, err = v.resolve(ctx); err == nil {
			pl, _, err = v.loadPlaylist(ctx, mediaURL, nil)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt == 2 || errors.Is(err, errGone) {
			v.mu.Lock()
			v.st.gone = v.st.gone || errors.Is(err, errGone)
			v.mu.Unlock()
			return
		}
		sleep(ctx, time.Second)
	}
	v.publish(pl, time.Now())
	var wg sync.WaitGroup
	wg.Go(func() { v.playlistLoop(ctx, mediaURL, pl) })
	v.mediaLoop(ctx, mediaURL)
	wg.Wait()
}

var errGone = errors.New("stream gone (404)")

// statusError is a playlist answered with an unexpected HTTP status.
type statusError int

func (e statusError) Error() string { return "HTTP " + strconv.Itoa(int(e)) }

// fail counts a failed request; after the window, requests fail because
// the viewers are being stopped, and are not counted.
func (v *viewer) fail(kind string) {
	if v.run.phase.Load() == phaseDone {
		return
	}
	if v.run.measuring() {
		v.st.errors.Add(1)
		v.run.errs.Add(1)
	}
	v.mu.Lock()
	v.st.errorKinds[kind]++
	v.mu.Unlock()
}

// errKind names a transport error briefly, for the report's error table.
func errKind(what string, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return what + " timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return what + " refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return what + " reset"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.EADDRNOTAVAIL):
		return what + " no fd/port"
	}
	return what + " error"
}

// countingReader counts bytes read into the viewer and run totals while
// the window is open.
type countingReader struct {
	r       io.Reader
	run     *viewersRun
	counter *atomic.Int64
	media   bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.run.measuring() {
		c.counter.Add(int64(n))
		if c.media {
			c.run.bytes.Add(int64(n))
		}
	}
	return n, err
}

// get fetches u. The body goes into buf when it is not nil, else it is
// discarded (media), counted either way. It returns the status, when the
// response headers and when the last byte arrived.
func (v *viewer) get(ctx context.Context, u string, rng string, buf *bytes.Buffer, counter *atomic.Int64) (status int, hdrAt, endAt time.Time, err error) {
	var resp *http.Response
	complete := false // the body was read to its end
	if v.h1 != nil && strings.HasPrefix(u, "http://") {
		pu, perr := url.Parse(u)
		if perr != nil {
			return 0, hdrAt, endAt, perr
		}
		r, derr := v.h1.do(ctx, pu, rng, v.timeout())
		if derr != nil {
			return 0, hdrAt, endAt, derr
		}
		resp = r.Response
		// The connection is reusable only once the body was read to its end.
		defer func() { r.finish(err == nil && complete) }()
	} else {
		ctx, cancel := context.WithTimeout(ctx, v.timeout())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, hdrAt, endAt, err
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		if resp, err = v.client.Do(req); err != nil {
			return 0, hdrAt, endAt, err
		}
		defer resp.Body.Close()
	}
	hdrAt = time.Now()
	if v.run.protocol.Load() == nil {
		proto := resp.Proto
		v.run.protocol.CompareAndSwap(nil, &proto)
	}
	body := &countingReader{r: resp.Body, run: v.run, counter: counter, media: buf == nil}
	if buf != nil {
		buf.Reset()
		// Playlists are small; a limit keeps a broken server from
		// exhausting memory.
		var n int64
		n, err = buf.ReadFrom(io.LimitReader(body, maxPlaylistBytes))
		complete = n < maxPlaylistBytes
	} else {
		// A large pooled buffer: bufio hands reads of at least its own
		// size straight to the socket, so a part of tens of kilobytes
		// takes one or two read calls instead of one per 4 KB. Only parts
		// being received hold one; a preload-hint request waiting for its
		// part does not.
		bp := mediaBufs.Get().(*[]byte)
		for err == nil {
			_, err = body.Read(*bp)
		}
		mediaBufs.Put(bp)
		if err == io.EOF {
			err, complete = nil, true
		}
	}
	endAt = time.Now()
	return resp.StatusCode, hdrAt, endAt, err
}

// timeout bounds one request. A blocking request may be held three
// target durations (RFC 8216bis §6.2.5.2), so the bound is at least that.
func (v *viewer) timeout() time.Duration {
	return max(v.run.opts.Timeout, 3*time.Duration(v.target.Load())+time.Second)
}

// maxPlaylistBytes bounds a playlist read, so a broken server cannot
// exhaust memory.
const maxPlaylistBytes = 8 << 20

var mediaBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// resolve fetches the URL and returns the media playlist to play: the
// URL itself, or the chosen variant of a multivariant playlist.
func (v *viewer) resolve(ctx context.Context) (*url.URL, string, error) {
	u, err := url.Parse(v.run.opts.URL)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	v.countPlaylistRequest()
	status, _, _, err := v.get(ctx, u.String(), "", &buf, &v.st.playlistBytes)
	if err := v.checkPlaylist("multivariant", status, err); err != nil {
		return nil, "", err
	}
	if !isMultivariant(buf.Bytes()) {
		return u, "", nil
	}
	variants, err := parseMultivariant(buf.Bytes())
	if err != nil {
		v.fail("multivariant parse")
		return nil, "", fmt.Errorf("%s: %w", u, err)
	}
	if len(variants) == 0 {
		v.fail("multivariant parse")
		return nil, "", fmt.Errorf("%s: no variant (EXT-X-STREAM-INF) in the multivariant playlist", u)
	}
	if v.run.opts.Rendition < 0 || v.run.opts.Rendition >= len(variants) {
		return nil, "", fmt.Errorf("%s lists %d variants; --rendition %d does not exist", u, len(variants), v.run.opts.Rendition)
	}
	vr := variants[v.run.opts.Rendition]
	ref, err := url.Parse(vr.uri)
	if err != nil {
		v.fail("multivariant parse")
		return nil, "", fmt.Errorf("%s: variant URI %q: %w", u, vr.uri, err)
	}
	desc := "BANDWIDTH=" + strconv.FormatInt(vr.bandwidth, 10)
	if vr.resolution != "" {
		desc += " RESOLUTION=" + vr.resolution
	}
	return u.ResolveReference(ref), desc, nil
}

func (v *viewer) countPlaylistRequest() {
	if v.run.measuring() {
		v.st.playlistReqs.Add(1)
	}
}

// checkPlaylist turns a playlist response into nil or a counted error.
func (v *viewer) checkPlaylist(what string, status int, err error) error {
	switch {
	case err != nil:
		v.fail(errKind(what, err))
		return fmt.Errorf("%s playlist: %w", what, err)
	case status == http.StatusNotFound || status == http.StatusGone:
		v.fail(what + " " + strconv.Itoa(status))
		return fmt.Errorf("%s playlist: %w", what, errGone)
	case status != http.StatusOK:
		v.fail(what + " " + strconv.Itoa(status))
		return fmt.Errorf("%s playlist: %w", what, statusError(status))
	}
	return nil
}

// loadPlaylist fetches and parses the media playlist at base with query
// directives q (nil for a plain load).
func (v *viewer) loadPlaylist(ctx context.Context, base *url.URL, q url.Values) (*mediaPlaylist, time.Time, error) {
	u := base.String()
	if q != nil {
		withQ := *base
		all := base.Query()
		for k, vs := range q {
			all[k] = vs
		}
		withQ.RawQuery = all.Encode()
		u = withQ.String()
	}
	v.countPlaylistRequest()
	status, _, endAt, err := v.get(ctx, u, "", &v.buf, &v.st.playlistBytes)
	if err := v.checkPlaylist("playlist", status, err); err != nil {
		return nil, endAt, err
	}
	pl, err := parseMediaPlaylist(v.buf.Bytes())
	if err != nil {
		v.fail("playlist parse")
		return nil, endAt, fmt.Errorf("%s: %w", base, err)
	}
	v.target.Store(int64(pl.targetDuration))
	return pl, endAt, nil
}

// playlistLoop reloads the playlist as hls.js does in low-latency mode:
// each request asks (with _HLS_msn/_HLS_part) for the part after the last
// one listed and blocks at the server until it exists.
func (v *viewer) playlistLoop(ctx context.Context, base *url.URL, pl *mediaPlaylist) {
	defer v.stop()
	plain := false // the next reload asks for no directive (after a 400)
	for !pl.ended && ctx.Err() == nil {
		var q url.Values
		msn, idx := pl.nextPosition()
		switch {
		case plain || !pl.canBlockReload:
			if !pl.canBlockReload {
				// Without blocking reload, poll at the part target (RFC
				// 8216bis asks for no more often than half a target
				// duration; players poll LL playlists at about a part).
				sleep(ctx, max(pl.partTarget, 100*time.Millisecond))
			}
		case pl.hasParts():
			q = url.Values{"_HLS_msn": {strconv.FormatUint(msn, 10)}, "_HLS_part": {strconv.Itoa(idx)}}
		default:
			q = url.Values{"_HLS_msn": {strconv.FormatUint(msn, 10)}}
		}
		if q != nil && !v.run.opts.NoSkip && pl.canSkipUntil > 0 {
			q.Set("_HLS_skip", "YES")
		}
		plain = false
		next, at, err := v.loadPlaylist(ctx, base, q)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errGone):
			v.mu.Lock()
			v.st.gone = true
			v.mu.Unlock()
			return
		case err != nil:
			// A 400 means the directive was refused (too far ahead): reload
			// plainly once. Anything else: retry after a part.
			var se statusError
			plain = errors.As(err, &se) && se == http.StatusBadRequest
			if !plain {
				sleep(ctx, max(pl.partTarget, 100*time.Millisecond))
			}
			continue
		}
		next.inherit(pl)
		v.publish(next, at)
		pl = next
	}
	if pl.ended {
		v.mu.Lock()
		v.st.ended = true
		v.mu.Unlock()
	}
}

// stop marks the playlist loop done and wakes the media loop.
func (v *viewer) stop() {
	v.mu.Lock()
	v.stopped = true
	close(v.changed)
	v.changed = make(chan struct{})
	v.mu.Unlock()
}

// publish makes pl the newest playlist: it records when each part was
// first listed and where it ends in wall-clock time, and settles the parts
// received before any playlist listed them.
func (v *viewer) publish(pl *mediaPlaylist, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	// Playlists grow at the end: walk back from it to the first part
	// already known.
	var ends [64]time.Time
newParts:
	for i := len(pl.segments) - 1; i >= 0; i-- {
		s := &pl.segments[i]
		if len(s.parts) == 0 {
			continue
		}
		if _, ok := v.known[partKey{s.msn, len(s.parts) - 1}]; ok {
			break
		}
		end := s.pdt
		wallEnds := ends[:0]
		for _, p := range s.parts {
			if !end.IsZero() {
				end = end.Add(p.duration)
			}
			wallEnds = append(wallEnds, end)
		}
		for j := len(s.parts) - 1; j >= 0; j-- {
			k := partKey{s.msn, j}
			if _, ok := v.known[k]; ok {
				break newParts
			}
			v.known[k] = partInfo{wallEnd: wallEnds[j], announced: at, duration: s.parts[j].duration}
		}
	}
	if len(v.pending) > 0 {
		kept := v.pending[:0]
		for _, rp := range v.pending {
			if info, ok := v.known[rp.key]; ok {
				v.accountLocked(info, rp, true)
			} else {
				kept = append(kept, rp)
			}
		}
		v.pending = kept
	}
	// Forget what left the playlist; keep one segment of slack.
	if len(pl.segments) > 0 && len(v.known) > 64 {
		first := pl.segments[0].msn
		for k := range v.known {
			if k.msn+1 < first {
				delete(v.known, k)
			}
		}
	}
	v.pl = pl
	v.version++
	close(v.changed)
	v.changed = make(chan struct{})
}

// accountLocked records a received part's delays.
func (v *viewer) accountLocked(info partInfo, rp receivedPart, hinted bool) {
	if !rp.inWindow {
		return
	}
	announced := info.announced
	if hinted && rp.hdrAt.Before(announced) {
		announced = rp.hdrAt
	}
	v.st.announce = append(v.st.announce, rp.endAt.Sub(announced))
	if !info.wallEnd.IsZero() {
		v.st.partDelay = append(v.st.partDelay, rp.endAt.Sub(info.wallEnd))
	}
	v.st.media += info.duration
}

// snapshot returns the newest playlist, its version, the channel closed on
// the next change and whether the playlist loop has stopped.
func (v *viewer) snapshot() (*mediaPlaylist, uint64, <-chan struct{}, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pl, v.version, v.changed, v.stopped
}

// mediaLoop fetches the parts in order, from hls.js's start position (the
// part-hold-back before the live edge, moved back to an independent part)
// on. A part not listed yet is requested from its preload hint as soon as
// one announces it, else after the playlist lists it.
func (v *viewer) mediaLoop(ctx context.Context, base *url.URL) {
	pl, _, _, _ := v.snapshot()
	next := pl.startPosition()
	initURI := ""
	var hintTried partKey
	hintTriedValid := false
	for ctx.Err() == nil {
		pl, version, changed, stopped := v.snapshot()
		if m := pl.mapFor(next.msn); m != "" && m != initURI {
			initURI = m
			v.fetchInit(ctx, base, m)
			continue
		}
		seg, state := pl.locate(next)
		switch state {
		case partListed:
			p := seg.parts[next.idx]
			v.fetchPart(ctx, base, next, p.uri, p.byteRange, false)
			next.idx++
			continue
		case partPastSegment:
			next = partKey{next.msn + 1, 0}
			continue
		case partGone:
			v.mu.Lock()
			if v.run.measuring() {
				v.st.resyncs++
			}
			v.mu.Unlock()
			next = pl.startPosition()
			continue
		}
		// Not listed yet.
		if stopped {
			return // ended (everything listed is fetched) or gone
		}
		hint, ok := pl.hintPosition()
		if !v.run.opts.NoHints && ok && hint == next && pl.hint != "" && (!hintTriedValid || hintTried != next) {
			hintTried, hintTriedValid = next, true
			if v.fetchPart(ctx, base, next, pl.hint, "", true) {
				next.idx++
			}
			continue
		}
		// Wait for a newer playlist.
		v.mu.Lock()
		newer := v.version != version
		v.mu.Unlock()
		if !newer {
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}
}

// resolveURI resolves a playlist URI against the media playlist's URL.
func resolveURI(base *url.URL, uri string) (string, error) {
	ref, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	return base.ResolveReference(ref).String(), nil
}

func (v *viewer) fetchInit(ctx context.Context, base *url.URL, uri string) {
	u, err := resolveURI(base, uri)
	if err != nil {
		v.fail("init uri")
		return
	}
	if v.run.measuring() {
		v.st.initReqs.Add(1)
	}
	status, _, _, err := v.get(ctx, u, "", nil, &v.st.partBytes)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		v.fail(errKind("init", err))
	case status != http.StatusOK:
		v.fail("init " + strconv.Itoa(status))
	}
}

// fetchPart fetches one part and records it; it reports whether the part
// was received. A hinted part that never comes (404: the segment ended
// before it) is a hint miss, not an error.
func (v *viewer) fetchPart(ctx context.Context, base *url.URL, k partKey, uri, rng string, hinted bool) bool {
	u, err := resolveURI(base, uri)
	if err != nil {
		v.fail("part uri")
		return false
	}
	if v.run.measuring() {
		v.st.partReqs.Add(1)
		if hinted {
			v.st.hintReqs.Add(1)
		}
	}
	status, hdrAt, endAt, err := v.get(ctx, u, rng, nil, &v.st.partBytes)
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		v.fail(errKind("part", err))
		return false
	case hinted && status == http.StatusNotFound:
		if v.run.measuring() {
			v.st.hintMisses.Add(1)
		}
		return false
	case status != http.StatusOK && status != http.StatusPartialContent:
		v.fail("part " + strconv.Itoa(status))
		return false
	}
	rp := receivedPart{key: k, hdrAt: hdrAt, endAt: endAt, inWindow: v.run.measuring()}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.st.startup == 0 {
		v.st.startup = endAt.Sub(v.startAt)
	}
	if rp.inWindow {
		v.st.parts++
		v.run.parts.Add(1)
	}
	if info, ok := v.known[k]; ok {
		v.accountLocked(info, rp, hinted)
	} else if len(v.pending) < 64 {
		v.pending = append(v.pending, rp)
	} else if rp.inWindow {
		v.st.untimed++
	}
	return true
}

// --- playlists ---

// mediaPlaylist is what a viewer needs from one media playlist.
type mediaPlaylist struct {
	targetDuration time.Duration
	mediaSequence  uint64
	partTarget     time.Duration
	partHoldBack   time.Duration
	canBlockReload bool
	canSkipUntil   time.Duration
	skipped        uint64 // EXT-X-SKIP SKIPPED-SEGMENTS: listed segments start after these
	segments       []plSegment
	hint           string // EXT-X-PRELOAD-HINT TYPE=PART URI (whole resource only)
	ended          bool
}

// plSegment is one segment, complete (EXTINF and URI) or still open (only
// parts so far, the last one of a live playlist).
type plSegment struct {
	msn      uint64
	pdt      time.Time // zero when neither given nor derivable
	duration time.Duration
	uri      string // "" while open
	mapURI   string // EXT-X-MAP in effect
	parts    []plPart
}

func (s *plSegment) complete() bool { return s.uri != "" }

type plPart struct {
	uri         string
	duration    time.Duration
	independent bool
	byteRange   string // a Range header value, "" for the whole resource
}

func (m *mediaPlaylist) hasParts() bool {
	for i := range m.segments {
		if len(m.segments[i].parts) > 0 {
			return true
		}
	}
	return false
}

// nextPosition is the part after the last one listed: where a blocking
// reload asks to wait for (hls.js's delivery directives).
func (m *mediaPlaylist) nextPosition() (uint64, int) {
	if len(m.segments) == 0 {
		return m.mediaSequence + m.skipped, 0
	}
	last := &m.segments[len(m.segments)-1]
	if last.complete() {
		return last.msn + 1, 0
	}
	return last.msn, len(last.parts)
}

// hintPosition is the part the preload hint announces: the next one.
func (m *mediaPlaylist) hintPosition() (partKey, bool) {
	if m.hint == "" {
		return partKey{}, false
	}
	msn, idx := m.nextPosition()
	return partKey{msn, idx}, true
}

// startPosition is where hls.js starts in low-latency mode: PART-HOLD-BACK
// (default three part targets) before the end of the last part, moved back
// to the nearest INDEPENDENT part or the start of its segment.
func (m *mediaPlaylist) startPosition() partKey {
	hold := m.partHoldBack
	if hold <= 0 {
		hold = 3 * m.partTarget
	}
	type pos struct {
		k     partKey
		indep bool
	}
	var back time.Duration
	for i := len(m.segments) - 1; i >= 0; i-- {
		s := &m.segments[i]
		for j := len(s.parts) - 1; j >= 0; j-- {
			back += s.parts[j].duration
			if back < hold {
				continue
			}
			// Found the hold-back point; walk back to a random-access part.
			for jj := j; jj >= 0; jj-- {
				if s.parts[jj].independent {
					return partKey{s.msn, jj}
				}
			}
			return partKey{s.msn, 0}
		}
	}
	// Fewer parts than the hold-back: start at the first listed part.
	for i := range m.segments {
		if len(m.segments[i].parts) > 0 {
			return partKey{m.segments[i].msn, 0}
		}
	}
	msn, idx := m.nextPosition()
	return partKey{msn, idx}
}

// mapFor is the EXT-X-MAP URI in effect for segment msn, if listed.
func (m *mediaPlaylist) mapFor(msn uint64) string {
	if len(m.segments) == 0 || msn < m.segments[0].msn {
		return ""
	}
	if i := msn - m.segments[0].msn; i < uint64(len(m.segments)) {
		return m.segments[i].mapURI
	}
	return m.segments[len(m.segments)-1].mapURI
}

// Where a wanted part stands in a playlist.
const (
	partNotYet      = iota // beyond the end: not published yet
	partListed             // listed: fetch it
	partPastSegment        // its segment completed with fewer parts: go on to the next segment
	partGone               // before the listed parts: the viewer fell behind
)

func (m *mediaPlaylist) locate(k partKey) (*plSegment, int) {
	if len(m.segments) == 0 {
		if k.msn < m.mediaSequence+m.skipped {
			return nil, partGone
		}
		return nil, partNotYet
	}
	first := m.segments[0].msn
	if k.msn < first {
		return nil, partGone
	}
	i := k.msn - first
	if i >= uint64(len(m.segments)) {
		return nil, partNotYet
	}
	s := &m.segments[i]
	switch {
	case k.idx < len(s.parts):
		return s, partListed
	case !s.complete():
		return s, partNotYet
	case len(s.parts) == 0 && i+1 < uint64(len(m.segments)):
		// Complete and no longer listed by parts: too old.
		return s, partGone
	}
	return s, partPastSegment
}

// inherit fills program-date-times a delta update or a sparse playlist
// left out from the previous playlist, by media sequence number.
func (m *mediaPlaylist) inherit(prev *mediaPlaylist) {
	if prev == nil || len(m.segments) == 0 || !m.segments[0].pdt.IsZero() || len(prev.segments) == 0 {
		return
	}
	first := prev.segments[0].msn
	for i := range m.segments {
		s := &m.segments[i]
		if !s.pdt.IsZero() {
			break
		}
		if s.msn >= first && s.msn-first < uint64(len(prev.segments)) {
			s.pdt = prev.segments[s.msn-first].pdt
		}
	}
	m.extrapolatePDT()
}

// extrapolatePDT dates segments without a program-date-time from the one
// before them, as RFC 8216 §4.4.4.6 has players do.
func (m *mediaPlaylist) extrapolatePDT() {
	for i := 1; i < len(m.segments); i++ {
		s, prev := &m.segments[i], &m.segments[i-1]
		if s.pdt.IsZero() && !prev.pdt.IsZero() {
			d := prev.duration
			if !prev.complete() {
				d = 0
				for _, p := range prev.parts {
					d += p.duration
				}
			}
			s.pdt = prev.pdt.Add(d)
		}
	}
}

// maxSegments bounds what a parsed playlist may hold.
const maxSegments = 100_000

// parseMediaPlaylist parses the tags a low-latency viewer needs; others
// are ignored.
func parseMediaPlaylist(b []byte) (*mediaPlaylist, error) {
	m := &mediaPlaylist{}
	var cur plSegment
	haveInf := false
	first := true
	mapURI := ""
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if first {
			if !bytes.Equal(line, []byte("#EXTM3U")) {
				return nil, errors.New("not a playlist: no #EXTM3U")
			}
			first = false
			continue
		}
		if line[0] != '#' {
			if haveInf {
				cur.uri, cur.mapURI = string(line), mapURI
				m.segments = append(m.segments, cur)
				if len(m.segments) > maxSegments {
					return nil, errors.New("playlist lists too many segments")
				}
				cur, haveInf = plSegment{}, false
			}
			continue
		}
		tag, value, _ := bytes.Cut(line, []byte(":"))
		switch string(tag) {
		case "#EXT-X-TARGETDURATION":
			d, err := parseSeconds(string(value))
			if err != nil {
				return nil, fmt.Errorf("EXT-X-TARGETDURATION: %w", err)
			}
			m.targetDuration = d
		case "#EXT-X-MEDIA-SEQUENCE":
			n, err := strconv.ParseUint(string(value), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("EXT-X-MEDIA-SEQUENCE: %w", err)
			}
			m.mediaSequence = n
		case "#EXT-X-SERVER-CONTROL":
			err := eachAttr(value, func(k, v string) error {
				var err error
				switch k {
				case "CAN-BLOCK-RELOAD":
					m.canBlockReload = v == "YES"
				case "CAN-SKIP-UNTIL":
					m.canSkipUntil, err = parseSeconds(v)
				case "PART-HOLD-BACK":
					m.partHoldBack, err = parseSeconds(v)
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("EXT-X-SERVER-CONTROL: %w", err)
			}
		case "#EXT-X-PART-INF":
			err := eachAttr(value, func(k, v string) error {
				var err error
				if k == "PART-TARGET" {
					m.partTarget, err = parseSeconds(v)
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("EXT-X-PART-INF: %w", err)
			}
		case "#EXT-X-SKIP":
			err := eachAttr(value, func(k, v string) error {
				var err error
				if k == "SKIPPED-SEGMENTS" {
					m.skipped, err = strconv.ParseUint(v, 10, 32)
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("EXT-X-SKIP: %w", err)
			}
		case "#EXT-X-MAP":
			err := eachAttr(value, func(k, v string) error {
				if k == "URI" {
					mapURI = v
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("EXT-X-MAP: %w", err)
			}
		case "#EXT-X-PROGRAM-DATE-TIME":
			t, err := parsePDT(string(value))
			if err != nil {
				return nil, fmt.Errorf("EXT-X-PROGRAM-DATE-TIME: %w", err)
			}
			cur.pdt = t
		case "#EXT-X-PART":
			var p plPart
			err := eachAttr(value, func(k, v string) error {
				var err error
				switch k {
				case "URI":
					p.uri = v
				case "DURATION":
					p.duration, err = parseSeconds(v)
				case "INDEPENDENT":
					p.independent = v == "YES"
				case "BYTERANGE":
					p.byteRange, err = parseByteRange(v)
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("EXT-X-PART: %w", err)
			}
			if p.uri == "" {
				return nil, errors.New("EXT-X-PART without URI")
			}
			cur.parts = append(cur.parts, p)
			if len(cur.parts) > maxSegments {
				return nil, errors.New("playlist lists too many parts")
			}
		case "#EXTINF":
			dur, _, _ := bytes.Cut(value, []byte(","))
			d, err := parseSeconds(string(dur))
			if err != nil {
				return nil, fmt.Errorf("EXTINF: %w", err)
			}
			cur.duration, haveInf = d, true
		case "#EXT-X-PRELOAD-HINT":
			var typ, uri string
			ranged := false
			err := eachAttr(value, func(k, v string) error {
				switch k {
				case "TYPE":
					typ = v
				case "URI":
					uri = v
				case "BYTERANGE-START", "BYTERANGE-LENGTH":
					ranged = true
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("EXT-X-PRELOAD-HINT: %w", err)
			}
			// A byte-range hint is an open-ended read of a growing
			// resource, not a part request; a viewer without it falls back
			// to blocking reloads.
			if typ == "PART" && !ranged {
				m.hint = uri
			}
		case "#EXT-X-ENDLIST":
			m.ended = true
		}
	}
	if first {
		return nil, errors.New("empty playlist")
	}
	if len(cur.parts) > 0 {
		// The open segment: parts so far, no EXTINF yet.
		cur.mapURI = mapURI
		m.segments = append(m.segments, cur)
	}
	for i := range m.segments {
		m.segments[i].msn = m.mediaSequence + m.skipped + uint64(i)
	}
	m.extrapolatePDT()
	return m, nil
}

// maxSeconds bounds durations read from a playlist, so hostile values
// cannot overflow time.Duration.
const maxSeconds = 1e6

func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, err
	}
	if !(f >= 0 && f <= maxSeconds) { // also false for NaN
		return 0, fmt.Errorf("duration %q out of range", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func parsePDT(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 date-time", s)
}

// parseByteRange turns "<length>[@<offset>]" into a Range header value. A
// range without offset follows the previous part's in HLS; we do not
// track that, so it is refused.
func parseByteRange(s string) (string, error) {
	ls, offs, ok := strings.Cut(s, "@")
	if !ok {
		return "", errors.New("BYTERANGE without offset is not supported")
	}
	n, err1 := strconv.ParseUint(ls, 10, 62)
	o, err2 := strconv.ParseUint(offs, 10, 62)
	if err1 != nil || err2 != nil || n == 0 {
		return "", fmt.Errorf("bad BYTERANGE %q", s)
	}
	return "bytes=" + strconv.FormatUint(o, 10) + "-" + strconv.FormatUint(o+n-1, 10), nil
}

// eachAttr calls fn for each KEY=VALUE of an attribute list, with quotes
// removed from quoted values (HLS quoted strings have no escapes).
func eachAttr(b []byte, fn func(k, v string) error) error {
	s := string(b)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return fmt.Errorf("bad attribute list near %q", s)
		}
		k := strings.TrimSpace(s[:eq])
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return errors.New("unterminated quoted string")
			}
			v, s = s[1:1+end], s[2+end:]
			if s != "" && s[0] != ',' {
				return fmt.Errorf("bad attribute list near %q", s)
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			v, s = strings.TrimSpace(s[:end]), s[end:]
		}
		s = strings.TrimPrefix(s, ",")
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// hlsVariant is one EXT-X-STREAM-INF of a multivariant playlist.
type hlsVariant struct {
	uri        string
	bandwidth  int64
	resolution string
}

func isMultivariant(b []byte) bool { return bytes.Contains(b, []byte("#EXT-X-STREAM-INF")) }

// parseMultivariant lists the variants in playlist order.
func parseMultivariant(b []byte) ([]hlsVariant, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n\ufeff"), []byte("#EXTM3U")) {
		return nil, errors.New("not a playlist: no #EXTM3U")
	}
	var out []hlsVariant
	var cur *hlsVariant
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			cur = &hlsVariant{}
			err := eachAttr([]byte(line[len("#EXT-X-STREAM-INF:"):]), func(k, v string) error {
				switch k {
				case "BANDWIDTH":
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						return fmt.Errorf("BANDWIDTH: %w", err)
					}
					cur.bandwidth = n
				case "RESOLUTION":
					cur.resolution = v
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("EXT-X-STREAM-INF: %w", err)
			}
		case strings.HasPrefix(line, "#"):
		case cur != nil:
			cur.uri = line
			out = append(out, *cur)
			cur = nil
		}
	}
	return out, nil
}
