package rtmp

import (
	"testing"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/openivs/openivs/internal/ingest"
	"github.com/openivs/openivs/internal/media"
)

// TestDiscoveryEndsWhenAnnouncedTracksAreConfigured: an encoder that
// announced H.264 and AAC in onMetaData is started after its configs and a
// few frames, not after gortmplib's 2 s of media, and every frame it sent
// is delivered (the end-of-discovery sentinel is not).
func TestDiscoveryEndsWhenAnnouncedTracksAreConfigured(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	pub := newTestPublisher(key)
	srv := startServer(t, pub, ingest.RTMP, nil, Config{})
	vt, at := h264AACTracks()
	_, w := publishWriter(t, srv, key, vt, at)
	// 5 video frames and 5 audio frames: 133 ms of media, far short of 2 s.
	const n = 5
	for i := range n {
		ts := time.Duration(i) * time.Second / 30
		nalu := []byte{0x41, 0x9a, byte(i)}
		if i == 0 {
			nalu = []byte{0x65, 0x88, 0x84, byte(i)}
		}
		if err := w.WriteH264(vt, ts, ts, [][]byte{nalu}); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMPEG4Audio(at, ts, []byte{0x21, 0x10, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "Start and every frame sent before it", func() bool {
		_, starts, _ := pub.snapshot()
		return len(starts) == 1 && len(starts[0].snapshot()) >= 2*n
	})
	_, starts, _ := pub.snapshot()
	if tr := starts[0].tracks; len(tr) != 2 || tr[0].Codec != media.CodecH264 || tr[1].Codec != media.CodecAAC {
		t.Fatalf("tracks %+v", tr)
	}
	frames := starts[0].snapshot()
	if len(frames) != 2*n {
		t.Errorf("%d frames delivered, want %d", len(frames), 2*n)
	}
	for _, f := range frames {
		if f.DTS >= discoveryPeriod {
			t.Errorf("a frame at %v was delivered: the discovery sentinel leaked", f.DTS)
		}
	}
}

func TestTrackAnnouncement(t *testing.T) {
	meta := func(props ...any) message.Message {
		var obj amf0.Object
		for i := 0; i+1 < len(props); i += 2 {
			obj = append(obj, amf0.ObjectEntry{Key: props[i].(string), Value: props[i+1]})
		}
		return &message.DataAMF0{Payload: amf0.Data{"@setDataFrame", "onMetaData", amf0.ECMAArray(obj)}}
	}
	h264Config := &message.Video{Codec: message.CodecH264, Type: message.VideoTypeConfig, AVCConfig: &mp4.AVCDecoderConfiguration{}}
	aacConfig := &message.Audio{Codec: message.CodecMPEG4Audio, AACType: message.AudioAACTypeConfig,
		AACConfig: &mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 48000, ChannelConfig: 2}}
	frame := &message.Video{Codec: message.CodecH264, Type: message.VideoTypeAU, DTS: 40 * time.Millisecond}
	for _, tc := range []struct {
		name string
		msgs []message.Message
		done bool
	}{
		{"video and audio announced and configured", []message.Message{meta("videocodecid", 7.0, "audiocodecid", 10.0), h264Config, aacConfig}, true},
		{"audio still missing", []message.Message{meta("videocodecid", 7.0, "audiocodecid", 10.0), h264Config, frame}, false},
		{"video only", []message.Message{meta("videocodecid", 7.0), h264Config}, true},
		{"FourCC codec id", []message.Message{meta("videocodecid", "avc1", "audiocodecid", 0.0), h264Config}, true},
		{"no onMetaData", []message.Message{h264Config, aacConfig, frame}, false},
		{"onMetaData after media", []message.Message{h264Config, meta("videocodecid", 7.0), frame}, false},
		{"onMetaData without codec ids", []message.Message{meta("width", 640.0), h264Config, aacConfig}, false},
		{"Enhanced RTMP sequence start has no timestamp yet", []message.Message{meta("videocodecid", "hvc1"), &message.VideoExSequenceStart{}}, false},
		{"Enhanced RTMP once a frame is timed", []message.Message{meta("videocodecid", "hvc1"), &message.VideoExSequenceStart{}, &message.VideoExCodedFrames{DTS: 0}}, true},
		{"multitrack never shortcuts", []message.Message{meta("videocodecid", 7.0, "audiocodecid", 10.0), &message.AudioExMultitrack{}, h264Config, aacConfig}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a trackAnnouncement
			done := false
			for _, m := range tc.msgs {
				done = a.observe(m)
			}
			if done != tc.done {
				t.Fatalf("done = %v, want %v", done, tc.done)
			}
			if done {
				if s, ok := a.sentinel().(*message.Video); !ok || s.DTS < a.maxDTS+discoveryPeriod || s.Type != message.VideoTypeAU {
					t.Errorf("sentinel %+v does not end a discovery started at %v", s, a.maxDTS)
				}
			}
		})
	}
}
