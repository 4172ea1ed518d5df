package live

import (
	"context"
	"slices"
	"time"

	"github.com/openivs/openivs/internal/blob"
	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
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

// resolutionBand is the band of a rendition's shorter edge, as
// renditionConfiguration names them (spec 04 §0): LOWEST_RESOLUTION up to
// 360, SD up to 480, HD up to 720, FULL_HD above.
func resolutionBand(short int) string {
	switch {
	case short <= 360:
		return "LOWEST_RESOLUTION"
	case short <= 480:
		return "SD"
	case short <= 720:
		return "HD"
	default:
		return "FULL_HD"
	}
}

// chooseRenditions picks the renditions to record: every one viewers get
// (ALL), or those of the chosen resolution bands (CUSTOM), in ladder order.
func chooseRenditions(variants []hls.Variant, sel *ivs.RenditionConfiguration) []int {
	var chosen []int
	for i, v := range variants {
		if v.OnRequest {
			continue
		}
		if sel != nil && sel.RenditionSelection == "CUSTOM" &&
			(v.AudioOnly || !slices.Contains(sel.Renditions, resolutionBand(min(v.Width, v.Height)))) {
			continue
		}
		chosen = append(chosen, i)
	}
	return chosen
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
	chosen := chooseRenditions(variants, rc.RenditionConfiguration)
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
	mediaKey := s.recordingMedia(variants)
	if prev := s.m.lingeringRecording(s.ch.ARN); prev != nil {
		// A reconnect within the window continues the same recording.
		if merged, ok := prev.Resume(s.st.StreamID, mediaKey, renditions); ok {
			s.recorder = prev
			for n, i := range chosen {
				opts[i].OnSegment = merged[n].Segment
				tracks[i] = merged[n]
			}
			return opts, tracks
		}
	}
	rec := record.Start(record.Config{
		Store: cfg.Store, SpoolDir: cfg.SpoolDir, Bucket: rc.DestinationConfiguration.S3.BucketName,
		Account: s.ch.Account, Region: s.m.cfg.Region, ChannelARN: s.ch.ARN, ChannelID: s.ch.ID, ChannelName: s.ch.Name,
		StreamID: s.st.StreamID, Container: s.ch.ContainerFormat, Thumbnails: thumbs, MakeThumbnail: makeThumb,
		ThumbnailSize: func(w, h int) (int, int) { return record.ThumbnailSize(thumbs.Resolution, w, h, sizes) },
		Events:        s.m.cfg.Events, OnRecorded: cfg.OnRecorded, Logger: s.m.log,
		ReconnectWindow: time.Duration(rc.RecordingReconnectWindowSeconds) * time.Second, Media: mediaKey,
	}, renditions)
	s.recorder = rec
	if rc.RecordingReconnectWindowSeconds > 0 {
		s.m.keepRecording(s.ch.ARN, rec)
	}
	for n, i := range chosen {
		t := rec.Track(n)
		opts[i].OnSegment = t.Segment
		tracks[i] = t
	}
	return opts, tracks
}

// recordingMedia describes the stream for matching reconnects: the
// source's resolution, frame rate and codecs, and the encoder's bitrate.
// Called with s.mu held.
func (s *session) recordingMedia(variants []hls.Variant) record.Media {
	var m record.Media
	for _, t := range s.tracks {
		switch {
		case t.Kind == media.Video && m.VideoCodec == "":
			m.Width, m.Height, m.VideoCodec = t.Width, t.Height, t.CodecString
		case t.Kind == media.Audio && m.AudioCodec == "":
			m.AudioCodec = t.CodecString
		}
	}
	for _, v := range variants {
		if v.Source {
			m.FPS = v.FrameRate
		}
	}
	if c := s.sess.IngestConfiguration; c != nil && c.Video != nil {
		m.Bitrate = c.Video.TargetBitrate
	}
	return m
}

// lingeringRecording is the channel's recording still within its
// reconnect window, if any.
func (m *Manager) lingeringRecording(channelARN string) *record.Recorder {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recordings[channelARN]
}

// keepRecording remembers a recording with a reconnect window until it
// closes, so a reconnect can continue it.
func (m *Manager) keepRecording(channelARN string, rec *record.Recorder) {
	m.mu.Lock()
	if m.recordings == nil {
		m.recordings = map[string]*record.Recorder{}
	}
	m.recordings[channelARN] = rec
	m.mu.Unlock()
	go func() {
		<-rec.Done()
		m.mu.Lock()
		if m.recordings[channelARN] == rec {
			delete(m.recordings, channelARN)
		}
		m.mu.Unlock()
	}()
}
