package review

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseResponse feeds arbitrary handler answers to the parser: it must
// never panic, must refuse with ErrInvalidResponse, and whatever it accepts
// must be a review a message may carry.
func FuzzParseResponse(f *testing.F) {
	for _, seed := range []string{
		`{"ReviewResult":"ALLOW"}`,
		`{"ReviewResult":"DENY"}`,
		`{"ReviewResult":"ALLOW","Content":"hello *****","Attributes":{"moderated":"true"}}`,
		`{"ReviewResult":"DENY","Attributes":{"Reason":"spam"}}`,
		`{"ReviewResult":"ALLOW","Content":""}`,
		`{"ReviewResult":"ALLOW","Content":null,"Attributes":null}`,
		`{"ReviewResult":"ALLOW","Attributes":{}}`,
		`{"ReviewResult":"allow"}`,
		`{"ReviewResult":1}`,
		`{"Content":"x"}`,
		`{"ReviewResult":"ALLOW","Content":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}`,
		`{"ReviewResult":"ALLOW","ReviewResult":"DENY"}`,
		`{"ReviewResult":"ALLOW","Attributes":{"n":1}}`,
		` {"ReviewResult":"ALLOW"} `,
		`[]`, `null`, `""`, ``, `{`, "\xff",
	} {
		f.Add([]byte(seed), 5)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxLength int) {
		res, err := parseResponse(body, maxLength)
		if err != nil {
			if !errors.Is(err, ErrInvalidResponse) {
				t.Fatalf("error %v does not wrap ErrInvalidResponse", err)
			}
			return
		}
		limit := maxLength
		if limit <= 0 {
			limit = defaultMaxMessageLength
		}
		if n := utf8.RuneCountInString(res.Content); n > limit || !utf8.ValidString(res.Content) {
			t.Fatalf("accepted Content of %d characters (limit %d) or not UTF-8: %q", n, limit, res.Content)
		}
		if attributesLen(res.Attributes) > maxAttributesLen {
			t.Fatalf("accepted %d bytes of attributes", attributesLen(res.Attributes))
		}
		// What was accepted survives a round trip unchanged.
		again := response{ReviewResult: "DENY", Attributes: res.Attributes}
		if res.Allow {
			again.ReviewResult = "ALLOW"
		}
		if res.Content != "" {
			again.Content = &res.Content
		}
		b, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		res2, err := parseResponse(b, maxLength)
		if err != nil {
			t.Fatalf("re-encoded %s refused: %v", b, err)
		}
		if !reflect.DeepEqual(res, res2) {
			t.Fatalf("round trip changed %+v into %+v", res, res2)
		}
	})
}
