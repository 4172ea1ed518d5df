package rtmp

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/openivs/openivs/internal/media"
)

// In-band data an encoder sends between its audio and video messages:
//
//   - onCaptionInfo {type: "708", data: base64} — CEA-608/708 captions as the
//     A/53 T.35 payload (IVS user guide, closed captions; Elemental, Wowza);
//   - onTextData {text: "…"} — timed text, as ffmpeg's FLV muxer writes a
//     text subtitle stream and Flash-era encoders send cue text; it becomes
//     timed metadata with the in-band owner.
//
// gortmplib's AMF0 reader decodes them but drops data messages, so the
// connection hands them here; the frame writer attaches what they carry to
// the next video access unit, which is where the encoder placed them.

const (
	// maxInbandText bounds in-band metadata like PutMetadata's payload.
	maxInbandText = 1024
	// maxPendingCaptions bounds the cc triplets waiting for a picture (an
	// encoder sending captions without video must not grow memory).
	maxPendingCaptions = 31 * 8
	// maxPendingTexts bounds the in-band metadata waiting for a picture.
	maxPendingTexts = 16
)

// inbandData is what one data message carried.
type inbandData struct {
	captions []media.CCTriplet
	text     string
	hasText  bool
}

// parseInband reads onCaptionInfo and onTextData messages (bare or wrapped
// in @setDataFrame); ok is false for any other message or a malformed one.
func parseInband(d amf0.Data) (in inbandData, ok bool) {
	if len(d) > 0 {
		if s, isStr := d[0].(string); isStr && s == "@setDataFrame" {
			d = d[1:]
		}
	}
	if len(d) < 2 {
		return in, false
	}
	name, _ := d[0].(string)
	var obj amf0.Object
	switch v := d[1].(type) {
	case amf0.Object:
		obj = v
	case amf0.ECMAArray:
		obj = amf0.Object(v)
	default:
		return in, false
	}
	switch name {
	case "onCaptionInfo":
		if typ, _ := obj.GetString("type"); typ != "708" {
			return in, false
		}
		data, _ := obj.GetString("data")
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return in, false
		}
		cc, err := media.CCDataFromT35(raw)
		if err != nil || len(cc) == 0 {
			return in, false
		}
		in.captions = cc
		return in, true
	case "onTextData":
		text, isStr := obj.GetString("text")
		if !isStr || text == "" || len(text) > maxInbandText || !utf8.ValidString(text) {
			return in, false
		}
		in.text, in.hasText = text, true
		return in, true
	}
	return in, false
}
