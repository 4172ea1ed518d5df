package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/geoip/geoiptest"
)

// clientFrom is an HTTP client whose connections come from local address
// ip (any 127.0.0.0/8 address reaches the server over loopback).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// fetch GETs u with headers (name, value, ...) and returns the status.
func fetch(t *testing.T, c *http.Client, u string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	must(t, err, "request")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	must(t, err, "GET "+u)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestRestrictionPolicyEnforced: a public channel with a playback
// restriction policy, created and changed through the AWS SDK, on a
// server given a GeoIP database (written with mmdbwriter) and a trusted
// proxy. Countries come from the socket, or from X-Forwarded-For only when
// the peer is the trusted proxy; origins are checked on the multivariant
// playlist, and on every request once strict; policy changes apply to the
// next request.
func TestRestrictionPolicyEnforced(t *testing.T) {
	t.Parallel()
	db := geoiptest.Write(t, map[string]string{"203.0.113.0/24": "FR", "198.51.100.0/24": "US"})
	// 127.0.0.1 is the "CDN"; 127.0.0.2 is a viewer connecting directly.
	srv := startServer(t, serverOpts{Args: []string{"--geoip-db", db, "--trusted-proxies", "127.0.0.1/32"}})
	c := ivsClient(t, srv)
	pol, err := c.CreatePlaybackRestrictionPolicy(t.Context(), &ivs.CreatePlaybackRestrictionPolicyInput{
		AllowedCountries: []string{"FR"}, AllowedOrigins: []string{"https://*.example.com"},
	})
	must(t, err, "CreatePlaybackRestrictionPolicy")
	ch := createChannel(t, c, &ivs.CreateChannelInput{
		Type: types.ChannelTypeBasicChannelType, PlaybackRestrictionPolicyArn: pol.PlaybackRestrictionPolicy.Arn,
	})
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{seconds: 120})
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 30*time.Second)
	mv := playbackURL(srv, ch)
	cdn, direct := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	origin := "https://www.example.com"

	for _, tc := range []struct {
		name   string
		client *http.Client
		header []string
		want   int
	}{
		{"via the CDN from France", cdn, []string{"X-Forwarded-For", "203.0.113.9", "Origin", origin}, 200},
		{"via the CDN from the US", cdn, []string{"X-Forwarded-For", "198.51.100.7", "Origin", origin}, 403},
		{"via two proxies from the US", cdn, []string{"X-Forwarded-For", "198.51.100.7, 127.0.0.1", "Origin", origin}, 403},
		{"direct viewer (unknown country) claiming the US", direct, []string{"X-Forwarded-For", "198.51.100.7", "Origin", origin}, 200},
		{"direct viewer (unknown country) claiming France", direct, []string{"X-Forwarded-For", "203.0.113.9"}, 200},
		{"from France, another origin", cdn, []string{"X-Forwarded-For", "203.0.113.9", "Origin", "https://evil.example"}, 403},
		{"from France, apex of the wildcard", cdn, []string{"X-Forwarded-For", "203.0.113.9", "Origin", "https://example.com"}, 403},
		{"from France, no origin (not a browser)", cdn, []string{"X-Forwarded-For", "203.0.113.9"}, 200},
	} {
		if got, body := fetch(t, tc.client, mv, tc.header...); got != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, got, body, tc.want)
		}
	}

	// Not strict: a rendition playlist is not origin-checked. Strict (an
	// update, applied at once): every request needs the origin.
	_, body := fetch(t, cdn, mv, "X-Forwarded-For", "203.0.113.9", "Origin", origin)
	child := regexp.MustCompile(`(?m)^\S+\.m3u8$`).FindString(body)
	if child == "" {
		t.Fatalf("no rendition in\n%s", body)
	}
	childURL := mv[:strings.LastIndex(mv, "/")+1] + child
	if got, _ := fetch(t, cdn, childURL, "X-Forwarded-For", "203.0.113.9"); got != 200 {
		t.Errorf("child without origin, not strict: %d", got)
	}
	// The viewer's time is counted under its country (LiveDeliveredTime).
	time.Sleep(time.Second)
	fetch(t, cdn, childURL, "X-Forwarded-For", "203.0.113.9")
	waitMetric(t, srv, "openivs_live_delivered_time_seconds_total",
		map[string]string{"channel": aws.ToString(ch.Channel.Arn), "country": "FR"}, 5*time.Second,
		"delivered time of the viewer in France", func(v float64, found bool) bool { return found && v >= 0.9 })
	_, err = c.UpdatePlaybackRestrictionPolicy(t.Context(), &ivs.UpdatePlaybackRestrictionPolicyInput{
		Arn: pol.PlaybackRestrictionPolicy.Arn, EnableStrictOriginEnforcement: aws.Bool(true),
	})
	must(t, err, "UpdatePlaybackRestrictionPolicy")
	for _, tc := range []struct {
		name   string
		u      string
		header []string
		want   int
	}{
		{"strict, child with the origin", childURL, []string{"X-Forwarded-For", "203.0.113.9", "Origin", origin}, 200},
		{"strict, child without origin", childURL, []string{"X-Forwarded-For", "203.0.113.9"}, 403},
		{"strict, multivariant without origin", mv, []string{"X-Forwarded-For", "203.0.113.9"}, 403},
		{"strict, child from the US", childURL, []string{"X-Forwarded-For", "198.51.100.7", "Origin", origin}, 403},
	} {
		if got, body := fetch(t, cdn, tc.u, tc.header...); got != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, got, body, tc.want)
		}
	}
	// The countries change: France is refused from the next request on.
	_, err = c.UpdatePlaybackRestrictionPolicy(t.Context(), &ivs.UpdatePlaybackRestrictionPolicyInput{
		Arn: pol.PlaybackRestrictionPolicy.Arn, AllowedCountries: []string{"US"},
	})
	must(t, err, "UpdatePlaybackRestrictionPolicy")
	if got, _ := fetch(t, cdn, mv, "X-Forwarded-For", "203.0.113.9", "Origin", origin); got != 403 {
		t.Errorf("France after the update: %d, want 403", got)
	}
	if got, _ := fetch(t, cdn, mv, "X-Forwarded-For", "198.51.100.7", "Origin", origin); got != 200 {
		t.Errorf("US after the update: %d, want 200", got)
	}
}
