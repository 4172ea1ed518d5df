package media

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTextID3(t *testing.T) {
	text := strings.Repeat("é", 200) // 400 bytes: sizes need more than 7 bits
	tag := TextID3(OwnerAPI, text)
	if string(tag[:4]) != "ID3\x04" || tag[5] != 0 {
		t.Fatalf("header % x", tag[:10])
	}
	size := func(b []byte) int { return int(b[0])<<21 | int(b[1])<<14 | int(b[2])<<7 | int(b[3]) }
	for _, b := range tag[6:10] {
		if b&0x80 != 0 {
			t.Fatalf("tag size not syncsafe: % x", tag[6:10])
		}
	}
	if size(tag[6:10]) != len(tag)-10 {
		t.Fatalf("tag size %d, body %d", size(tag[6:10]), len(tag)-10)
	}
	body := tag[10:]
	var frames []string
	for len(body) >= 10 {
		id, n := string(body[:4]), size(body[4:8])
		content := body[10 : 10+n]
		switch id {
		case "PRIV":
			owner, data, _ := bytes.Cut(content, []byte{0})
			if string(data) != text {
				t.Fatalf("PRIV data %q", data)
			}
			frames = append(frames, "PRIV "+string(owner))
		default:
			frames = append(frames, id)
		}
		body = body[10+n:]
	}
	if strings.Join(frames, ", ") != "PRIV "+OwnerAPI || len(body) != 0 {
		t.Fatalf("frames %v, %d bytes left", frames, len(body))
	}
}

func TestSegmentMetadataID3(t *testing.T) {
	tag := SegmentMetadataID3(2021 * time.Millisecond)
	want := "TXXX\x00\x00\x00\x28\x00\x00\x03segmentmetadata\x00{\"stream_offset\":2.021}"
	if string(tag[:4]) != "ID3\x04" || string(tag[10:]) != want {
		t.Fatalf("tag %q", tag)
	}
}
