package record

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/hls"
)

// Config describes one recording of a live stream.
type Config struct {
	Store    blob.Store
	SpoolDir string // where recordings spool (DATA_DIR/spool/recordings)
	Bucket   string
	Account  string
	Region   string
	// Channel and stream.
	ChannelARN, ChannelID, ChannelName string
	StreamID                           string
	Container                          string // TS or FRAGMENTED_MP4
	Thumbnails                         ThumbnailSettings
	// MakeThumbnail turns a keyframe into a JPEG of w×h (nil: no
	// thumbnails).
	MakeThumbnail func(ctx context.Context, sps, pps []byte, keyframe [][]byte, w, h int) ([]byte, error)
	// ThumbnailSize picks the thumbnails' size from the source's.
	ThumbnailSize func(srcW, srcH int) (int, int)
	Events        events.Publisher
	// OnRecorded, when set, is told of recorded media time (RecordedTime).
	OnRecorded func(channelARN string, d time.Duration)
	// ReconnectWindow is recordingReconnectWindowSeconds: a new stream of
	// the channel within it whose media matches continues the recording
	// (Resume); Recording End waits for it to pass.
	ReconnectWindow time.Duration
	// Media describes the stream, for matching a reconnect.
	Media  Media
	Logger *slog.Logger
	Now    func() time.Time
}

// Rendition is one rendition to record.
type Rendition struct {
	Path      string // IVS name, e.g. 720p30; the folder under media/hls
	Width     int
	Height    int
	FrameRate float64
	Codecs    string
	AudioOnly bool
}

// Recorder records one stream's renditions. Feed each rendition's
// segments to its Track and call Track.Done when the rendition ends; the
// recording closes once every track is done.
type Recorder struct {
	cfg Config
	log *slog.Logger

	segs   chan trackSegment
	tracks []*Track
	done   chan struct{} // closed when the recording is closed (or failed)
	// resume takes a reconnecting stream while the recording lingers;
	// stop ends the lingering early (shutdown).
	resume   chan resumeRequest
	stop     chan struct{}
	stopOnce sync.Once
	// streamID is the stream being recorded now (the last one merged).
	streamID string

	// Set by run.
	m          *meta
	dir        string
	up         *uploader
	state      []*renditionState
	thumbs     chan thumbJob
	thumbsDone chan struct{}
	thumbN     int
	nextThumb  time.Time // when the next thumbnail is due
	failed     error
}

// Track feeds one rendition's segments to the recorder.
type Track struct {
	r   *Recorder
	i   int
	mu  sync.Mutex
	end bool
}

type trackSegment struct {
	track int
	seg   hls.Segment
	done  bool
}

// renditionState is what the recorder keeps of a rendition while recording.
type renditionState struct {
	dir     string
	index   []indexEntry
	file    *os.File
	fileN   int
	offset  int64
	fileDur time.Duration
	inits   map[int]int // packager init version → recording init number
	initN   int
	seen    bool // a segment arrived (recording_started.json waits for all)
	ended   bool
	// discNext marks the next segment as a discontinuity (the first of a
	// merged reconnect).
	discNext bool
}

// thumbnailQueue bounds keyframes waiting for ffmpeg to make them
// thumbnails.
const thumbnailQueue = 8

// segmentQueue bounds segments waiting for the recorder goroutine: at one
// a second per rendition, minutes of media. A recorder that falls this far
// behind (a stuck disk) drops segments rather than the live stream.
const segmentQueue = 4096

// Start begins a recording: it returns at once and checks the bucket in
// the background (Recording Start, or Recording Start Failure and no
// recording; the live stream is not affected either way).
func Start(cfg Config, renditions []Rendition) *Recorder {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger.With("stream_id", cfg.StreamID, "component", "record"),
		segs: make(chan trackSegment, segmentQueue), done: make(chan struct{}), resume: make(chan resumeRequest), stop: make(chan struct{}),
		streamID: cfg.StreamID}
	started := cfg.Now().UTC()
	recID := randomID(12)
	r.m = &meta{
		RecordingID: recID, SessionID: randomID(16), Account: cfg.Account, Region: cfg.Region,
		ChannelARN: cfg.ChannelARN, ChannelName: cfg.ChannelName, Bucket: cfg.Bucket,
		Prefix:    Prefix(cfg.Account, cfg.ChannelID, started, recID),
		Container: cfg.Container, StartedAt: started, StreamIDs: []string{cfg.StreamID},
		Thumbnails: cfg.Thumbnails,
	}
	if cfg.MakeThumbnail == nil {
		r.m.Thumbnails.Interval = 0
	}
	for i, rd := range renditions {
		r.m.Renditions = append(r.m.Renditions, renditionMeta{Path: rd.Path, Width: rd.Width, Height: rd.Height,
			FrameRate: rd.FrameRate, Codecs: rd.Codecs, AudioOnly: rd.AudioOnly})
		r.tracks = append(r.tracks, &Track{r: r, i: i})
	}
	go r.run()
	return r
}

