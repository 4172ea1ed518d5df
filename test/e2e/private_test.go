package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivs/types"

	"github.com/openivs/openivs/internal/playback"
)

// playbackKey generates a P-384 playback key pair and imports its public
// half, as `aws ivs import-playback-key-pair` does.
func playbackKey(t *testing.T, c *ivs.Client) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(t, err, "generate key")
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	must(t, err, "marshal key")
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	_, err = c.ImportPlaybackKeyPair(t.Context(), &ivs.ImportPlaybackKeyPairInput{PublicKeyMaterial: aws.String(pemText)})
	must(t, err, "ImportPlaybackKeyPair")
	return k
}

func signToken(t *testing.T, k *ecdsa.PrivateKey, c playback.Claims) string {
	t.Helper()
	if c.Exp == 0 {
		c.Exp = time.Now().Add(5 * time.Minute).Unix()
	}
	tok, err := playback.SignToken(k, c)
	must(t, err, "sign token")
	return tok
}

// privatePage plays one IVS player per case on a single page and posts
// what each does: state, position, qualities and errors.
const privatePage = `<!doctype html><html><head><meta charset="utf-8">
<script src="/player/openivs-player.min.js"></script></head><body><script src="/__private.js"></script></body></html>`

const privateScript = `(function () {
  var cases = %s, out = {};
  cases.forEach(function (c) {
    var v = document.createElement('video');
    v.muted = true; v.playsInline = true; v.width = 160;
    document.body.appendChild(v);
    var p = IVSPlayer.create();
    var r = out[c.name] = {state: '', position: 0, playedMs: 0, errors: [], qualities: []};
    var first = 0;
    p.attachHTMLVideoElement(v);
    p.addEventListener(IVSPlayer.PlayerEventType.ERROR, function (e) {
      r.errors.push({type: e.type, code: e.code, source: e.source, at: Date.now()});
    });
    setInterval(function () {
      r.state = p.getState(); r.position = p.getPosition();
      r.qualities = p.getQualities().map(function (q) { return q.name; });
      if (!first && r.state === IVSPlayer.PlayerState.PLAYING) first = Date.now();
      r.playedMs = first ? Date.now() - first : 0;
    }, 100);
    p.setAutoplay(true);
    p.load(c.url);
  });
  setInterval(function () {
    fetch('/__report', {method: 'POST', keepalive: true, body: JSON.stringify(out)});
  }, 250);
})();`

type playerReport struct {
	State     string   `json:"state"`
	Position  float64  `json:"position"`
	PlayedMs  float64  `json:"playedMs"`
	Qualities []string `json:"qualities"`
	Errors    []struct {
		Type   string `json:"type"`
		Code   int    `json:"code"`
		Source string `json:"source"`
		At     int64  `json:"at"` // ms since the epoch
	} `json:"errors"`
}

