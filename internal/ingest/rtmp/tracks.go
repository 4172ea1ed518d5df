package rtmp

import (
	"fmt"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/openivs/openivs/internal/media"
)

// mediaTracks converts the tracks gortmplib discovered into the media model,
// in gortmplib's order (video tracks first), so index i of the result is
// media.Track.ID i and Frame.Track i. Codecs openivs does not carry still get
// a Track, with Codec naming what arrived, so admission can refuse them with
// a reason the user understands.
func mediaTracks(in []*gortmplib.Track) []media.Track {
	out := make([]media.Track, len(in))
	for i, t := range in {
		out[i] = mediaTrack(t)
		out[i].ID = i
	}
	return out
}

func mediaTrack(t *gortmplib.Track) media.Track {
	switch c := t.Codec.(type) {
	case *codecs.H264:
		return h264Track(c.SPS, c.PPS)
	case *codecs.H265:
		return h265Track(c)
	case *codecs.AV1:
		return media.Track{Kind: media.Video, Codec: media.CodecAV1, CodecString: "av01"}
	case *codecs.VP9:
		return media.Track{Kind: media.Video, Codec: media.CodecVP9, CodecString: "vp09"}
	case *codecs.MPEG4Audio:
		return aacTrack(c)
	case *codecs.Opus:
		tr := media.Track{Kind: media.Audio, Codec: media.CodecOpus, CodecString: "opus", SampleRate: 48000}
		if c.IDHeader != nil {
			tr.Channels = int(c.IDHeader.ChannelCount)
		}
		return tr
	case *codecs.MPEG1Audio:
		// FLV codec 2 is "MP3" (MPEG-1/2 audio); layer II is rare enough in
		// RTMP that naming it MP3 is the useful answer.
		return media.Track{Kind: media.Audio, Codec: media.CodecMP3, CodecString: "mp4a.40.34"}
	case *codecs.AC3:
		return media.Track{Kind: media.Audio, Codec: media.CodecAC3, CodecString: "ac-3",
			SampleRate: c.SampleRate, Channels: c.ChannelCount}
	case *codecs.FLAC, *codecs.G711, *codecs.LPCM:
		return media.Track{Kind: media.Audio, Codec: media.CodecOther}
	case nil:
		return media.Track{Codec: media.CodecOther}
	}
	kind := media.Audio
	if t.Codec.IsVideo() {
		kind = media.Video
	}
	return media.Track{Kind: kind, Codec: media.CodecOther}
}

// h264Track fills what the SPS says. A SPS that does not parse still yields
// an H.264 track (with the parameter sets but no dimensions) so that the
// decision to refuse it stays with admission.
func h264Track(sps, pps []byte) media.Track {
	tr := media.Track{Kind: media.Video, Codec: media.CodecH264, SPS: sps, PPS: pps, CodecString: "avc1"}
	tr.SetH264SPS(sps)
	return tr
}

// sane keeps garbage SPS arithmetic (which wraps) out of the track.
func sane(n int) int {
	if n <= 0 || n > 1<<15 {
		return 0
	}
	return n
}

func h265Track(c *codecs.H265) media.Track {
	tr := media.Track{Kind: media.Video, Codec: media.CodecH265, SPS: c.SPS, PPS: c.PPS, CodecString: "hvc1"}
	var s h265.SPS
	if err := s.Unmarshal(c.SPS); err != nil {
		return tr
	}
	tr.Width, tr.Height = sane(s.Width()), sane(s.Height())
	switch s.ProfileTierLevel.GeneralProfileIdc {
	case 1:
		tr.Profile = "Main"
	case 2:
		tr.Profile = "Main 10"
	case 3:
		tr.Profile = "Main Still Picture"
	default:
		tr.Profile = fmt.Sprintf("profile %d", s.ProfileTierLevel.GeneralProfileIdc)
	}
	return tr
}

func aacTrack(c *codecs.MPEG4Audio) media.Track {
	if c.Config == nil {
		return media.Track{Kind: media.Audio, Codec: media.CodecAAC, CodecString: "mp4a.40"}
	}
	return media.AACTrack(*c.Config)
}
