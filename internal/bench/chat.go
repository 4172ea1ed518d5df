package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	chattypes "github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/openivs/openivs/internal/app"
	"github.com/openivs/openivs/internal/config"
)

// ChatOptions configures RunChat. Zero values take the defaults.
type ChatOptions struct {
	Clients int     // connected clients, senders included (default 5000)
	Rate    float64 // messages per second into the room (default 10, at most 100: IVS's room maximum)
	// Senders are the clients that send, round robin; default: enough
	// that none sends more than 5 a second (IVS allows 10 requests a
	// second per connection).
	Senders    int
	Duration   time.Duration // sending window (default 30 s)
	Drain      time.Duration // wait for deliveries after the last send (default 10 s)
	ContentLen int           // characters of each message's Content (default 64)

	// Endpoint is a running server's HTTP base URL (http://host:port);
	// empty starts a node in-process on a temporary data directory.
	Endpoint string
	// ChatURL overrides the WebSocket URL (default: Endpoint's host, /chat).
	ChatURL                      string
	AccessKeyID, SecretAccessKey string
	Region                       string // signing region (default us-west-2)
	Insecure                     bool   // accept any TLS certificate (wss://, https://)
	// TokenRate paces CreateChatToken against an Endpoint (default 150 a
	// second, under IVS's 200; negative: unpaced). The in-process node
	// runs without rate limits and is never paced.
	TokenRate float64
	// ConnectParallel is how many clients mint and connect at once
	// (default 64).
	ConnectParallel int
	// ServerPID, with Endpoint, is the local server process whose CPU
	// time is reported; otherwise its /metrics process_cpu_seconds_total.
	ServerPID int

	// MaxP99 fails the run when the p99 send-to-receive exceeds it (0:
	// not checked); MaxIdleConnBytes likewise the server's memory per
	// idle connection.
	MaxP99           time.Duration
	MaxIdleConnBytes float64

	// CPUProfile, if set, receives a CPU profile of the sending window;
	// the bench's own goroutines carry the label bench=client, so that
	// `go tool pprof -tags` splits server from clients in-process.
	CPUProfile string
	Progress   io.Writer    // one line per phase; nil discards
	Logger     *slog.Logger // the in-process node's; nil discards
}

