package media

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// SetH264SPS records an H.264 SPS on a video track with what it says:
// dimensions, profile and level as IVS spells them, and the RFC 6381 codec
// string. It reports false, leaving the track as it was, when the SPS does
// not parse or gives no sane picture size.
func (t *Track) SetH264SPS(sps []byte) bool {
	var s h264.SPS
	if len(sps) < 4 || s.Unmarshal(sps) != nil {
		return false
	}
	w, h := s.Width(), s.Height()
	if w <= 0 || h <= 0 || w > 1<<15 || h > 1<<15 {
		return false // garbage SPS arithmetic wraps
	}
	t.SPS = append([]byte(nil), sps...)
	t.Width, t.Height = w, h
	t.Profile = h264ProfileName(s.ProfileIdc, s.ConstraintSet1Flag, s.ConstraintSet3Flag)
	t.Level = h264LevelName(s.LevelIdc, s.ProfileIdc, s.ConstraintSet3Flag)
	// avc1.PPCCLL: profile_idc, the constraint-flags byte and level_idc as
	// they stand in the SPS after its NAL header.
	t.CodecString = fmt.Sprintf("avc1.%02X%02X%02X", sps[1], sps[2], sps[3])
	return true
}

// AACTrack describes an AAC track from its AudioSpecificConfig.
func AACTrack(conf mpeg4audio.AudioSpecificConfig) Track {
	t := Track{Kind: Audio, Codec: CodecAAC, SampleRate: conf.SampleRate, AACObject: int(conf.Type)}
	switch {
	case conf.ChannelConfig >= 1 && conf.ChannelConfig <= 6:
		t.Channels = int(conf.ChannelConfig)
	case conf.ChannelConfig == 7:
		t.Channels = 8
	default:
		t.Channels = conf.ChannelCount //nolint:staticcheck // the only count a PCE-configured stream gives
	}
	if b, err := conf.Marshal(); err == nil {
		t.AudioConfig = b
	}
	t.CodecString = fmt.Sprintf("mp4a.40.%d", t.AACObject)
	return t
}

func h264ProfileName(idc uint8, cs1, cs3 bool) string {
	switch idc {
	case 66:
		if cs1 {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		if cs3 {
			return "High 10 Intra"
		}
		return "High 10"
	case 122:
		if cs3 {
			return "High 4:2:2 Intra"
		}
		return "High 4:2:2"
	case 244:
		if cs3 {
			return "High 4:4:4 Intra"
		}
		return "High 4:4:4 Predictive"
	case 44:
		return "CAVLC 4:4:4 Intra"
	}
	return fmt.Sprintf("profile %d", idc)
}

func h264LevelName(levelIdc, profileIdc uint8, cs3 bool) string {
	// Level 1b is signalled as 11 + constraint_set3 in Baseline, Main and
	// Extended, and as 9 elsewhere.
	if levelIdc == 9 || (levelIdc == 11 && cs3 && (profileIdc == 66 || profileIdc == 77 || profileIdc == 88)) {
		return "1b"
	}
	return fmt.Sprintf("%d.%d", levelIdc/10, levelIdc%10)
}

// ParameterSets returns the last H.264 SPS and PPS among an access
// unit's NAL units (nil for those it does not carry).
func ParameterSets(nalus [][]byte) (sps, pps []byte) {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	return sps, pps
}
