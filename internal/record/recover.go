package record

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/events"
)

// Recover closes the recordings a previous run left in the spool (it was
// killed, crashed, or stopped before their uploads finished): it uploads
// the spooled media, writes final playlists and the end file, and sends
// Recording End — with RECORDING_ENDED_WITH_FAILURE and Recording End
// Failure when the run died before the recording ended. It returns when
// every recording is closed or ctx ends; what is left stays spooled for
// the next start.
func Recover(ctx context.Context, store blob.Store, spoolDir string, pub events.Publisher, logger *slog.Logger) (int, error) {
	entries, err := os.ReadDir(spoolDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	closed := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(spoolDir, e.Name())
		m, err := readMeta(dir)
		if err != nil {
			logger.Error("recording spool unreadable; left in place", "dir", dir, "err", err)
			continue
		}
		if err := recoverOne(ctx, store, dir, m, pub, logger); err != nil {
			return closed, err
		}
		closed++
	}
	return closed, nil
}

func recoverOne(ctx context.Context, store blob.Store, dir string, m *meta, pub events.Publisher, logger *slog.Logger) error {
	log := logger.With("component", "record", "prefix", m.Prefix)
	up := newUploader(store, m.Bucket, log)
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go up.run(upCtx)
	var states []*renditionState
	for _, rd := range m.Renditions {
		rdir := filepath.Join(dir, rd.Path)
		index, err := readIndex(filepath.Join(rdir, indexFile))
		if err != nil {
			return err
		}
		st := &renditionState{dir: rdir, index: index}
		states = append(states, st)
		// Every media and init file still here is not uploaded yet.
		names, _ := os.ReadDir(rdir)
		var media []string
		for _, n := range names {
			if strings.HasPrefix(n.Name(), "init-") || strings.HasSuffix(n.Name(), ".ts") || strings.HasSuffix(n.Name(), ".mp4") {
				media = append(media, n.Name())
			}
		}
		sort.Slice(media, func(i, j int) bool { return fileOrder(media[i]) < fileOrder(media[j]) })
		for _, n := range media {
			up.add(upload{key: m.key(hlsDir, rd.Path, n), file: filepath.Join(rdir, n), remove: !strings.HasPrefix(n, "init-"),
				contentType: mediaType(m.Container)})
		}
	}
	// Thumbnails made but not uploaded yet.
	thumbs, _ := os.ReadDir(filepath.Join(dir, thumbSpoolDir))
	for _, th := range thumbs {
		key := m.key(thumbnailsDir, th.Name())
		if th.Name() == latestThumbName {
			key = m.key(latestThumbnailFile)
		} else if !strings.HasSuffix(th.Name(), ".jpg") {
			continue
		}
		up.add(upload{key: key, file: filepath.Join(dir, thumbSpoolDir, th.Name()), remove: th.Name() != latestThumbName,
			contentType: "image/jpeg"})
	}
	interrupted := m.EndedAt == nil
	if interrupted {
		// The end was not observed: the recording stops with its last
		// spooled segment.
		end := m.StartedAt
		if len(states) > 0 && len(states[0].index) > 0 {
			last := states[0].index[len(states[0].index)-1]
			end = last.PDT.Add(last.duration())
		}
		m.EndedAt = &end
		m.Failure, m.Interrupted = "the server stopped before the recording ended", true
	}
	// StartedWritten only says recording_started.json was queued, in
	// memory: with the store down it may never have been written. Again.
	m.StartedWritten = false
	closeRecording(m, states, up, log)
	select {
	case <-up.drained():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	status, reason := statusEnd, ""
	if m.Failure != "" {
		status, reason = statusEndFailure, "InternalServerErrorException"
	}
	if pub != nil {
		streamID := ""
		if len(m.StreamIDs) > 0 {
			streamID = m.StreamIDs[len(m.StreamIDs)-1]
		}
		pub.Publish(ctx, recordingEvent(m, streamID, status, reason, m.Prefix, recordedMS(states), true, time.Now()))
	}
	log.Info("recording left by an earlier run closed", "interrupted", interrupted, "duration_ms", recordedMS(states))
	return nil
}

// fileOrder sorts init sections first, then media files by number.
func fileOrder(name string) int {
	if strings.HasPrefix(name, "init-") {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(name, ".ts"), ".mp4"))
	if err != nil {
		return 1 << 30
	}
	return n
}
