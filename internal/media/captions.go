package media

import (
	"bytes"
	"errors"
)

// Closed captions travel in H.264 the way broadcast encoders embed them:
// SEI user_data_registered_itu_t_t35 messages holding ATSC A/53 cc_data
// ("GA94", user_data_type 3), each cc_data a list of CEA-608/708 byte
// triplets. The helpers here read and write that form so captions can be
// carried from RTMP onCaptionInfo messages into the video and re-inserted
// on transcoded renditions with their timing.

// CCTriplet is one cc_data construct: marker/valid/type byte and two data bytes.
type CCTriplet [3]byte

// Valid reports whether the construct carries data (cc_valid set).
func (t CCTriplet) Valid() bool { return t[0]&0x04 != 0 }

const (
	naluTypeSEI       = 6
	seiTypeT35        = 4
	maxCCPerMessage   = 31 // cc_count is 5 bits
	a53UserDataTypeCC = 3
)

// a53Header is the T.35 prefix of ATSC A/53 user data: country USA,
// provider ATSC, user identifier "GA94".
var a53Header = []byte{0xb5, 0x00, 0x31, 'G', 'A', '9', '4'}

var errNotCaptions = errors.New("captions: not A/53 cc_data")

// CCDataFromT35 parses an ATSC A/53 T.35 payload (country code onwards, as
// RTMP onCaptionInfo carries it base64-encoded) into its cc triplets.
func CCDataFromT35(p []byte) ([]CCTriplet, error) {
	if !bytes.HasPrefix(p, a53Header) || len(p) < len(a53Header)+3 {
		return nil, errNotCaptions
	}
	p = p[len(a53Header):]
	if p[0] != a53UserDataTypeCC {
		return nil, errNotCaptions
	}
	if p[1]&0x40 == 0 { // process_cc_data_flag
		return nil, nil
	}
	n := int(p[1] & 0x1f)
	body := p[3:] // after flags and em_data
	if len(body) < 3*n {
		return nil, errors.New("captions: cc_data shorter than its cc_count")
	}
	out := make([]CCTriplet, n)
	for i := range out {
		copy(out[i][:], body[3*i:])
	}
	return out, nil
}

// CaptionsInAccessUnit returns the cc triplets of every A/53 caption SEI
// message in an access unit, in order. Other SEI messages are ignored.
func CaptionsInAccessUnit(nalus [][]byte) []CCTriplet {
	var out []CCTriplet
	for _, n := range nalus {
		if len(n) < 2 || n[0]&0x1f != naluTypeSEI || !bytes.Contains(n, []byte("GA94")) {
			continue
		}
		forEachSEIMessage(removeEmulationPrevention(n[1:]), func(typ int, payload []byte) {
			if typ != seiTypeT35 {
				return
			}
			if cc, err := CCDataFromT35(payload); err == nil {
				out = append(out, cc...)
			}
		})
	}
	return out
}

// forEachSEIMessage walks the sei_message()s of an SEI RBSP, stopping at
// the trailing bits or at the first malformed message.
func forEachSEIMessage(rbsp []byte, fn func(typ int, payload []byte)) {
	for len(rbsp) > 1 || (len(rbsp) == 1 && rbsp[0] != 0x80) {
		typ, rest, ok := seiVarint(rbsp)
		if !ok {
			return
		}
		size, rest, ok := seiVarint(rest)
		if !ok || size > len(rest) {
			return
		}
		fn(typ, rest[:size])
		rbsp = rest[size:]
	}
}

// seiVarint reads SEI's ff-extended payload type or size.
func seiVarint(b []byte) (v int, rest []byte, ok bool) {
	for i, c := range b {
		v += int(c)
		if c != 0xff {
			return v, b[i+1:], true
		}
	}
	return 0, nil, false
}

// CaptionSEI builds the SEI NAL units carrying cc triplets as A/53 cc_data
// (one message per 31 triplets, all in one NAL unit). Triplets that carry
// nothing are dropped; nil when none is left.
func CaptionSEI(cc []CCTriplet) []byte {
	var rbsp []byte
	for len(cc) > 0 {
		chunk := make([]CCTriplet, 0, maxCCPerMessage)
		for len(cc) > 0 && len(chunk) < maxCCPerMessage {
			if cc[0].Valid() {
				chunk = append(chunk, cc[0])
			}
			cc = cc[1:]
		}
		if len(chunk) == 0 {
			break
		}
		payload := A53Payload(chunk)
		rbsp = appendSEIVarint(rbsp, seiTypeT35)
		rbsp = appendSEIVarint(rbsp, len(payload))
		rbsp = append(rbsp, payload...)
	}
	if rbsp == nil {
		return nil
	}
	rbsp = append(rbsp, 0x80) // rbsp_trailing_bits
	return append([]byte{naluTypeSEI}, addEmulationPrevention(rbsp)...)
}

// A53Payload is the T.35 payload (country code onwards) of A/53 cc_data
// holding up to 31 triplets: what an SEI message carries and what RTMP
// onCaptionInfo sends base64-encoded. Triplets past the 31st are left out.
func A53Payload(cc []CCTriplet) []byte {
	cc = cc[:min(len(cc), maxCCPerMessage)]
	payload := append(make([]byte, 0, len(a53Header)+4+3*len(cc)), a53Header...)
	payload = append(payload, a53UserDataTypeCC, 0x40|byte(len(cc)), 0xff)
	for _, t := range cc {
		payload = append(payload, t[:]...)
	}
	return append(payload, 0xff) // marker_bits
}

func appendSEIVarint(b []byte, v int) []byte {
	for v >= 0xff {
		b = append(b, 0xff)
		v -= 0xff
	}
	return append(b, byte(v))
}

// addEmulationPrevention inserts 0x03 wherever the RBSP would otherwise
// contain a start-code-like 00 00 0x (x ≤ 3).
func addEmulationPrevention(rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/64+1)
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// removeEmulationPrevention drops the 0x03 of every 00 00 03 sequence.
func removeEmulationPrevention(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// WithCaptions returns an access unit with a caption SEI inserted before its
// first slice (after any AUD, SPS, PPS and other SEI), as H.264 requires.
func WithCaptions(nalus [][]byte, sei []byte) [][]byte {
	at := len(nalus)
	for i, n := range nalus {
		if len(n) > 0 {
			if t := n[0] & 0x1f; t >= 1 && t <= 5 {
				at = i
				break
			}
		}
	}
	out := make([][]byte, 0, len(nalus)+1)
	out = append(out, nalus[:at]...)
	out = append(out, sei)
	return append(out, nalus[at:]...)
}
