package rtmp

import (
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"
)

// discoveryPeriod mirrors gortmplib's analyze period: its Reader reads
// tracks until this much media time has passed.
const discoveryPeriod = 2 * time.Second

// trackAnnouncement shortens gortmplib's track discovery. The Reader reads
// 2 s of media before it reports tracks, which would hold every stream
// start (and a takeover) back by 2 s. Encoders announce their tracks in
// onMetaData (videocodecid, audiocodecid) before the first media message,
// and send each track's configuration before its first frame; once every
// announced track is configured there is nothing left to discover. Then
// the next read hands the Reader a sentinel message dated past the analyze
// period, which ends its loop; replayConn drops the sentinel when the
// Reader replays what it read. Without onMetaData, or with multitrack
// (Enhanced RTMP) messages, discovery runs its full course.
type trackAnnouncement struct {
	announced            bool // onMetaData arrived before any media
	media                bool // a media message arrived
	timed                bool // one the Reader takes its start time from
	wantVideo, wantAudio bool
	haveVideo, haveAudio bool
	multitrack           bool
	maxDTS               time.Duration
}

// observe notes one message read during discovery and reports whether
// every announced track is now configured.
func (a *trackAnnouncement) observe(msg message.Message) bool {
	switch m := msg.(type) {
	case *message.DataAMF0:
		if !a.media {
			a.noteMetadata(m.Payload)
		}
	case *message.Video:
		a.sawMedia(m.DTS)
		if m.Type == message.VideoTypeConfig &&
			(m.Codec == message.CodecH264 && m.AVCConfig != nil || m.Codec == message.CodecH265 && m.HEVCConfig != nil) {
			a.haveVideo = true
		}
	case *message.VideoExSequenceStart:
		a.media = true
		a.haveVideo = true
	case *message.VideoExCodedFrames:
		a.sawMedia(m.DTS)
	case *message.VideoExFramesX:
		a.sawMedia(m.DTS)
	case *message.Audio:
		a.sawMedia(m.DTS)
		// gortmplib configures AAC from its config message and any other
		// codec from its first data message.
		if m.Codec != message.CodecMPEG4Audio || m.AACType == message.AudioAACTypeConfig && m.AACConfig != nil {
			a.haveAudio = true
		}
	case *message.AudioExCodedFrames:
		// Extended audio is configured by its first coded frames.
		a.sawMedia(m.DTS)
		a.haveAudio = true
	case *message.AudioExSequenceStart:
		a.media = true
	case *message.VideoExMultitrack, *message.AudioExMultitrack:
		a.multitrack = true
	}
	// The Reader's clock starts at its first timed message, so the sentinel
	// can only be dated past the analyze period once one has arrived.
	return a.announced && a.timed && !a.multitrack && (a.wantVideo || a.wantAudio) &&
		(!a.wantVideo || a.haveVideo) && (!a.wantAudio || a.haveAudio)
}

func (a *trackAnnouncement) sawMedia(dts time.Duration) {
	a.media, a.timed = true, true
	a.maxDTS = max(a.maxDTS, dts)
}

// noteMetadata reads which kinds of track onMetaData announces.
func (a *trackAnnouncement) noteMetadata(d amf0.Data) {
	obj, ok := metadataObject(d)
	if !ok {
		return
	}
	a.announced = true
	a.wantVideo = announces(obj, "videocodecid")
	a.wantAudio = announces(obj, "audiocodecid")
}

// announces reports whether onMetaData names a codec under key: a number
// other than 0 (FLV codec ids) or a non-empty string (FourCC).
func announces(obj amf0.Object, key string) bool {
	v, ok := obj.Get(key)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case float64:
		return v != 0
	case string:
		return v != ""
	}
	return false
}

// sentinel is the message that ends the Reader's discovery loop: a video
// access unit dated one analyze period after the newest media seen. The
// Reader only reads its timestamp.
func (a *trackAnnouncement) sentinel() message.Message {
	return &message.Video{
		ChunkStreamID:   6,
		MessageStreamID: 0x1000000,
		Codec:           message.CodecH264,
		Type:            message.VideoTypeAU,
		DTS:             a.maxDTS + discoveryPeriod,
	}
}
