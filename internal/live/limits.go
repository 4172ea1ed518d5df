package live

import (
	"strings"
	"time"

	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
)

// Single-track ingest resolution limits of every channel type (spec 05
// §6.2): 1080p, as total pixels and as pixels on the longer edge.
const (
	maxTotalPixels = 1920 * 1080
	maxEdgePixels  = 1920
)

// checkCodecs admits H.264 video with optional AAC-LC audio (spec 05 §7.2);
// audio-only input is not supported for low-latency streaming.
func checkCodecs(tracks []media.Track) (video, audio *media.Track, err error) {
	for i := range tracks {
		t := &tracks[i]
		switch t.Kind {
		case media.Video:
			if t.Codec != media.CodecH264 {
				return nil, nil, refuse("video codec %s is not supported; use H.264", t.Codec)
			}
			if video == nil {
				video = t
			}
		case media.Audio:
			if t.Codec != media.CodecAAC || (t.AACObject != 0 && t.AACObject != 2) {
				return nil, nil, refuse("audio codec %s (object %d) is not supported; use AAC-LC", t.Codec, t.AACObject)
			}
			if audio == nil {
				audio = t
			}
		}
	}
	if video == nil {
		return nil, nil, refuse("audio-only input is not supported; send H.264 video")
	}
	return video, audio, nil
}

// checkResolution raises Ingest Resolution limit breaches. Called with s.mu held.
func (s *session) checkResolution(v *media.Track, now time.Time) error {
	total := int64(v.Width) * int64(v.Height)
	edge := int64(max(v.Width, v.Height))
	if total > maxTotalPixels {
		s.limitBreach("Ingest Resolution", "total pixels", maxTotalPixels, total, now)
		return refuse("resolution %dx%d exceeds %d total pixels", v.Width, v.Height, maxTotalPixels)
	}
	if edge > maxEdgePixels {
		s.limitBreach("Ingest Resolution", "pixels per edge", maxEdgePixels, edge, now)
		return refuse("resolution %dx%d exceeds %d pixels per edge", v.Width, v.Height, maxEdgePixels)
	}
	return nil
}

// bitrateLimit is the ingest bitrate limit in bits per second (spec 05
// §6.2): BASIC 1.5 Mbps up to 480p and 3.5 Mbps above; the others 8.5 Mbps.
func bitrateLimit(channelType string, tracks []media.Track) int64 {
	if channelType != "BASIC" {
		return 8_500_000
	}
	for _, t := range tracks {
		if t.Kind == media.Video && min(t.Width, t.Height) > 480 {
			return 3_500_000
		}
	}
	return 1_500_000
}

// sameMedia is the takeover condition: the same codecs, video size and
// number of tracks as the stream being taken over.
func sameMedia(a, b []media.Track) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].Codec != b[i].Codec {
			return false
		}
		if a[i].Kind == media.Video && (a[i].Width != b[i].Width || a[i].Height != b[i].Height) {
			return false
		}
	}
	return true
}

// ingestConfiguration describes the probed input for GetStreamSession.
func ingestConfiguration(v, a *media.Track, encoder string) *ivs.IngestConfiguration {
	cfg := &ivs.IngestConfiguration{Video: &ivs.VideoConfiguration{
		AvcProfile: avcProfileName(v.Profile), AvcLevel: v.Level, Codec: v.CodecString, Encoder: encoder,
		Profile: avcProfileName(v.Profile), Level: v.Level,
		VideoWidth: int64(v.Width), VideoHeight: int64(v.Height),
	}}
	if a != nil {
		cfg.Audio = &ivs.AudioConfiguration{Codec: a.CodecString, SampleRate: int64(a.SampleRate), Channels: int64(a.Channels)}
	}
	return cfg
}

// avcProfileName spells the profile as IVS does (e.g. "Main", "High").
func avcProfileName(p string) string {
	if p == "" {
		return ""
	}
	return strings.ToUpper(p[:1]) + p[1:]
}
