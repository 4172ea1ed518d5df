package rtmp

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bluenviron/gortmplib/pkg/amf0"
)

// maxEncoderLen bounds the encoder name: it is encoder-supplied text that ends
// up in the stream session API and in logs.
const maxEncoderLen = 128

// encoderFromData returns the "encoder" field of an onMetaData data message
// (sent by encoders as `@setDataFrame, onMetaData, {…}` or plain
// `onMetaData, {…}`), cleaned for display, and whether the message was
// onMetaData at all. gortmplib decodes the AMF0 but its Reader drops data
// messages, so this front-end reads them itself.
func encoderFromData(d amf0.Data) (encoder string, ok bool) {
	obj, ok := metadataObject(d)
	if !ok {
		return "", false
	}
	s, _ := obj.GetString("encoder")
	return cleanEncoder(s), true
}

// metadataObject returns the properties of an onMetaData data message
// (sent bare or wrapped in @setDataFrame); ok is false for other messages.
// A malformed onMetaData yields an empty object.
func metadataObject(d amf0.Data) (obj amf0.Object, ok bool) {
	if len(d) > 0 {
		if s, isStr := d[0].(string); isStr && s == "@setDataFrame" {
			d = d[1:]
		}
	}
	if len(d) < 2 {
		return nil, false
	}
	if name, isStr := d[0].(string); !isStr || name != "onMetaData" {
		return nil, false
	}
	switch v := d[1].(type) {
	case amf0.Object:
		return v, true
	case amf0.ECMAArray:
		return amf0.Object(v), true
	}
	return amf0.Object{}, true
}

// cleanEncoder makes encoder-supplied text safe to store and log: valid UTF-8,
// no control or invisible formatting characters, trimmed and bounded.
func cleanEncoder(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxEncoderLen {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
