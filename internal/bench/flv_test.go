package bench

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// flvFile builds an FLV file from tags, as ffmpeg lays it out.
func flvFile(tags ...FLVTag) []byte {
	var b bytes.Buffer
	b.Write([]byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0})
	for _, t := range tags {
		n := len(t.Data)
		b.Write([]byte{t.Type, byte(n >> 16), byte(n >> 8), byte(n),
			byte(t.Timestamp >> 16), byte(t.Timestamp >> 8), byte(t.Timestamp), byte(t.Timestamp >> 24), 0, 0, 0})
		b.Write(t.Data)
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(n+11)))
	}
	return b.Bytes()
}

var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50}
	testPPS = []byte{0x68, 0xeb, 0xe3, 0xcb}
	// AVCDecoderConfigurationRecord with one SPS and one PPS.
	testAVCC = append(append(append([]byte{1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, byte(len(testSPS))}, testSPS...),
		1, 0, byte(len(testPPS))), testPPS...)
	// AudioSpecificConfig: AAC-LC, 48 kHz, stereo.
	testASC = []byte{0x11, 0x90}
)

func videoTag(ts uint32, key bool, packetType byte, body ...byte) FLVTag {
	first := byte(0x27)
	if key {
		first = 0x17
	}
	return FLVTag{Type: flvTagVideo, Timestamp: ts, Data: append([]byte{first, packetType, 0, 0, 0}, body...)}
}

func audioTag(ts uint32, packetType byte, body ...byte) FLVTag {
	return FLVTag{Type: flvTagAudio, Timestamp: ts, Data: append([]byte{0xaf, packetType}, body...)}
}

// sampleFLV is a tiny valid recording: headers, two GOPs of video, audio.
func sampleFLV() []byte {
	return flvFile(
		FLVTag{Type: flvTagScript, Data: []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}},
		videoTag(0, true, 0, testAVCC...),
		audioTag(0, 0, testASC...),
		videoTag(0, true, 1, 0, 0, 0, 2, 0x65, 0x88),
		audioTag(0, 1, 0x21, 0x00),
		videoTag(33, false, 1, 0, 0, 0, 2, 0x41, 0x9a),
		audioTag(21, 1, 0x21, 0x00),
		videoTag(67, true, 1, 0, 0, 0, 2, 0x65, 0x88),
	)
}

func TestParseRecording(t *testing.T) {
	rec, err := ParseRecording(sampleFLV())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.SPS, testSPS) || !bytes.Equal(rec.PPS, testPPS) {
		t.Errorf("SPS/PPS = %x/%x", rec.SPS, rec.PPS)
	}
	if rec.AudioConfig == nil || rec.AudioConfig.SampleRate != 48000 || rec.AudioConfig.ChannelCount != 2 {
		t.Errorf("audio config = %+v", rec.AudioConfig)
	}
	if rec.VideoFrames != 3 || rec.AudioFrames != 2 || len(rec.Units) != 5 {
		t.Errorf("frames: %d video, %d audio, %d units", rec.VideoFrames, rec.AudioFrames, len(rec.Units))
	}
	if !rec.Units[0].Key || rec.Units[2].Key {
		t.Errorf("keyframe flags wrong: %+v", rec.Units)
	}
	// Last DTS 67 ms plus one video step (34 ms), so loops do not overlap.
	if rec.Duration != 101*time.Millisecond {
		t.Errorf("duration = %v", rec.Duration)
	}
}

func TestParseRecordingErrors(t *testing.T) {
	good := sampleFLV()
	for name, b := range map[string][]byte{
		"empty":          nil,
		"not flv":        []byte("GIF89a......."),
		"truncated tag":  good[:len(good)-8],
		"bad prev size":  append(append([]byte(nil), good[:len(good)-1]...), 0xff),
		"no video":       flvFile(audioTag(0, 0, testASC...), audioTag(0, 1, 1, 2)),
		"no avc config":  flvFile(videoTag(0, true, 1, 0, 0, 0, 1, 0x65)),
		"bad avc config": flvFile(videoTag(0, true, 0, 1, 2, 3)),
		"not a keyframe": flvFile(videoTag(0, true, 0, testAVCC...), videoTag(0, false, 1, 0, 0, 0, 1, 0x41)),
		"hevc":           flvFile(FLVTag{Type: flvTagVideo, Data: []byte{0x1c, 0, 0, 0, 0}}),
		"mp3":            flvFile(videoTag(0, true, 0, testAVCC...), FLVTag{Type: flvTagAudio, Data: []byte{0x2f, 1, 0}}),
		"aac no config":  flvFile(videoTag(0, true, 0, testAVCC...), videoTag(0, true, 1, 0, 0, 0, 1, 0x65), audioTag(0, 1, 1)),
	} {
		if _, err := ParseRecording(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzFLVTags feeds arbitrary bytes to the FLV parsers: they read files a
// user passes with --file and must refuse bad ones with an error, never a
// panic or an out-of-range slice.
func FuzzFLVTags(f *testing.F) {
	good := sampleFLV()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:13])
	f.Add(flvFile(videoTag(0, true, 0, testAVCC[:9]...)))
	f.Add(flvFile(FLVTag{Type: flvTagVideo | 0x20, Data: []byte{0x17, 1, 0, 0, 0}}))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00\x09\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, err := ParseFLVTags(b)
		if err == nil {
			for _, tag := range tags {
				if len(tag.Data) > maxFLVTagSize {
					t.Fatalf("tag of %d bytes", len(tag.Data))
				}
			}
		}
		rec, err := ParseRecording(b)
		if err != nil {
			return
		}
		if rec.SPS == nil || rec.PPS == nil || rec.VideoFrames == 0 || rec.Duration <= 0 {
			t.Fatalf("accepted an unusable recording: %+v", rec)
		}
	})
}