func (o *ChatOptions) defaults() {
	if o.Clients <= 0 {
		o.Clients = 5000
	}
	if o.Rate <= 0 {
		o.Rate = 10
	}
	if o.Senders <= 0 {
		o.Senders = max(1, int(math.Ceil(o.Rate/5)))
	}
	o.Senders = min(o.Senders, o.Clients)
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	if o.ContentLen <= 0 {
		o.ContentLen = 64
	}
	if o.Region == "" {
		o.Region = "us-west-2"
	}
	if o.TokenRate == 0 {
		o.TokenRate = 150
	}
	if o.ConnectParallel <= 0 {
		o.ConnectParallel = 64
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ChatResult is what one chat run measured.
type ChatResult struct {
	Target  string // "in-process node" or the endpoint
	ChatURL string
	Clients int
	Senders int
	Rate    float64 // asked for, messages/s
	Cores   int

	Connected     int
	ConnectFailed int
	ConnectErrors []string      // the first few
	ConnectTime   time.Duration // first token → last client connected

	// Server memory per idle connection, and how it was measured.
	IdleBytesPerConn      float64
	IdleHeapPerConn       float64
	IdleStackPerConn      float64
	IdleLiveHeapPerConn   float64 // reachable objects only (in-process): the heap less its fragmentation
	IdleRSSPerConn        float64 // 0 when not known
	ClientBytesPerConn    float64 // the clients' own share, subtracted (in-process)
	IdleGoroutinesPerConn float64 // -1 when not known
	MemoryMethod          string

	Window           time.Duration // first send → last send
	Sent             int64
	Rejected         int64 // answered with an ERROR (room or connection rate)
	Accepted         int64
	Expected         int64 // accepted × connected clients
	Delivered        int64
	Lost             int64
	Duplicates       int64
	Disconnected     int      // clients whose socket ended during the run
	DisconnectErrors []string // the first few
	DeliveriesPerSec float64
	Latency          Quantiles // send → receive, every delivery
	SendErrors       int64

	// CPU over the window, % of one core: the bench process (in-process:
	// node and clients together) and the server when measured apart (-1:
	// not measured).
	ProcessCPUPercent float64
	ServerCPUPercent  float64
	ProcessRSS        int64

	MaxP99           time.Duration
	MaxIdleConnBytes float64
}

// OK reports whether every client connected and every accepted message
// reached every client (and the targets asked for were met).
func (r *ChatResult) OK() bool { return len(r.problems()) == 0 }

func (r *ChatResult) problems() []string {
	var p []string
	if r.ConnectFailed > 0 || r.Connected < r.Clients {
		p = append(p, fmt.Sprintf("%d of %d clients could not connect", r.Clients-r.Connected, r.Clients))
	}
	if r.Accepted == 0 {
		p = append(p, "no message was accepted")
	}
	if r.Lost > 0 {
		p = append(p, fmt.Sprintf("%d deliveries lost", r.Lost))
	}
	if r.Disconnected > 0 {
		p = append(p, fmt.Sprintf("%d clients disconnected", r.Disconnected))
	}
	if r.MaxP99 > 0 && r.Latency.P99 > r.MaxP99 {
		p = append(p, fmt.Sprintf("p99 %s over %s", fmtMS(r.Latency.P99), fmtMS(r.MaxP99)))
	}
	if r.MaxIdleConnBytes > 0 && r.IdleBytesPerConn > r.MaxIdleConnBytes {
		p = append(p, fmt.Sprintf("%.0f B per idle connection, over %.0f", r.IdleBytesPerConn, r.MaxIdleConnBytes))
	}
	return p
}

// Report writes the result for a person.
func (r *ChatResult) Report(w io.Writer) {
	fmt.Fprintf(w, "openivs bench chat: one room, %d clients (%d sending), %.4g messages/s, %s window\n",
		r.Clients, r.Senders, r.Rate, r.Window.Round(time.Millisecond))
	fmt.Fprintf(w, "  server               %s (%s)\n", r.Target, r.ChatURL)
	fmt.Fprintf(w, "  connected            %d of %d in %s (token + handshake each)\n", r.Connected, r.Clients, r.ConnectTime.Round(time.Millisecond))
	for _, e := range r.ConnectErrors {
		fmt.Fprintf(w, "    %s\n", e)
	}
	if r.IdleBytesPerConn != 0 || r.MemoryMethod != "" {
		fmt.Fprintf(w, "  memory / idle conn   %.1f KB (heap %.1f KB + stacks %.1f KB)", r.IdleBytesPerConn/1000, r.IdleHeapPerConn/1000, r.IdleStackPerConn/1000)
		if r.IdleLiveHeapPerConn != 0 {
			fmt.Fprintf(w, "; live objects %.1f KB", r.IdleLiveHeapPerConn/1000)
		}
		if r.IdleGoroutinesPerConn >= 0 {
			fmt.Fprintf(w, ", %.2f goroutines", r.IdleGoroutinesPerConn)
		}
		if r.IdleRSSPerConn != 0 {
			fmt.Fprintf(w, "; RSS %.1f KB", r.IdleRSSPerConn/1000)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "                       (%s)\n", r.MemoryMethod)
	}
	fmt.Fprintf(w, "  messages             %d sent, %d accepted, %d rejected, %d send errors\n", r.Sent, r.Accepted, r.Rejected, r.SendErrors)
	fmt.Fprintf(w, "  deliveries           %d of %d (%.0f/s), %d lost, %d duplicated, %d clients disconnected\n",
		r.Delivered, r.Expected, r.DeliveriesPerSec, r.Lost, r.Duplicates, r.Disconnected)
	for _, e := range r.DisconnectErrors {
		fmt.Fprintf(w, "    %s\n", e)
	}
	if r.Latency.N > 0 {
		fmt.Fprintf(w, "  send → receive       p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%d deliveries, every client)\n",
			fmtMS(r.Latency.P50), fmtMS(r.Latency.P90), fmtMS(r.Latency.P99), fmtMS(r.Latency.P999), fmtMS(r.Latency.Max), r.Latency.N)
	}
	label := "bench process CPU"
	if r.ServerCPUPercent < 0 {
		label = "CPU (node + clients)"
	}
	fmt.Fprintf(w, "  %-20s %.1f%% of one core = %.1f%% of %d cores; RSS %.0f MB\n",
		label, r.ProcessCPUPercent, r.ProcessCPUPercent/float64(max(r.Cores, 1)), r.Cores, float64(r.ProcessRSS)/1e6)
	if r.ServerCPUPercent >= 0 {
		fmt.Fprintf(w, "  server CPU           %.1f%% of one core\n", r.ServerCPUPercent)
	}
	if p := r.problems(); len(p) > 0 {
		fmt.Fprintf(w, "  result               FAIL: %s\n", strings.Join(p, "; "))
	} else {
		fmt.Fprintf(w, "  result               PASS\n")
	}
}

// JSON writes the result for a machine.
func (r *ChatResult) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*ChatResult
		OK bool
	}{r, r.OK()})
}