// Track returns the feed of rendition i (in the order given to Start).
func (r *Recorder) Track(i int) *Track { return r.tracks[i] }

// Done is closed once the recording is closed in storage, or failed.
func (r *Recorder) Done() <-chan struct{} { return r.done }

// Prefix is the recording's key prefix.
func (r *Recorder) Prefix() string { return r.m.Prefix }

// Segment queues a complete segment; it never blocks the packager.
func (t *Track) Segment(s hls.Segment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.end {
		return
	}
	select {
	case t.r.segs <- trackSegment{track: t.i, seg: s}:
	default:
		t.r.log.Error("recorder is behind; a segment is not recorded", "rendition", t.r.m.Renditions[t.i].Path)
	}
}

// Done says the rendition has ended: its packager finished.
func (t *Track) Done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.end {
		return
	}
	t.end = true
	t.r.segs <- trackSegment{track: t.i, done: true} // blocks only behind queued segments
}

func (r *Recorder) run() {
	defer close(r.done)
	ctx := context.Background()
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := r.cfg.Store.CheckBucket(checkCtx, r.cfg.Bucket)
	cancel()
	if err == nil {
		err = r.prepare()
	}
	if err != nil {
		r.failed = err
		r.log.Warn("recording could not start; the stream goes on unrecorded", "bucket", r.cfg.Bucket, "err", err)
		r.event(statusStartFailure, "ValidationException", "", 0, false)
		r.drain()
		return
	}
	r.log.Info("recording started", "bucket", r.cfg.Bucket, "prefix", r.m.Prefix)
	r.event(statusStart, "", r.m.Prefix, 0, false)
	upCtx, stopUploads := context.WithCancel(ctx)
	defer stopUploads()
	go r.up.run(upCtx)
	if r.m.Thumbnails.Enabled() {
		r.thumbs, r.thumbsDone = make(chan thumbJob, thumbnailQueue), make(chan struct{})
		th := r.m.Thumbnails // copied here: write() fills in the size later
		go func() { defer close(r.thumbsDone); r.thumbnailLoop(ctx, th.Sequential, th.Latest) }()
	}
	var failure error
	for {
		live := len(r.tracks)
		for live > 0 {
			ts := <-r.segs
			st := r.state[ts.track]
			if ts.done {
				st.ended = true
				live--
				continue
			}
			if err := r.write(ts.track, ts.seg); err != nil && failure == nil {
				failure = err
				r.log.Error("recording: spooling a segment failed; the recording ends", "err", err)
				// Disk full or gone: end the recording, never the stream.
				r.drainUntilDone(live)
				break
			}
		}
		if failure != nil || !r.linger() {
			break
		}
	}
	r.finish(failure)
}

// Limits of merging reconnects (spec 04 §3.6).
const (
	maxMergedStreams = 20
	maxMergedAge     = 48 * time.Hour
)

// Media is what must match for a reconnecting stream to continue a
// recording: resolution, frame rate, codecs, and a bitrate within 50% of
// the first stream's (0 when unknown: not compared).
type Media struct {
	Width, Height int
	FPS           float64
	VideoCodec    string // RFC 6381 codec strings; their family is compared
	AudioCodec    string
	Bitrate       int64
}

// matches reports whether b may continue a recording of a.
func (a Media) matches(b Media) bool {
	family := func(c string) string { f, _, _ := strings.Cut(c, "."); return f }
	if a.Width != b.Width || a.Height != b.Height || math.Abs(a.FPS-b.FPS) > 0.5 ||
		family(a.VideoCodec) != family(b.VideoCodec) || family(a.AudioCodec) != family(b.AudioCodec) {
		return false
	}
	if a.Bitrate > 0 && b.Bitrate > 0 {
		if d := math.Abs(float64(b.Bitrate-a.Bitrate)) / float64(a.Bitrate); d > 0.5 {
			return false
		}
	}
	return true
}

