package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The spool is a recording's state on local disk, so that nothing is lost
// when the object store is down or the server dies: every segment is
// appended to its media file here before it is uploaded, and an index
// line per segment says where it lies. A restarted server finds the
// spool, uploads what is left and closes the recording.
//
//	<spool>/<recording id>/recording.json        meta (rewritten atomically)
//	<spool>/<recording id>/<rendition>/index.jsonl one line per segment
//	<spool>/<recording id>/<rendition>/<n>.ts|mp4  media files not yet uploaded
//	<spool>/<recording id>/<rendition>/init-<v>.mp4 fMP4 init sections
const (
	metaFile  = "recording.json"
	indexFile = "index.jsonl"
)

// meta is what a recording is; it survives restarts.
type meta struct {
	RecordingID string    `json:"recordingId"`
	SessionID   string    `json:"recordingSessionId"`
	Account     string    `json:"account"`
	Region      string    `json:"region"`
	ChannelARN  string    `json:"channelArn"`
	ChannelName string    `json:"channelName"`
	Bucket      string    `json:"bucket"`
	Prefix      string    `json:"prefix"`
	Container   string    `json:"container"` // TS or FRAGMENTED_MP4
	StartedAt   time.Time `json:"startedAt"`
	StreamIDs   []string  `json:"streamIds"`
	// Renditions are the recorded renditions, highest first.
	Renditions []renditionMeta   `json:"renditions"`
	Thumbnails ThumbnailSettings `json:"thumbnails"`
	// StartedWritten says recording_started.json is in the bucket.
	StartedWritten bool `json:"startedWritten,omitempty"`
	// EndedAt is set once the recording ended (Finish was called); Failure
	// says why it ended with a failure.
	EndedAt *time.Time `json:"endedAt,omitempty"`
	Failure string     `json:"failure,omitempty"`
	// Interrupted says the run died before the recording ended (Recover).
	Interrupted bool `json:"interrupted,omitempty"`
}

// renditionMeta describes one recorded rendition.
type renditionMeta struct {
	Path      string  `json:"path"` // e.g. 720p30
	Width     int     `json:"width,omitempty"`
	Height    int     `json:"height,omitempty"`
	FrameRate float64 `json:"frameRate,omitempty"`
	Codecs    string  `json:"codecs,omitempty"`
	AudioOnly bool    `json:"audioOnly,omitempty"`
}

// ThumbnailSettings is a recording configuration's thumbnailConfiguration
// as the recorder uses it.
type ThumbnailSettings struct {
	Interval   time.Duration `json:"interval"` // 0: no thumbnails (DISABLED)
	Resolution string        `json:"resolution,omitempty"`
	Sequential bool          `json:"sequential,omitempty"`
	Latest     bool          `json:"latest,omitempty"`
	// Width and Height are the thumbnails' size once known.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// Enabled says thumbnails are recorded.
func (t ThumbnailSettings) Enabled() bool { return t.Interval > 0 && (t.Sequential || t.Latest) }

// indexEntry is one recorded segment.
type indexEntry struct {
	File   int       `json:"f"` // media file number
	Offset int64     `json:"o"`
	Size   int64     `json:"s"`
	DurUS  int64     `json:"d"` // duration in microseconds
	PDT    time.Time `json:"t"`
	Disc   bool      `json:"x,omitempty"`
	Init   int       `json:"i,omitempty"` // fMP4 init section number
}

func (e indexEntry) duration() time.Duration { return time.Duration(e.DurUS) * time.Microsecond }

// writeJSONAtomic writes v as JSON to path through a synced temp file.
func writeJSONAtomic(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, raw)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readMeta(dir string) (*meta, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("record: %s: %w", filepath.Join(dir, metaFile), err)
	}
	return &m, nil
}

// readIndex reads a rendition's index; a torn last line (a crash while it
// was written) is dropped.
func readIndex(path string) ([]indexEntry, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []indexEntry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var e indexEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// mediaName is the file name of media file n.
func mediaName(n int, container string) string {
	if container == containerFMP4 {
		return strconv.Itoa(n) + ".mp4"
	}
	return strconv.Itoa(n) + ".ts"
}

// initName is the file name of fMP4 init section v.
func initName(v int) string { return "init-" + strconv.Itoa(v) + ".mp4" }

const containerFMP4 = "FRAGMENTED_MP4"
