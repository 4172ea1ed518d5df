package media

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// specCaptionInfo is the base64 `data` of the onCaptionInfo example in the
// IVS user guide (spec/05 §7.8): the pop-on caption "Hello, Twitch".
const specCaptionInfo = "tQAxR0E5NANLAPyUrvyUIPyRQPzI5fzs7PzvLPwgVPz36fz04/xogPyUL/8="

// text608 returns the printable characters of 608 field-1 byte pairs.
func text608(cc []CCTriplet) string {
	var b []byte
	for _, t := range cc {
		for _, c := range t[1:] {
			if c &= 0x7f; c >= 0x20 {
				b = append(b, c)
			}
		}
	}
	return string(b)
}

func TestCCDataFromT35ReadsTheGuideExample(t *testing.T) {
	p, err := base64.StdEncoding.DecodeString(specCaptionInfo)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := CCDataFromT35(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cc) != 11 {
		t.Fatalf("%d triplets, want 11", len(cc))
	}
	// Control pairs (ENM, RCL, PAC, EOC) have bytes below 0x20 after parity.
	if got := text608(cc); !bytes.Contains([]byte(got), []byte("Hello, Twitch")) {
		t.Errorf("text %q", got)
	}
	if _, err := CCDataFromT35([]byte("not captions")); err == nil {
		t.Error("a non-A/53 payload parsed")
	}
	if _, err := CCDataFromT35(p[:15]); err == nil {
		t.Error("a truncated cc_data parsed")
	}
}

func TestCaptionSEIRoundTrip(t *testing.T) {
	p, _ := base64.StdEncoding.DecodeString(specCaptionInfo)
	cc, _ := CCDataFromT35(p)
	sei := CaptionSEI(cc)
	if sei[0] != 6 {
		t.Fatalf("NAL type %d", sei[0]&0x1f)
	}
	au := WithCaptions([][]byte{{9, 0xf0}, {7, 1}, {8, 2}, {5, 0x88}}, sei)
	if !bytes.Equal(au[3], sei) || au[4][0] != 5 {
		t.Fatalf("SEI not placed before the first slice: %x", au)
	}
	if got := CaptionsInAccessUnit(au); len(got) != len(cc) || got[3] != cc[3] {
		t.Fatalf("round trip: %v, want %v", got, cc)
	}

	// More than 31 triplets split over several messages; padding is dropped.
	many := make([]CCTriplet, 0, 80)
	for i := 0; i < 70; i++ {
		many = append(many, CCTriplet{0xfc, byte(0x80 | i), 0x80})
		if i%7 == 0 {
			many = append(many, CCTriplet{0xfa, 0, 0}) // cc_valid=0
		}
	}
	got := CaptionsInAccessUnit([][]byte{CaptionSEI(many)})
	if len(got) != 70 || got[69][1] != 0x80|69 {
		t.Fatalf("%d triplets back, want 70", len(got))
	}
	if CaptionSEI([]CCTriplet{{0xfa, 0, 0}}) != nil {
		t.Error("an SEI for padding alone")
	}
}

func TestCaptionSEIEmulationPrevention(t *testing.T) {
	cc := []CCTriplet{{0xfc, 0, 0}, {0xfc, 0, 1}, {0xfc, 0, 0}}
	sei := CaptionSEI(cc)
	if bytes.Contains(sei, []byte{0, 0, 0}) || bytes.Contains(sei, []byte{0, 0, 1}) {
		t.Fatalf("start code emulated in %x", sei)
	}
	if got := CaptionsInAccessUnit([][]byte{sei}); len(got) != 3 || got[1] != cc[1] {
		t.Fatalf("got %v", got)
	}
}

func FuzzCaptionsInAccessUnit(f *testing.F) {
	p, _ := base64.StdEncoding.DecodeString(specCaptionInfo)
	cc, _ := CCDataFromT35(p)
	f.Add(CaptionSEI(cc))
	f.Add([]byte{6, 4, 0xff, 'G', 'A', '9', '4'})
	f.Add([]byte{6, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, nal []byte) {
		got := CaptionsInAccessUnit([][]byte{nal})
		if len(got) > 0 {
			// Whatever was read writes back and reads the same.
			var valid []CCTriplet
			for _, c := range got {
				if c.Valid() {
					valid = append(valid, c)
				}
			}
			if back := CaptionsInAccessUnit([][]byte{CaptionSEI(got)}); len(back) != len(valid) {
				t.Fatalf("%d valid triplets, %d after a round trip", len(valid), len(back))
			}
		}
		_, _ = CCDataFromT35(nal)
	})
}

func TestA53PayloadIsWhatOnCaptionInfoCarries(t *testing.T) {
	p, _ := base64.StdEncoding.DecodeString(specCaptionInfo)
	cc, _ := CCDataFromT35(p)
	// The guide's em_data byte is 00 where ours is ff; the rest is equal.
	got := A53Payload(cc)
	if len(got) != len(p) || !bytes.Equal(got[:9], p[:9]) || !bytes.Equal(got[10:], p[10:]) {
		t.Fatalf("A53Payload\n%x\nwant\n%x", got, p)
	}
}