type resumeRequest struct {
	streamID   string
	media      Media
	renditions []Rendition
	reply      chan []*Track // nil when refused
}

// resumeWait bounds how long Resume waits for the previous stream's
// renditions to finish before the recording can take the new one.
const resumeWait = 2 * time.Second

// Resume continues this recording with a reconnecting stream of the same
// channel, when it is within the reconnect window, its media and
// renditions match, and the merge limits allow; it returns the new
// stream's tracks (in the order of renditions), or false.
func (r *Recorder) Resume(streamID string, media Media, renditions []Rendition) ([]*Track, bool) {
	req := resumeRequest{streamID: streamID, media: media, renditions: renditions, reply: make(chan []*Track, 1)}
	t := time.NewTimer(resumeWait)
	defer t.Stop()
	select {
	case r.resume <- req:
	case <-r.done:
		return nil, false
	case <-t.C:
		return nil, false
	}
	tracks := <-req.reply
	return tracks, tracks != nil
}

// linger waits out the reconnect window once every track has ended: the
// media so far is uploaded meanwhile, and a matching reconnect continues
// the recording (true).
func (r *Recorder) linger() bool {
	window := r.cfg.ReconnectWindow
	if window <= 0 {
		return false
	}
	for i := range r.state {
		if err := r.closeFile(i); err != nil {
			r.log.Warn("recording: closing a file before the reconnect window", "err", err)
		}
	}
	timer := time.NewTimer(window)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return false
		case <-r.stop:
			return false
		case req := <-r.resume:
			if !r.canMerge(req) {
				req.reply <- nil
				continue
			}
			r.streamID = req.streamID
			r.m.StreamIDs = append(r.m.StreamIDs, req.streamID)
			r.tracks = make([]*Track, len(req.renditions))
			for i := range r.tracks {
				r.tracks[i] = &Track{r: r, i: i}
				st := r.state[i]
				st.ended, st.discNext = false, true
				st.inits = map[int]int{} // the new packager numbers its init sections afresh
			}
			if err := writeJSONAtomic(filepath.Join(r.dir, metaFile), r.m); err != nil {
				r.log.Warn("recording: saving the merged stream in the spool", "err", err)
			}
			r.log.Info("reconnect continues the recording", "stream_id", req.streamID, "prefix", r.m.Prefix,
				"streams", len(r.m.StreamIDs))
			req.reply <- r.tracks
			return true
		}
	}
}

// StopWaiting ends the reconnect window now: the node is shutting down,
// so no reconnect will come to it.
func (r *Recorder) StopWaiting() { r.stopOnce.Do(func() { close(r.stop) }) }

func (r *Recorder) canMerge(req resumeRequest) bool {
	if len(r.m.StreamIDs) >= maxMergedStreams || r.cfg.Now().Sub(r.m.StartedAt) >= maxMergedAge ||
		!r.cfg.Media.matches(req.media) || len(req.renditions) != len(r.m.Renditions) {
		return false
	}
	for i, rd := range req.renditions {
		if rd.Path != r.m.Renditions[i].Path {
			return false
		}
	}
	return true
}

// drain discards segments until every track is done (a recording that
// never started).
func (r *Recorder) drain() { r.drainUntilDone(len(r.tracks)) }

func (r *Recorder) drainUntilDone(live int) {
	for live > 0 {
		if ts := <-r.segs; ts.done {
			live--
		}
	}
}

// prepare makes the spool directory and its meta.
func (r *Recorder) prepare() error {
	r.dir = filepath.Join(r.cfg.SpoolDir, r.m.RecordingID)
	r.up = newUploader(r.cfg.Store, r.cfg.Bucket, r.log)
	for _, rd := range r.m.Renditions {
		d := filepath.Join(r.dir, rd.Path)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("record: spool: %w", err)
		}
		r.state = append(r.state, &renditionState{dir: d, inits: map[int]int{}})
	}
	return writeJSONAtomic(filepath.Join(r.dir, metaFile), r.m)
}

