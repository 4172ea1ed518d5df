package record

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path"
	"time"
)

// Names of the recording layout (spec 04 §3.2, the file names).
const (
	eventsDir            = "events"
	startedFile          = "recording_started.json"
	endedFile            = "recording_ended.json"
	failedFile           = "recording_failed.json"
	hlsDir               = "media/hls"
	masterPlaylist       = "master.m3u8"
	byteRangeMaster      = "byte-range-multivariant.m3u8"
	variantPlaylist      = "playlist.m3u8"
	byteRangeVariant     = "byte-range-variant.m3u8"
	thumbnailsDir        = "media/thumbnails"
	latestThumbnailFile  = "media/latest_thumbnail/thumb.jpg"
	schemaVersion        = "v1"
	statusStarted        = "RECORDING_STARTED"
	statusEnded          = "RECORDING_ENDED"
	statusEndedWithError = "RECORDING_ENDED_WITH_FAILURE"
)

// Prefix is a recording's key prefix: ivs/v1/<account>/<channel id>/<y>/<M>/<d>/<h>/<m>/<recording id>,
// the date parts of when it started in UTC and not zero-padded.
func Prefix(account, channelID string, started time.Time, recordingID string) string {
	t := started.UTC()
	return fmt.Sprintf("ivs/v1/%s/%s/%d/%d/%d/%d/%d/%s", account, channelID,
		t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), recordingID)
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomID returns n base62 characters (recording ids are 12, recording
// session ids 16).
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// metadataFile is the JSON written to events/ (spec 04 §3.7).
type metadataFile struct {
	Version                string        `json:"version"`
	ChannelARN             string        `json:"channel_arn"`
	RecordingStartedAt     string        `json:"recording_started_at"`
	RecordingEndedAt       string        `json:"recording_ended_at,omitempty"`
	RecordingStatus        string        `json:"recording_status"`
	RecordingStatusMessage string        `json:"recording_status_message,omitempty"`
	Media                  metadataMedia `json:"media"`
}

type metadataMedia struct {
	HLS             metadataHLS        `json:"hls"`
	Thumbnails      *metadataThumbnail `json:"thumbnails,omitempty"`
	LatestThumbnail *metadataThumbnail `json:"latest_thumbnail,omitempty"`
}

type metadataHLS struct {
	DurationMS        *int64              `json:"duration_ms,omitempty"`
	Path              string              `json:"path"`
	Playlist          string              `json:"playlist"`
	ByteRangePlaylist string              `json:"byte_range_playlist"`
	Renditions        []metadataRendition `json:"renditions"`
}

type metadataRendition struct {
	Path              string `json:"path"`
	Playlist          string `json:"playlist"`
	ByteRangePlaylist string `json:"byte_range_playlist"`
	ResolutionHeight  int    `json:"resolution_height,omitempty"`
	ResolutionWidth   int    `json:"resolution_width,omitempty"`
}

type metadataThumbnail struct {
	Path             string `json:"path"`
	ResolutionHeight int    `json:"resolution_height"`
	ResolutionWidth  int    `json:"resolution_width"`
}

// rfc3339 formats a time as the JSON files and events do: UTC seconds.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// metadataJSON renders the events/ file of a recording in state status.
func (m *meta) metadataJSON(status, message string, ended time.Time, durationMS int64) []byte {
	f := metadataFile{
		Version: schemaVersion, ChannelARN: m.ChannelARN, RecordingStartedAt: rfc3339(m.StartedAt),
		RecordingStatus: status, RecordingStatusMessage: message,
		Media: metadataMedia{HLS: metadataHLS{
			Path: hlsDir, Playlist: masterPlaylist, ByteRangePlaylist: byteRangeMaster,
			Renditions: []metadataRendition{},
		}},
	}
	if status != statusStarted {
		f.RecordingEndedAt = rfc3339(ended)
		f.Media.HLS.DurationMS = &durationMS
	}
	for _, r := range m.Renditions {
		mr := metadataRendition{Path: r.Path, Playlist: variantPlaylist, ByteRangePlaylist: byteRangeVariant}
		if !r.AudioOnly {
			mr.ResolutionWidth, mr.ResolutionHeight = r.Width, r.Height
		}
		f.Media.HLS.Renditions = append(f.Media.HLS.Renditions, mr)
	}
	if th := m.Thumbnails; th.Enabled() && th.Width > 0 {
		if th.Sequential {
			f.Media.Thumbnails = &metadataThumbnail{Path: thumbnailsDir, ResolutionWidth: th.Width, ResolutionHeight: th.Height}
		}
		if th.Latest {
			f.Media.LatestThumbnail = &metadataThumbnail{Path: latestThumbnailFile, ResolutionWidth: th.Width, ResolutionHeight: th.Height}
		}
	}
	raw, _ := json.MarshalIndent(f, "", "  ")
	return raw
}

// key joins a recording's prefix and a relative path.
func (m *meta) key(rel ...string) string { return path.Join(append([]string{m.Prefix}, rel...)...) }