type playerCase struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// openPlayers opens the page of players in Chromium behind a same-origin
// proxy to srv, held until live is closed; it returns the latest reports.
func openPlayers(t *testing.T, srv *server, chromium string, live <-chan struct{}, cases []playerCase) func() map[string]playerReport {
	t.Helper()
	target, _ := url.Parse(srv.Endpoint)
	casesJSON, _ := json.Marshal(cases)
	var mu sync.Mutex
	last := map[string]playerReport{}
	mux := http.NewServeMux()
	mux.HandleFunc("/__private.html", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-live:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, privatePage)
	})
	mux.HandleFunc("/__private.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = fmt.Fprintf(w, privateScript, casesJSON)
	})
	mux.HandleFunc("/__report", func(w http.ResponseWriter, r *http.Request) {
		var rep map[string]playerReport
		if json.NewDecoder(r.Body).Decode(&rep) == nil {
			mu.Lock()
			last = rep
			mu.Unlock()
		}
	})
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	front := httptest.NewServer(mux)
	t.Cleanup(front.Close)
	launchChromium(t, chromium, front.URL+"/__private.html")
	return func() map[string]playerReport {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// TestBrowserPrivateChannel: a STANDARD channel with authorized=true,
// played by our player in Chromium with tokens on the playback URL. A
// valid token plays; each bad token fails with ErrorAuthorization 403 on
// the multivariant playlist; a maximum-resolution token does not see the
// higher renditions; a viewer whose session is revoked with
// StartViewerSessionRevocation stops within 10 s while another plays on.
func TestBrowserPrivateChannel(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	key := playbackKey(t, c)
	otherKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(t, err, "generate key")
	ch := createChannel(t, c, &ivs.CreateChannelInput{
		Type: types.ChannelTypeStandardChannelType, LatencyMode: types.ChannelLatencyModeLowLatency, Authorized: true,
	})
	if !ch.Channel.Authorized {
		t.Fatal("CreateChannel did not echo authorized")
	}
	arn := aws.ToString(ch.Channel.Arn)
	mv := playbackURL(srv, ch)
	path := mv[strings.Index(mv, "/api/"):] // through the page's proxy
	withToken := func(tok string) string { return path + "?token=" + url.QueryEscape(tok) }

	good := signToken(t, key, playback.Claims{ChannelARN: arn})
	bad := map[string]string{
		"none":          "",
		"expired":       signToken(t, key, playback.Claims{ChannelARN: arn, Exp: time.Now().Add(-time.Minute).Unix()}),
		"unimported":    signToken(t, otherKey, playback.Claims{ChannelARN: arn}),
		"other-channel": signToken(t, key, playback.Claims{ChannelARN: arn + "x"}),
		"alg-none": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"aws:channel-arn":"`+arn+`","exp":9999999999}`)) + ".",
	}
	cases := []playerCase{
		{"valid", withToken(good)},
		{"sd", withToken(signToken(t, key, playback.Claims{ChannelARN: arn, MaximumResolution: "SD"}))},
		{"revoked", withToken(signToken(t, key, playback.Claims{ChannelARN: arn, ViewerID: "viewer-r", ViewerSessionVersion: 1}))},
	}
	for name, tok := range bad {
		u := path
		if tok != "" {
			u = withToken(tok)
		}
		cases = append(cases, playerCase{"bad-" + name, u})
	}

	live := make(chan struct{})
	reports := openPlayers(t, srv, chromium, live, cases)
	enc := startEncoder(t, rtmpsURL(srv, aws.ToString(ch.StreamKey.Value)), encodeOpts{size: "1280x720", bitrate: "1500k", seconds: 600})
	waitLive(t, c, ch.Channel.Arn, enc)
	waitEvent(t, c, ch.Channel.Arn, "Stream Start", 30*time.Second)

	// Without the browser: a valid token lists the whole ladder, SD the
	// renditions up to 480p, and every bad token gets 403 with a JSON body.
	full := renditionNames(multivariantRenditions(t, mv+"?token="+url.QueryEscape(good)))
	if !slices.Contains(full, "720p30") || len(full) < 3 {
		t.Fatalf("renditions with a valid token: %v", full)
	}
	sd := renditionNames(multivariantRenditions(t, mv+"?token="+url.QueryEscape(cases[1].URL[strings.Index(cases[1].URL, "token=")+6:])))
	for _, name := range sd {
		if name == "720p30" {
			t.Fatalf("SD token lists %v", sd)
		}
	}
	if len(sd) != len(full)-1 {
		t.Fatalf("SD token lists %v of %v; want all but 720p30", sd, full)
	}
	for name, tok := range bad {
		resp, err := http.Get(mv + "?token=" + url.QueryEscape(tok))
		must(t, err, "GET multivariant")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Message string }
		if resp.StatusCode != http.StatusForbidden || json.Unmarshal(body, &e) != nil || e.Message == "" {
			t.Errorf("token %s: %d %s, want 403 with a JSON message", name, resp.StatusCode, body)
		}
	}
	close(live)

	// In the browser: the three good players play, the bad ones fail.
	deadline := time.Now().Add(90 * time.Second)
	for {
		reps := reports()
		done := true
		for _, name := range []string{"valid", "sd", "revoked"} {
			if reps[name].PlayedMs < 5000 {
				done = false
			}
		}
		for name := range bad {
			if len(reps["bad-"+name].Errors) == 0 {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("players after 90 s: %+v", reps)
		}
		time.Sleep(250 * time.Millisecond)
	}
	reps := reports()
	for name := range bad {
		r := reps["bad-"+name]
		e := r.Errors[0]
		if e.Type != "ErrorAuthorization" || e.Code != 403 || e.Source != "MasterPlaylist" || r.PlayedMs > 0 {
			t.Errorf("bad token %s: %+v, want one ErrorAuthorization 403 from MasterPlaylist and no playback", name, r)
		}
	}
	if q := reps["valid"].Qualities; !slices.Contains(q, "720p30") {
		t.Errorf("valid token's qualities %v lack 720p30", q)
	}
	if q := reps["sd"].Qualities; len(q) == 0 || slices.Contains(q, "720p30") {
		t.Errorf("SD token's qualities %v: the 720p rendition must be hidden", q)
	}
	for _, name := range []string{"valid", "sd", "revoked"} {
		if len(reps[name].Errors) > 0 {
			t.Errorf("%s: errors %+v", name, reps[name].Errors)
		}
	}

	// Revocation stops the playing viewer within 10 s; the others play on.
	revokedAt := time.Now()
	_, err = c.StartViewerSessionRevocation(t.Context(), &ivs.StartViewerSessionRevocationInput{
		ChannelArn: ch.Channel.Arn, ViewerId: aws.String("viewer-r"), ViewerSessionVersionsLessThanOrEqualTo: 1,
	})
	must(t, err, "StartViewerSessionRevocation")
	validBefore := reports()["valid"].Position
	for {
		r := reports()["revoked"]
		if len(r.Errors) > 0 {
			e := r.Errors[0]
			stopped := time.UnixMilli(e.At).Sub(revokedAt)
			if e.Type != "ErrorAuthorization" || e.Code != 403 {
				t.Errorf("revoked viewer's error %+v, want ErrorAuthorization 403", e)
			}
			if stopped > 10*time.Second {
				t.Errorf("revoked viewer stopped %s after the revocation, want ≤ 10 s", stopped)
			}
			t.Logf("revoked viewer stopped %s after StartViewerSessionRevocation", stopped.Round(10*time.Millisecond))
			break
		}
		if time.Since(revokedAt) > 15*time.Second {
			t.Fatalf("revoked viewer still %s 15 s after the revocation: %+v", r.State, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The other viewer plays on: its position moves past where it was
	// and it reports no error (a moment of Buffering on a loaded machine
	// is not a stop, so the state is polled rather than sampled once).
	for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		v := reports()["valid"]
		if len(v.Errors) > 0 {
			t.Fatalf("the unrevoked viewer failed too: %+v", v)
		}
		if v.Position > validBefore+2 && v.State == "Playing" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unrevoked viewer stopped too: %+v (position before %.1f)", v, validBefore)
		}
	}
	// The revoked token cannot start again either.
	resp, err := http.Get(mv + cases[2].URL[strings.Index(cases[2].URL, "?"):])
	must(t, err, "GET multivariant")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoked token starting again: %d, want 403", resp.StatusCode)
	}

	// BatchStartViewerSessionRevocation: each entry applies, a bad one is
	// reported in errors without failing the others.
	status := func(tok string) int {
		resp, err := http.Get(mv + "?token=" + url.QueryEscape(tok))
		must(t, err, "GET multivariant")
		resp.Body.Close()
		return resp.StatusCode
	}
	tokB := signToken(t, key, playback.Claims{ChannelARN: arn, ViewerID: "viewer-b", ViewerSessionVersion: 3})
	tokB4 := signToken(t, key, playback.Claims{ChannelARN: arn, ViewerID: "viewer-b", ViewerSessionVersion: 4})
	if got := status(tokB); got != http.StatusOK {
		t.Fatalf("viewer-b before the batch: %d", got)
	}
	missing := arn[:strings.LastIndex(arn, "/")+1] + "AAAAAAAAAAAA"
	batch, err := c.BatchStartViewerSessionRevocation(t.Context(), &ivs.BatchStartViewerSessionRevocationInput{
		ViewerSessions: []types.BatchStartViewerSessionRevocationViewerSession{
			{ChannelArn: aws.String(arn), ViewerId: aws.String("viewer-b"), ViewerSessionVersionsLessThanOrEqualTo: 3},
			{ChannelArn: aws.String(missing), ViewerId: aws.String("viewer-c")},
		},
	})
	must(t, err, "BatchStartViewerSessionRevocation")
	if len(batch.Errors) != 1 || aws.ToString(batch.Errors[0].ChannelArn) != missing {
		t.Errorf("batch errors %+v, want one for the missing channel", batch.Errors)
	}
	if got := status(tokB); got != http.StatusForbidden {
		t.Errorf("viewer-b version 3 after the batch: %d, want 403", got)
	}
	if got := status(tokB4); got != http.StatusOK {
		t.Errorf("viewer-b version 4 after the batch: %d, want 200", got)
	}
	// A single-use token plays once.
	once := signToken(t, key, playback.Claims{ChannelARN: arn, SingleUseUUID: "8f14e45f-ceea-4e7a-9b2b-5e3c1f0d7a61"})
	if a, b := status(once), status(once); a != http.StatusOK || b != http.StatusForbidden {
		t.Errorf("single-use token: %d then %d, want 200 then 403", a, b)
	}
}
