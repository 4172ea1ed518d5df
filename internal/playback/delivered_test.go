package playback

import (
	"testing"
	"time"
)

// TestDeliveredTime: a session earns the time between its consecutive
// playlist fetches (an LL-HLS player fetching 5 times a second earns a
// second per second, a plain-HLS one reloading every 2 s the same), a
// pause longer than ViewerWindow earns nothing, and a drain hands the time
// over once.
func TestDeliveredTime(t *testing.T) {
	v := NewViewers()
	now := time.Unix(1_700_000_000, 0)
	v.now = func() time.Time { return now }
	const other = "arn:aws:ivs:us-west-2:123456789012:channel/other"
	drain := func() map[string]time.Duration {
		got := map[string]time.Duration{}
		v.DrainDelivered(func(ch, country string, d time.Duration) {
			if country != "" {
				t.Errorf("country %q, want unknown", country)
			}
			got[ch] += d
		})
		return got
	}

	// Viewer a: LL-HLS, a fetch every 200 ms for 10 s. Viewer b: plain
	// HLS on another channel, every 2 s for 10 s.
	for i := 0; i <= 50; i++ {
		v.Touch(channelARN, "a", "")
		if i%10 == 0 {
			v.Touch(other, "b", "")
		}
		now = now.Add(200 * time.Millisecond)
	}
	got := drain()
	if got[channelARN] != 10*time.Second || got[other] != 10*time.Second {
		t.Fatalf("after 10 s of watching: %v, want 10 s on each channel", got)
	}
	if got := drain(); len(got) != 0 {
		t.Fatalf("a second drain: %v, want nothing", got)
	}

	// a pauses 30 s, then fetches twice 1 s apart: only that second counts.
	now = now.Add(30 * time.Second)
	v.Touch(channelARN, "a", "")
	now = now.Add(time.Second)
	v.Touch(channelARN, "a", "")
	if got := drain(); got[channelARN] != time.Second {
		t.Fatalf("after a pause: %v, want 1 s", got)
	}

	// Earned time survives Count dropping a channel nobody watches any more.
	now = now.Add(time.Second)
	v.Touch(channelARN, "a", "")
	now = now.Add(2 * ViewerWindow)
	if n := v.Count(channelARN); n != 0 {
		t.Fatalf("Count = %d, want 0", n)
	}
	if got := drain(); got[channelARN] != time.Second {
		t.Fatalf("drain after the viewer left: %v, want 1 s", got)
	}
}

// TestDeliveredTimeByCountry: time is attributed to the country of the
// fetch that earned it.
func TestDeliveredTimeByCountry(t *testing.T) {
	v := NewViewers()
	now := time.Unix(1_700_000_000, 0)
	v.now = func() time.Time { return now }
	for i := 0; i <= 10; i++ {
		v.Touch(channelARN, "fr", "FR")
		v.Touch(channelARN, "unknown", "")
		now = now.Add(time.Second)
	}
	got := map[string]time.Duration{}
	v.DrainDelivered(func(_, country string, d time.Duration) { got[country] += d })
	if got["FR"] != 10*time.Second || got[""] != 10*time.Second || len(got) != 2 {
		t.Fatalf("delivered by country %v, want 10 s for FR and 10 s unknown", got)
	}
}
