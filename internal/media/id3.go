package media

import "encoding/binary"

// Owners of timed metadata, as the IVS player reports them
// (TextMetadataCue.owner): metadata sent with the PutMetadata API, and
// metadata the encoder sent in-band.
const (
	OwnerAPI    = "metadata.live-video.net"
	OwnerInband = "inband.metadata.live-video.net"
)

// TextID3 is an ID3v2.4 tag carrying text as timed metadata: a PRIV frame
// whose owner identifier says where it came from, then a TXXX frame (UTF-8,
// no description) holding the text. Players read the owner from PRIV and
// the text from TXXX.
func TextID3(owner, text string) []byte {
	priv := append([]byte(owner), 0)
	txxx := make([]byte, 0, 2+len(text))
	txxx = append(txxx, 3, 0) // UTF-8, empty description
	txxx = append(txxx, text...)
	var frames []byte
	frames = id3Frame(frames, "PRIV", priv)
	frames = id3Frame(frames, "TXXX", txxx)
	tag := []byte{'I', 'D', '3', 4, 0, 0}
	tag = appendSyncsafe(tag, len(frames))
	return append(tag, frames...)
}

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