// RunChat runs the chat benchmark: one room, opts.Clients clients
// connected to it, opts.Rate messages a second sent into it by a few of
// them; every client times every message from its send to its arrival.
// It returns an error when the run could not happen at all.
func RunChat(ctx context.Context, opts ChatOptions) (*ChatResult, error) {
	opts.defaults()
	if opts.Rate > 100 {
		return nil, errors.New("rate: IVS caps a room at 100 messages a second")
	}
	say := func(format string, args ...any) { fmt.Fprintf(opts.Progress, format+"\n", args...) }
	res := &ChatResult{
		Clients: opts.Clients, Senders: opts.Senders, Rate: opts.Rate, Cores: runtime.GOMAXPROCS(0),
		MaxP99: opts.MaxP99, MaxIdleConnBytes: opts.MaxIdleConnBytes,
		ServerCPUPercent: -1, IdleGoroutinesPerConn: -1,
	}
	inProcess := opts.Endpoint == ""
	fds := opts.Clients + 64
	if inProcess {
		fds += opts.Clients // the server's side of every socket too
	}
	if err := ensureNoFile(uint64(fds)); err != nil {
		return nil, err
	}

	endpoint, region := opts.Endpoint, opts.Region
	key, secret := opts.AccessKeyID, opts.SecretAccessKey
	if inProcess {
		node, cfg, stop, err := startChatNode(ctx, opts.Clients, opts.Logger)
		if err != nil {
			return nil, err
		}
		defer stop()
		endpoint = "http://127.0.0.1:" + strconv.Itoa(node.Ports()["http"])
		region, key, secret = cfg.Region, cfg.AccessKeyID, cfg.SecretAccessKey
		res.Target = "in-process node"
		say("node up: %s, data dir %s", endpoint, cfg.DataDir)
	} else {
		res.Target = endpoint
		if key == "" || secret == "" {
			return nil, errors.New("credentials are required with an endpoint")
		}
	}
	base, err := url.Parse(endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("endpoint %q: want http(s)://host:port", endpoint)
	}
	chatURL := opts.ChatURL
	if chatURL == "" {
		scheme := "ws"
		if base.Scheme == "https" {
			scheme = "wss"
		}
		chatURL = scheme + "://" + base.Host + "/chat"
	}
	wsURL, err := url.Parse(chatURL)
	if err != nil || (wsURL.Scheme != "ws" && wsURL.Scheme != "wss") {
		return nil, fmt.Errorf("chat URL %q: want ws(s)://host:port/path", chatURL)
	}
	res.ChatURL = chatURL
	tlsConfig := &tls.Config{InsecureSkipVerify: opts.Insecure} //nolint:gosec // --insecure asks for it

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.MaxIdleConnsPerHost = opts.ConnectParallel
	httpClient := &http.Client{Transport: transport}
	api := ivschat.New(ivschat.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   httpClient,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, nil
		}),
	})
	room, err := api.CreateRoom(ctx, &ivschat.CreateRoomInput{
		Name:                        aws.String("openivs-bench-chat"),
		MaximumMessageRatePerSecond: aws.Int32(100),
		MaximumMessageLength:        aws.Int32(int32(max(500, opts.ContentLen))),
	})
	if err != nil {
		return nil, fmt.Errorf("CreateRoom: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = api.DeleteRoom(dctx, &ivschat.DeleteRoomInput{Identifier: room.Arn})
	}()
	say("room %s", aws.ToString(room.Arn))

	// Tokens are redeemable for a minute. In-process, where minting is
	// quick, all are minted first, so that the memory measured around the
	// connections holds none of the API's work; against an endpoint, where
	// minting is paced, each client connects as soon as its token is in.
	say("connecting %d clients...", opts.Clients)
	clients := make([]*chatClient, opts.Clients)
	tokens := make([]string, opts.Clients)
	var mu sync.Mutex
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		res.ConnectFailed++
		if len(res.ConnectErrors) < 5 {
			res.ConnectErrors = append(res.ConnectErrors, fmt.Sprintf("client %d: %v", i, err))
		}
	}
	mint := func(i int, pace *pacer) bool {
		tok, err := mintToken(ctx, api, pace, room.Arn, i, i < opts.Senders)
		if err != nil {
			fail(i, err)
			return false
		}
		tokens[i] = tok
		return true
	}
	connect := func(i int) {
		c, err := dialChat(wsURL, tokens[i], tlsConfig, 15*time.Second)
		tokens[i] = ""
		if err != nil {
			fail(i, err)
			return
		}
		clients[i] = c
	}
	connectStart := time.Now()
	var memBefore memSnapshot
	if inProcess {
		parallel(ctx, opts.Clients, opts.ConnectParallel, func(i int) { mint(i, newPacer(-1)) })
		say("  %d tokens in %s", opts.Clients-res.ConnectFailed, time.Since(connectStart).Round(time.Millisecond))
		memBefore = idleBaseline(ctx, true, endpoint, httpClient, transport)
		parallel(ctx, opts.Clients, opts.ConnectParallel, func(i int) {
			if tokens[i] != "" {
				connect(i)
			}
		})
	} else {
		memBefore = idleBaseline(ctx, false, endpoint, httpClient, transport)
		pace := newPacer(opts.TokenRate)
		parallel(ctx, opts.Clients, opts.ConnectParallel, func(i int) {
			if mint(i, pace) {
				connect(i)
			}
		})
	}
	for _, c := range clients {
		if c != nil {
			res.Connected++
		}
	}
	res.ConnectTime = time.Since(connectStart)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	say("%d connected, %d failed in %s", res.Connected, res.ConnectFailed, res.ConnectTime.Round(time.Millisecond))
	if res.Connected == 0 {
		return res, nil
	}

	// Idle memory, before any client goroutine or buffer exists.
	time.Sleep(time.Second) // the last joins and handshake garbage settle
	if err := measureIdle(ctx, res, inProcess, endpoint, httpClient, transport, memBefore, clients); err != nil {
		say("idle memory not measured: %v", err)
	}

	// Send and receive.
	run := &chatRun{base: time.Now()}
	maxSeq := int(opts.Rate*opts.Duration.Seconds()) + 2
	var readers sync.WaitGroup
	var senders []*chatClient
	for i, c := range clients {
		if c == nil {
			continue
		}
		if i < opts.Senders {
			senders = append(senders, c)
		}
		readers.Add(1)
		go pprof.Do(ctx, pprof.Labels("bench", "client"), func(context.Context) {
			defer readers.Done()
			c.run(run, maxSeq)
		})
	}
	if len(senders) == 0 {
		return nil, errors.New("no sending client connected")
	}
	stopProfile, err := startCPUProfile(opts.CPUProfile)
	if err != nil {
		return nil, err
	}
	say("sending %.4g messages/s for %s from %d clients...", opts.Rate, opts.Duration, len(senders))
	cpu0, _ := sampleProc()
	srv0 := serverCPU(ctx, opts.ServerPID, inProcess, endpoint, httpClient)
	var sendErrs int64
	interval := time.Duration(float64(time.Second) / opts.Rate)
	sendStart := time.Now()
	pprof.Do(ctx, pprof.Labels("bench", "client"), func(context.Context) {
		for seq := 0; seq < maxSeq; seq++ {
			at := sendStart.Add(time.Duration(seq) * interval)
			if at.Sub(sendStart) >= opts.Duration {
				break
			}
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			if err := senders[seq%len(senders)].sendMessage(run, seq, opts.ContentLen); err != nil {
				sendErrs++
				continue
			}
			res.Sent++
		}
	})
	res.Window = time.Since(sendStart)
	cpu1, _ := sampleProc()
	srv1 := serverCPU(ctx, opts.ServerPID, inProcess, endpoint, httpClient)
	stopProfile()
	res.SendErrors = sendErrs
	res.ProcessCPUPercent = 100 * float64(cpu1.cpu-cpu0.cpu) / float64(cpu1.at.Sub(cpu0.at))
	res.ProcessRSS = cpu1.rss
	if srv0 >= 0 && srv1 >= 0 {
		res.ServerCPUPercent = 100 * float64(srv1-srv0) / float64(res.Window)
	}

	// Drain: wait until every client has every message, or Drain passes.
	say("draining...")
	want := res.Sent * int64(res.Connected)
	deadline := time.Now().Add(opts.Drain)
	for run.delivered.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // late ERRORs and duplicates
	run.closing.Store(true)
	for _, c := range clients {
		if c != nil {
			c.nc.Close()
		}
	}
	readers.Wait()

	// Tally.
	rejected := map[int]bool{}
	var lat []time.Duration
	for _, c := range clients {
		if c == nil {
			continue
		}
		for _, seq := range c.rejected {
			rejected[seq] = true
		}
	}
	res.Rejected = int64(len(rejected))
	res.Accepted = res.Sent - res.Rejected
	res.Expected = res.Accepted * int64(res.Connected)
	for _, c := range clients {
		if c == nil {
			continue
		}
		if c.err != nil {
			res.Disconnected++
			if len(res.DisconnectErrors) < 5 {
				res.DisconnectErrors = append(res.DisconnectErrors, c.err.Error())
			}
		}
		res.Duplicates += c.dups
		res.Delivered += int64(len(c.latencies))
		for _, us := range c.latencies {
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
		c.latencies = nil
	}
	res.Lost = max(res.Expected-res.Delivered, 0)
	res.DeliveriesPerSec = float64(res.Delivered) / res.Window.Seconds()
	res.Latency = quantiles(lat)
	return res, nil
}

