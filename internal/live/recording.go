package live

import (
	"context"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/record"
)

// RecordingConfig is how a node records the streams of channels that have
// a recording configuration.
type RecordingConfig struct {
	Store    blob.Store // where buckets are
	SpoolDir string     // local spool (DATA_DIR/spool/recordings)
	// Thumbnails makes thumbnails from keyframes (nil: none).
	Thumbnails *record.Thumbnailer
	// OnRecorded is told of recorded media time (RecordedTime).
	OnRecorded func(channelARN string, d time.Duration)
}

// Resolution bands of renditionConfiguration and thumbnails (spec 04 §0):
// the shorter edge of a rendition.
func resolutionBand(height int) string {
	switch {
	case height <= 480:
		return "SD"
	case height <= 720:
		return "HD"
	default:
		return "FULL_HD"
	}
}

// startRecording starts the stream's recording, when its channel has an
// ACTIVE recording configuration, over the renditions it selects, and
// hooks their packagers. It returns the per-variant options (with the
// recorder's segment hook where recorded) and the tracks to end when
// each packager finishes. Called with s.mu held, from buildRenditions.
func (s *session) startRecording(variants []hls.Variant, base hls.Options) ([]hls.Options, []*record.Track) {
	opts := make([]hls.Options, len(variants))
	for i := range opts {
		opts[i] = base
	}
	tracks := make([]*record.Track, len(variants))
	rc, cfg := s.ch.Recording, s.m.cfg.Recording
	if rc == nil || cfg == nil || rc.DestinationConfiguration.S3 == nil {
		return opts, tracks
	}
	// Which renditions: every one viewers get (ALL), or those of the
	// chosen resolution bands (CUSTOM).
	var chosen []int
	lowest := -1
	for i, v := range variants {
		if v.OnRequest {
			continue
		}
		if !v.AudioOnly && (lowest < 0 || v.Height < variants[lowest].Height) {
			lowest = i
		}
	}
	for i, v := range variants {
		if v.OnRequest {
			continue
		}
		if sel := rc.RenditionConfiguration; sel != nil && sel.RenditionSelection == "CUSTOM" {
			want := false
			for _, band := range sel.Renditions {
				want = want || (band == "LOWEST_RESOLUTION" && i == lowest) ||
					(!v.AudioOnly && band == resolutionBand(min(v.Width, v.Height)))
			}
			if !want {
				continue
			}
		}
		chosen = append(chosen, i)
	}
	if len(chosen) == 0 {
		s.m.log.Warn("recording: the configuration selects none of the stream's renditions", "stream_id", s.st.StreamID)
		return opts, tracks
	}
	var renditions []record.Rendition
	var sizes [][2]int
	for _, i := range chosen {
		v := variants[i]
		name := v.Name
		if name == "" {
			name = hls.RenditionName(min(v.Width, v.Height), int(v.FrameRate+0.5))
		}
		renditions = append(renditions, record.Rendition{Path: name, Width: v.Width, Height: v.Height,
			FrameRate: v.FrameRate, AudioOnly: v.AudioOnly})
		if !v.AudioOnly {
			sizes = append(sizes, [2]int{v.Width, v.Height})
		}
	}
	thumbs := record.ThumbnailSettings{}
	var makeThumb func(ctx context.Context, sps, pps []byte, keyframe [][]byte, w, h int) ([]byte, error)
	if tc := rc.ThumbnailConfiguration; tc != nil && tc.RecordingMode == "INTERVAL" && cfg.Thumbnails != nil {
		thumbs.Interval = time.Duration(tc.TargetIntervalSeconds) * time.Second
		thumbs.Resolution = tc.Resolution
		for _, st := range tc.Storage {
			thumbs.Sequential = thumbs.Sequential || st == "SEQUENTIAL"
			thumbs.Latest = thumbs.Latest || st == "LATEST"
		}
		makeThumb = cfg.Thumbnails.JPEG
	}
	rec := record.Start(record.Config{
		Store: cfg.Store, SpoolDir: cfg.SpoolDir, Bucket: rc.DestinationConfiguration.S3.BucketName,
		Account: s.ch.Account, Region: s.m.cfg.Region, ChannelARN: s.ch.ARN, ChannelID: s.ch.ID, ChannelName: s.ch.Name,
		StreamID: s.st.StreamID, Container: s.ch.ContainerFormat, Thumbnails: thumbs, MakeThumbnail: makeThumb,
		ThumbnailSize: func(w, h int) (int, int) { return record.ThumbnailSize(thumbs.Resolution, w, h, sizes) },
		Events:        s.m.cfg.Events, OnRecorded: cfg.OnRecorded, Logger: s.m.log,
	}, renditions)
	s.recorder = rec
	for n, i := range chosen {
		t := rec.Track(n)
		opts[i].OnSegment = t.Segment
		tracks[i] = t
	}
	return opts, tracks
}