// write spools one segment and, when its file is full, closes the file
// and queues the uploads.
func (r *Recorder) write(track int, s hls.Segment) error {
	st := r.state[track]
	rd := &r.m.Renditions[track]
	if !st.seen {
		st.seen = true
		if !rd.AudioOnly && s.Width > 0 {
			rd.Width, rd.Height = s.Width, s.Height
		}
		if track == 0 && r.m.Thumbnails.Enabled() && s.Width > 0 && r.cfg.ThumbnailSize != nil {
			r.m.Thumbnails.Width, r.m.Thumbnails.Height = r.cfg.ThumbnailSize(s.Width, s.Height)
		}
		if r.allSeen() && !r.m.StartedWritten {
			r.m.StartedWritten = true
			if err := writeJSONAtomic(filepath.Join(r.dir, metaFile), r.m); err != nil {
				return err
			}
			r.up.add(upload{key: r.m.key(eventsDir, startedFile), data: r.m.metadataJSON(statusStarted, "", time.Time{}, 0),
				contentType: "application/json"})
		}
	}
	initN := 0
	if r.m.Container == containerFMP4 {
		n, ok := st.inits[s.InitVersion]
		if !ok {
			n = st.initN
			st.initN++
			st.inits[s.InitVersion] = n
			path := filepath.Join(st.dir, initName(n))
			if err := writeFileAtomic(path, s.Init); err != nil {
				return err
			}
			r.up.add(upload{key: r.m.key(hlsDir, rd.Path, initName(n)), file: path, contentType: "video/mp4"})
		}
		initN = n
	}
	if st.file == nil {
		f, err := os.OpenFile(filepath.Join(st.dir, mediaName(st.fileN, r.m.Container)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		st.file, st.offset, st.fileDur = f, 0, 0
	}
	if _, err := st.file.Write(s.Data); err != nil {
		return err
	}
	e := indexEntry{File: st.fileN, Offset: st.offset, Size: int64(len(s.Data)), DurUS: s.Duration.Microseconds(),
		PDT: s.ProgramDateTime.UTC(), Disc: s.Discontinuity || st.discNext, Init: initN}
	st.discNext = false
	line, _ := json.Marshal(e)
	if err := appendLine(filepath.Join(st.dir, indexFile), line); err != nil {
		return err
	}
	st.index = append(st.index, e)
	st.offset += e.Size
	st.fileDur += s.Duration
	if track == 0 && r.cfg.OnRecorded != nil {
		r.cfg.OnRecorded(r.m.ChannelARN, s.Duration)
	}
	if track == 0 && r.thumbs != nil && s.Keyframe != nil && r.dueThumbnail(s.ProgramDateTime) {
		select {
		case r.thumbs <- thumbJob{seg: s, w: r.m.Thumbnails.Width, h: r.m.Thumbnails.Height}:
		default:
			// ffmpeg is this far behind (a starved machine): skip one
			// rather than hold the recording up.
			r.log.Warn("recording: thumbnails are behind; one is skipped")
		}
	}
	if st.fileDur >= fileTarget {
		return r.closeFile(track)
	}
	return nil
}

func (r *Recorder) allSeen() bool {
	for _, st := range r.state {
		if !st.seen {
			return false
		}
	}
	return true
}

// closeFile closes a rendition's open media file, queues it and the
// playlists that now list it.
func (r *Recorder) closeFile(track int) error {
	st := r.state[track]
	if st.file == nil {
		return nil
	}
	path := st.file.Name()
	if err := st.file.Sync(); err != nil {
		st.file.Close()
		return err
	}
	if err := st.file.Close(); err != nil {
		return err
	}
	st.file = nil
	rd := r.m.Renditions[track]
	r.up.add(upload{key: r.m.key(hlsDir, rd.Path, filepath.Base(path)), file: path, remove: true, contentType: mediaType(r.m.Container)})
	st.fileN++
	r.queuePlaylists(track, false)
	return nil
}

// queuePlaylists queues a rendition's two playlists and the two master
// playlists as they are now.
func (r *Recorder) queuePlaylists(track int, ended bool) {
	st := r.state[track]
	files := groupFiles(st.index)
	if !ended && st.file != nil && len(files) > 0 {
		files = files[:len(files)-1] // the open file is not uploaded yet
	}
	rd := r.m.Renditions[track]
	r.up.add(upload{key: r.m.key(hlsDir, rd.Path, variantPlaylist), data: variantPlaylistFor(files, r.m.Container, ended),
		contentType: "application/vnd.apple.mpegurl"})
	r.up.add(upload{key: r.m.key(hlsDir, rd.Path, byteRangeVariant), data: byteRangePlaylistFor(files, r.m.Container, ended),
		contentType: "application/vnd.apple.mpegurl"})
	r.queueMasters()
}

func (r *Recorder) queueMasters() {
	peak, avg := make([]int, len(r.state)), make([]int, len(r.state))
	for i, st := range r.state {
		peak[i], avg[i] = bandwidth(groupFiles(st.index))
	}
	master, br := masterPlaylists(r.m, peak, avg)
	r.up.add(upload{key: r.m.key(hlsDir, masterPlaylist), data: master, contentType: "application/vnd.apple.mpegurl"})
	r.up.add(upload{key: r.m.key(hlsDir, byteRangeMaster), data: br, contentType: "application/vnd.apple.mpegurl"})
}

// finish closes every file, writes the final playlists and the end file
// once all uploads are in, and sends Recording End.
func (r *Recorder) finish(failure error) {
	now := r.cfg.Now().UTC()
	if r.thumbs != nil {
		close(r.thumbs) // the last thumbnail's upload is queued before the end
		<-r.thumbsDone
		r.thumbs = nil
	}
	for i := range r.state {
		if err := r.closeFile(i); err != nil && failure == nil {
			failure = err
		}
	}
	r.m.EndedAt = &now
	if failure != nil {
		r.m.Failure = failure.Error()
	}
	if err := writeJSONAtomic(filepath.Join(r.dir, metaFile), r.m); err != nil {
		r.log.Error("recording: saving its end in the spool", "err", err)
	}
	closeRecording(r.m, r.state, r.up, r.log)
	<-r.up.drained()
	_ = os.RemoveAll(r.dir)
	if r.m.Failure != "" {
		r.event(statusEndFailure, "InternalServerErrorException", r.m.Prefix, r.durationMS(), true)
	} else {
		r.event(statusEnd, "", r.m.Prefix, r.durationMS(), true)
	}
	r.log.Info("recording ended", "prefix", r.m.Prefix, "duration_ms", r.durationMS(), "failure", r.m.Failure)
}

// durationMS is the recorded duration of the first (highest) rendition.
func (r *Recorder) durationMS() int64 { return recordedMS(r.state) }

func recordedMS(states []*renditionState) int64 {
	if len(states) == 0 {
		return 0
	}
	var d time.Duration
	for _, e := range states[0].index {
		d += e.duration()
	}
	return d.Milliseconds()
}

// closeRecording queues the final playlists, the masters and the end file
// of a recording whose media is all queued.
func closeRecording(m *meta, states []*renditionState, up *uploader, log *slog.Logger) {
	files := make([][]mediaFile, len(states))
	for i, st := range states {
		files[i] = groupFiles(st.index)
		rd := m.Renditions[i]
		up.add(upload{key: m.key(hlsDir, rd.Path, variantPlaylist), data: variantPlaylistFor(files[i], m.Container, true),
			contentType: "application/vnd.apple.mpegurl"})
		up.add(upload{key: m.key(hlsDir, rd.Path, byteRangeVariant), data: byteRangePlaylistFor(files[i], m.Container, true),
			contentType: "application/vnd.apple.mpegurl"})
	}
	peak, avg := make([]int, len(states)), make([]int, len(states))
	for i := range states {
		peak[i], avg[i] = bandwidth(files[i])
	}
	master, br := masterPlaylists(m, peak, avg)
	up.add(upload{key: m.key(hlsDir, masterPlaylist), data: master, contentType: "application/vnd.apple.mpegurl"})
	up.add(upload{key: m.key(hlsDir, byteRangeMaster), data: br, contentType: "application/vnd.apple.mpegurl"})
	if !m.StartedWritten {
		up.add(upload{key: m.key(eventsDir, startedFile), data: m.metadataJSON(statusStarted, "", time.Time{}, 0),
			contentType: "application/json"})
	}
	ended := time.Now().UTC()
	if m.EndedAt != nil {
		ended = *m.EndedAt
	}
	status, message, file := statusEnded, "", endedFile
	switch {
	case m.Interrupted:
		// The end was not observed (kill -9, crash): the recording is
		// closed as ended, saying why (the recording_ended.json).
		status, message = statusEndedWithError, "InternalServerError: "+m.Failure
		log.Warn("recording closed after the server stopped mid-recording", "prefix", m.Prefix)
	case m.Failure != "":
		// An error during recording (the spool's disk, say): IVS writes
		// recording_failed.json instead of recording_ended.json.
		status, message, file = statusEndedWithError, "InternalServerError", failedFile
		log.Warn("recording ended with a failure", "prefix", m.Prefix, "reason", m.Failure)
	}
	up.add(upload{key: m.key(eventsDir, file), data: m.metadataJSON(status, message, ended, recordedMS(states)),
		contentType: "application/json"})
}

func mediaType(container string) string {
	if container == containerFMP4 {
		return "video/mp4"
	}
	return "video/mp2t"
}

// Recording State Change statuses.
const (
	statusStart        = "Recording Start"
	statusEnd          = "Recording End"
	statusStartFailure = "Recording Start Failure"
	statusEndFailure   = "Recording End Failure"
)

// event publishes a Recording State Change.
func (r *Recorder) event(status, reason, prefix string, durationMS int64, withStreams bool) {
	if r.cfg.Events == nil {
		return
	}
	r.cfg.Events.Publish(context.Background(), recordingEvent(r.m, r.streamID, status, reason, prefix, durationMS, withStreams, r.cfg.Now()))
}

func recordingEvent(m *meta, streamID, status, reason, prefix string, durationMS int64, withStreams bool, at time.Time) events.Event {
	detail := map[string]any{
		"channel_name": m.ChannelName, "stream_id": streamID,
		"recording_status": status, "recording_status_reason": reason,
		"recording_s3_bucket_name": m.Bucket, "recording_s3_key_prefix": prefix,
		"recording_duration_ms": durationMS, "recording_session_id": m.SessionID,
	}
	if withStreams {
		detail["recording_session_stream_ids"] = append([]string{}, m.StreamIDs...)
	}
	return events.New(events.RecordingStateChange, m.Account, m.Region, at, detail, m.ChannelARN)
}

// dueThumbnail says whether a keyframe at pdt should become a thumbnail:
// the first one, then the first keyframe at or past each interval mark,
// so the cadence holds whatever the GOP.
func (r *Recorder) dueThumbnail(pdt time.Time) bool {
	if !r.nextThumb.IsZero() && pdt.Before(r.nextThumb) {
		return false
	}
	base := r.nextThumb
	if base.IsZero() {
		base = pdt
	}
	r.nextThumb = base.Add(r.m.Thumbnails.Interval)
	for !r.nextThumb.After(pdt) {
		r.nextThumb = r.nextThumb.Add(r.m.Thumbnails.Interval)
	}
	return true
}

// thumbnailLoop makes thumbnails off the recorder goroutine (one ffmpeg
// run each) and queues their uploads.
// thumbJob is a keyframe to turn into a thumbnail of w×h (0: its own size).
type thumbJob struct {
	seg  hls.Segment
	w, h int
}

func (r *Recorder) thumbnailLoop(ctx context.Context, sequential, latest bool) {
	for job := range r.thumbs {
		s, w, h := job.seg, job.w, job.h
		if w == 0 || h == 0 {
			w, h = s.Width, s.Height
		}
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		jpeg, err := r.cfg.MakeThumbnail(tctx, s.SPS, s.PPS, s.Keyframe, w, h)
		cancel()
		if err != nil {
			r.log.Warn("recording: thumbnail failed", "err", err)
			continue
		}
		// Spooled like media, so a kill before the upload loses nothing
		// (Recover uploads what is left in thumbnails/).
		if sequential {
			name := "thumb" + strconv.Itoa(r.thumbN) + ".jpg"
			r.thumbN++
			r.spoolThumbnail(name, r.m.key(thumbnailsDir, name), jpeg)
		}
		if latest {
			r.spoolThumbnail(latestThumbName, r.m.key(latestThumbnailFile), jpeg)
		}
	}
}

// Spooled thumbnails: <spool>/<recording>/thumbnails/thumbN.jpg, and the
// latest one as latest.jpg there.
const (
	thumbSpoolDir   = "thumbnails"
	latestThumbName = "latest.jpg"
)

func (r *Recorder) spoolThumbnail(name, key string, jpeg []byte) {
	dir := filepath.Join(r.dir, thumbSpoolDir)
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o700); err == nil {
		if err = writeFileAtomic(path, jpeg); err == nil {
			// latest.jpg is rewritten in place: it stays until the spool goes.
			r.up.add(upload{key: key, file: path, remove: name != latestThumbName, contentType: "image/jpeg"})
			return
		}
	}
	// The spool cannot take it: upload from memory rather than lose it.
	r.up.add(upload{key: key, data: jpeg, contentType: "image/jpeg"})
}

// appendLine appends one line to a file and syncs it.
func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if err2 := f.Close(); err == nil {
		err = err2
	}
	return err
}
