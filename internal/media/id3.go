package media

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Owners of timed metadata, as the IVS player reports them
// (TextMetadataCue.owner): metadata sent with the PutMetadata API, and
// metadata the encoder sent in-band.
const (
	OwnerAPI    = "metadata.live-video.net"
	OwnerInband = "inband.metadata.live-video.net"
)

// TextID3 is an ID3v2.4 tag carrying text as timed metadata: one PRIV
// frame whose owner identifier says where it came from and whose data is
// the text (UTF-8). The IVS player makes one TextMetadataCue of each frame
// of a tag; of a PRIV frame it takes the owner and the text (of a TXXX
// frame, the description as owner), so one PRIV frame gives exactly the
// cue IVS documents: {text, owner, description ""}.
func TextID3(owner, text string) []byte {
	priv := make([]byte, 0, len(owner)+1+len(text))
	priv = append(priv, owner...)
	priv = append(priv, 0)
	priv = append(priv, text...)
	frames := id3Frame(nil, "PRIV", priv)
	tag := []byte{'I', 'D', '3', 4, 0, 0}
	tag = appendSyncsafe(tag, len(frames))
	return append(tag, frames...)
}

// SegmentMetadataID3 is the tag that opens every MPEG-TS segment of a
// stream with timed metadata, as IVS writes it: a TXXX frame described
// "segmentmetadata" holding JSON with the segment's offset in the stream
// (seconds). The IVS player reports it as SEGMENT_METADATA {streamOffset};
// it also needs a tag in every segment once the PMT declares an ID3
// stream, or it takes each segment for a discontinuity (decision 0006).
func SegmentMetadataID3(streamOffset time.Duration) []byte {
	body := []byte{3} // UTF-8
	body = append(body, SegmentMetadataDescription...)
	body = append(body, 0)
	body = fmt.Appendf(body, `{"stream_offset":%.3f}`, max(streamOffset, 0).Seconds())
	frames := id3Frame(nil, "TXXX", body)
	tag := []byte{'I', 'D', '3', 4, 0, 0}
	tag = appendSyncsafe(tag, len(frames))
	return append(tag, frames...)
}

// SegmentMetadataDescription is the TXXX description of SegmentMetadataID3.
const SegmentMetadataDescription = "segmentmetadata"

func id3Frame(b []byte, id string, body []byte) []byte {
	b = append(b, id...)
	b = appendSyncsafe(b, len(body))
	b = append(b, 0, 0) // no flags
	return append(b, body...)
}

// appendSyncsafe writes n as ID3v2.4's 28-bit "syncsafe" integer.
func appendSyncsafe(b []byte, n int) []byte {
	v := uint32(n&0x7f) | uint32(n>>7&0x7f)<<8 | uint32(n>>14&0x7f)<<16 | uint32(n>>21&0x7f)<<24
	return binary.BigEndian.AppendUint32(b, v)
}
