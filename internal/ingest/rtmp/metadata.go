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
	if len(d) > 0 {
		if s, isStr := d[0].(string); isStr && s == "@setDataFrame" {
			d = d[1:]
		}
	}
	if len(d) < 2 {
		return "", false
	}
	if name, isStr := d[0].(string); !isStr || name != "onMetaData" {
		return "", false
	}
	var obj amf0.Object
	switch v := d[1].(type) {
	case amf0.Object:
		obj = v
	case amf0.ECMAArray:
		obj = amf0.Object(v)
	default:
		return "", true
	}
	s, _ := obj.GetString("encoder")
	return cleanEncoder(s), true
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