// mintToken mints client i's token: SEND_MESSAGE for senders, nothing
// for the others, a session long enough for any run.
func mintToken(ctx context.Context, api *ivschat.Client, pace *pacer, roomARN *string, i int, sender bool) (string, error) {
	in := &ivschat.CreateChatTokenInput{
		RoomIdentifier:           roomARN,
		UserId:                   aws.String("bench-" + strconv.Itoa(i)),
		SessionDurationInMinutes: aws.Int32(180),
	}
	if sender {
		in.Capabilities = []chattypes.ChatTokenCapability{chattypes.ChatTokenCapabilitySendMessage}
	}
	if err := pace.wait(ctx); err != nil {
		return "", err
	}
	tok, err := api.CreateChatToken(ctx, in)
	if err != nil {
		return "", fmt.Errorf("CreateChatToken: %w", err)
	}
	return aws.ToString(tok.Token), nil
}

// parallel calls fn(0..n-1) from workers goroutines until ctx ends.
func parallel(ctx context.Context, n, workers int, fn func(i int)) {
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// pacer spaces calls rate a second apart; a negative rate does not wait.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}

// startChatNode starts a node on a temporary data directory with the API
// rate limits off and room for the clients in the chat connection quota.
func startChatNode(ctx context.Context, clients int, logger *slog.Logger) (*app.App, config.Config, func(), error) {
	dataDir, err := os.MkdirTemp("", "openivs-bench-chat-")
	if err != nil {
		return nil, config.Config{}, nil, err
	}
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTPAddr, cfg.RTMPAddr, cfg.RTMPSAddr, cfg.SRTAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.PublicHost = "127.0.0.1"
	cfg.DisableRateLimits = true // 5,000 CreateChatToken calls at once
	cfg.Quotas = map[string]int{"chat-concurrent-connections": max(clients+100, 50000)}
	// Fixed credentials keep the run from writing and printing a secret.
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDBENCHBENCHBENCH0", "bench-secret-bench-secret-bench-secret-00"
	node, err := app.New(ctx, cfg, logger)
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, cfg, nil, err
	}
	stop := func() {
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

// ensureNoFile raises the soft open-files limit to need when the hard
// limit allows (Go already raises it to the hard limit on start).
func ensureNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("open files: %d are needed, the hard limit is %d (ulimit -Hn)", need, lim.Max)
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// memSnapshot is the server's memory at one point.
type memSnapshot struct {
	heap, live, stack, rss float64 // HeapInuse, HeapAlloc, StackInuse, RSS
	goroutines             int
}

// idleBaseline is the server's memory before any client connects; heap
// -1 when the endpoint's /metrics cannot be read.
func idleBaseline(ctx context.Context, inProcess bool, endpoint string, hc *http.Client, tr *http.Transport) memSnapshot {
	if inProcess {
		tr.CloseIdleConnections() // the node's side of them would count
		time.Sleep(100 * time.Millisecond)
		return inProcessMem()
	}
	m, err := scrapeMetrics(ctx, hc, endpoint)
	if err != nil {
		return memSnapshot{heap: -1}
	}
	return m
}

// measureIdle fills in the server's memory per idle connection.
func measureIdle(ctx context.Context, res *ChatResult, inProcess bool, endpoint string, hc *http.Client, tr *http.Transport,
	before memSnapshot, clients []*chatClient) error {
	n := float64(res.Connected)
	if inProcess {
		tr.CloseIdleConnections()
		time.Sleep(100 * time.Millisecond)
		after := inProcessMem()
		share, err := clientShare(ctx, res.Connected)
		if err != nil {
			return err
		}
		res.ClientBytesPerConn = share
		res.IdleHeapPerConn = (after.heap-before.heap)/n - share
		res.IdleLiveHeapPerConn = (after.live-before.live)/n - share
		res.IdleStackPerConn = (after.stack - before.stack) / n
		res.IdleGoroutinesPerConn = float64(after.goroutines-before.goroutines) / n
		res.IdleBytesPerConn = res.IdleHeapPerConn + res.IdleStackPerConn
		res.MemoryMethod = fmt.Sprintf("in-process, runtime.MemStats after forced GC: Δ(HeapInuse + StackInuse) / connections, "+
			"live objects Δ HeapAlloc; less the bench clients' own %.0f B each (bare sockets, no goroutine yet; measured against a null listener)", share)
		runtime.KeepAlive(clients)
		return nil
	}
	if before.heap < 0 {
		return errors.New("the endpoint's /metrics is not readable")
	}
	after, err := scrapeMetrics(ctx, hc, endpoint)
	if err != nil {
		return err
	}
	res.IdleHeapPerConn = (after.heap - before.heap) / n
	res.IdleStackPerConn = (after.stack - before.stack) / n
	res.IdleRSSPerConn = (after.rss - before.rss) / n
	res.IdleGoroutinesPerConn = float64(after.goroutines-before.goroutines) / n
	res.IdleBytesPerConn = res.IdleHeapPerConn + res.IdleStackPerConn
	res.MemoryMethod = "server's /metrics: Δ(go_memstats_heap_inuse_bytes + go_memstats_stack_inuse_bytes) / connections; " +
		"no forced GC there, so garbage not yet collected counts"
	return nil
}

func inProcessMem() memSnapshot {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnapshot{heap: float64(m.HeapInuse), live: float64(m.HeapAlloc), stack: float64(m.StackInuse), goroutines: runtime.NumGoroutine()}
}

// clientShare is what one idle bench client holds in this process: its
// socket (dialled to a listener that closes its side) and its chatClient.
func clientShare(ctx context.Context, n int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	n = min(n, 2000)
	before := inProcessMem()
	held := make([]*chatClient, 0, n)
	var d net.Dialer
	for range n {
		nc, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			for _, c := range held {
				c.nc.Close()
			}
			return 0, err
		}
		held = append(held, &chatClient{nc: nc})
	}
	after := inProcessMem()
	for _, c := range held {
		c.nc.Close()
	}
	// Live objects: a share small enough for the heap's slack to swamp.
	// The slice is the bench's, not a client's.
	return (after.live-before.live)/float64(n) - 8, nil
}

// scrapeMetrics reads the server's Go memory gauges from /metrics.
func scrapeMetrics(ctx context.Context, hc *http.Client, endpoint string) (memSnapshot, error) {
	vals, err := scrape(ctx, hc, endpoint, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes",
		"process_resident_memory_bytes", "go_goroutines")
	if err != nil {
		return memSnapshot{}, err
	}
	return memSnapshot{heap: vals[0], stack: vals[1], rss: vals[2], goroutines: int(vals[3])}, nil
}

// serverCPU is the server's CPU time so far, -1 when it cannot be known
// apart from the bench's (in-process).
func serverCPU(ctx context.Context, pid int, inProcess bool, endpoint string, hc *http.Client) time.Duration {
	if inProcess {
		return -1
	}
	if pid > 0 {
		if d, err := processCPU(pid); err == nil {
			return d
		}
		return -1
	}
	vals, err := scrape(ctx, hc, endpoint, "process_cpu_seconds_total")
	if err != nil {
		return -1
	}
	return time.Duration(vals[0] * float64(time.Second))
}

// scrape returns the values of unlabelled Prometheus metrics by name.
func scrape(ctx context.Context, hc *http.Client, endpoint string, names ...string) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	vals := make([]float64, len(names))
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for i, n := range names {
			if name == n {
				v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				if err == nil {
					vals[i] = v
					found++
				}
			}
		}
	}
	if found < len(names) {
		return nil, fmt.Errorf("/metrics lacks some of %v", names)
	}
	return vals, sc.Err()
}
