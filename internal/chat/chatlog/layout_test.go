package chatlog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/chat/chatlog"
)

func TestEscapeName(t *testing.T) {
	cases := map[string]string{
		"my-group_1":          "my-group_1",
		"/aws/ivschat/chat":   "%2Faws%2Fivschat%2Fchat",
		"a.b#c":               "a.b#c",
		".":                   "%2E",
		"..":                  "%2E.",
		"../x":                "%2E.%2Fx",
		"":                    "%",
		"%2F":                 "%252F",
		"x\x00y":              "x%00y",
		"ünï":                 "%C3%BCn%C3%AF",
		"stream.with.dots.ok": "stream.with.dots.ok",
	}
	for in, want := range cases {
		if got := chatlog.EscapeName(in); got != want {
			t.Errorf("EscapeName(%q) = %q, want %q", in, got, want)
		}
	}
	// One-to-one on names that differ only where escaping might merge
	// them, and always one segment of bounded length.
	names := []string{"a/b", "a%2Fb", "a_b", "a-b", ".a", "%2Ea", strings.Repeat("g", 512), strings.Repeat("g", 511) + "h",
		strings.Repeat("/", 512), strings.Repeat("/", 511) + "."}
	seen := map[string]string{}
	for _, n := range names {
		got := chatlog.EscapeName(n)
		if prev, ok := seen[got]; ok {
			t.Errorf("%q and %q both escape to %q", prev, n, got)
		}
		seen[got] = n
		if strings.ContainsAny(got, "/\\\x00") || got == "." || got == ".." || strings.HasPrefix(got, ".") || len(got) > 255 {
			t.Errorf("EscapeName(%q) = %q is not one safe segment", n, got)
		}
	}
}

func TestLayout(t *testing.T) {
	at := time.Date(2022, 10, 14, 17, 30, 5, 0, time.FixedZone("x", 3600)) // 16:30 UTC
	if got, want := chatlog.S3Key("123456789012", "us-west-2", "abc123DEF456", at, "1a2b3c4d"),
		"AWSLogs/123456789012/IVSChatLogs/1.0/us-west-2/room_abc123DEF456/2022/10/14/16/"+
			"123456789012_IVSChatLogs_1.0_us-west-2_room_abc123DEF456_202210141630_1a2b3c4d.log.gz"; got != want {
		t.Errorf("S3Key:\n got %s\nwant %s", got, want)
	}
	if got := chatlog.LogStreamName("abc123DEF456"); got != "aws/IVSChatLogs/1.0/room_abc123DEF456" {
		t.Errorf("LogStreamName = %s", got)
	}
	if got := chatlog.CloudWatchPath("/d", "/aws/g", "abc"); got != "/d/cloudwatch/%2Faws%2Fg/aws/IVSChatLogs/1.0/room_abc.log" {
		t.Errorf("CloudWatchPath = %s", got)
	}
	if got := chatlog.FirehosePath("/d", "fh", at); got != "/d/firehose/fh/2022/10/14/16/fh-2022-10-14-16.log" {
		t.Errorf("FirehosePath = %s", got)
	}
}
