package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivs"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/openivs/openivs/internal/testutil/awstest"
)

// chatClient is the real IVS Chat SDK client for srv with the test root
// credentials, built like ivsClient.
func chatClient(srv *server) *ivschat.Client {
	return ivschat.New(ivschat.Options{
		BaseEndpoint: aws.String(srv.Endpoint),
		Region:       testRegion,
		Credentials:  staticCreds(testAccessKeyID, testSecretAccessKey),
		Retryer:      awstest.Retryer(),
		HTTPClient:   srv.client,
	})
}

// chatPages is the top page of the chat demo test: two demo pages side by
// side, as two viewers would open them.
const chatPages = `<!doctype html><html><head><meta charset="utf-8"><title>chat demo</title></head>
<body><iframe src="%s" width="900" height="600"></iframe><iframe src="%s" width="900" height="600"></iframe></body></html>`

// chatProbe rides along each demo page (pane A or B, from ?pane=): it posts
// what the chat panel shows, as a viewer sees it, and does what the test
// asks back the way a viewer would (typing a name, typing and sending).
const chatProbe = `(function () {
  var pane = new URLSearchParams(location.search).get('pane');
  var violations = [], uncaught = [];
  document.addEventListener('securitypolicyviolation', function (e) { violations.push(e.violatedDirective + ' ' + e.blockedURI); });
  window.addEventListener('error', function (e) { uncaught.push(String(e.message)); });
  var $ = function (id) { return document.getElementById(id); };
  function act(cmd) {
    if (cmd.name !== undefined) { $('chat-name').value = cmd.name; $('chat-name').dispatchEvent(new Event('change')); }
    if (cmd.send !== undefined) { $('chat-input').value = cmd.send; $('chat-send').click(); }
  }
  setInterval(function () {
    var panel = $('chat'); if (!panel) return;
    var msgs = Array.prototype.map.call(document.querySelectorAll('#chat-messages li[data-id]'), function (li) {
      return {id: li.dataset.id, sender: li.querySelector('.sender').textContent, content: li.querySelector('.content').textContent, mine: li.className === 'mine'};
    });
    var notices = Array.prototype.map.call(document.querySelectorAll('#chat-messages li.notice'), function (li) { return li.textContent; });
    fetch('/__report', {method: 'POST', body: JSON.stringify({
      pane: pane, state: panel.dataset.state, stateText: $('chat-state').textContent,
      error: $('chat-error').hidden ? '' : $('chat-error').textContent, name: $('chat-name').value, input: $('chat-input').value,
      messages: msgs, notices: notices, violations: violations, uncaught: uncaught
    })}).then(function (r) { return r.json(); }).then(function (cmds) { cmds.forEach(act); }, function () {});
  }, 150);
})();`

type chatPaneReport struct {
	Pane      string `json:"pane"`
	State     string `json:"state"`
	StateText string `json:"stateText"`
	Error     string `json:"error"`
	Name      string `json:"name"`
	Input     string `json:"input"`
	Messages  []struct {
		ID      string `json:"id"`
		Sender  string `json:"sender"`
		Content string `json:"content"`
		Mine    bool   `json:"mine"`
	} `json:"messages"`
	Notices    []string `json:"notices"`
	Violations []string `json:"violations"`
	Uncaught   []string `json:"uncaught"`
}

// messageID returns the id of the message with content, "" if not shown.
func (r chatPaneReport) messageID(sender, content string) string {
	for _, m := range r.Messages {
		if m.Sender == sender && m.Content == content {
			return m.ID
		}
	}
	return ""
}

func (r chatPaneReport) shows(id string) bool {
	for _, m := range r.Messages {
		if m.ID == id {
			return true
		}
	}
	return false
}

// chatDemo drives the two panes through a same-origin proxy to the server.
type chatDemo struct {
	mu      sync.Mutex
	reports map[string]chatPaneReport
	pending map[string][]map[string]string
}

func (d *chatDemo) do(pane string, cmd map[string]string) {
	d.mu.Lock()
	d.pending[pane] = append(d.pending[pane], cmd)
	d.mu.Unlock()
}

func (d *chatDemo) report(pane string) chatPaneReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reports[pane]
}

// waitPane waits until ok holds for the pane's latest report.
func (d *chatDemo) waitPane(t *testing.T, pane, what string, within time.Duration, ok func(chatPaneReport) bool, diag func() string) chatPaneReport {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := d.report(pane)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("pane %s: %s: not within %v; last report %+v\n%s", pane, what, within, r, diag())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChatDemo: two viewers open /play/<channelId>?room=<roomArn> in
// Chromium, beside the player a chat panel runs the official
// amazon-ivs-chat-messaging SDK with tokens from POST /chat-demo/token (the
// room is tagged openivs:chat-demo=true). A message sent from page A shows
// on both pages; DeleteMessage through the IVS Chat API removes it from
// both; a message the room refuses shows its error; DisconnectUser
// disconnects B and A is told. All under the page's own CSP.
func TestChatDemo(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	srv := startServer(t, serverOpts{})
	c := ivsClient(t, srv)
	chat := chatClient(srv)
	cx := ctx(t)

	ch := createChannel(t, c, &ivs.CreateChannelInput{})
	chArn := aws.ToString(ch.Channel.Arn)
	channelID := chArn[strings.LastIndex(chArn, "/")+1:]
	room, err := chat.CreateRoom(cx, &ivschat.CreateRoomInput{
		Name: aws.String("demo"), MaximumMessageLength: aws.Int32(40),
		Tags: map[string]string{"openivs:chat-demo": "true"},
	})
	must(t, err, "CreateRoom")
	roomArn := aws.ToString(room.Arn)

	// The endpoint refuses a room that is not opted in.
	closed, err := chat.CreateRoom(cx, &ivschat.CreateRoomInput{})
	must(t, err, "CreateRoom")
	resp, err := srv.client.Post(srv.Endpoint+"/chat-demo/token", "application/json",
		strings.NewReader(`{"roomArn":"`+aws.ToString(closed.Arn)+`"}`))
	must(t, err, "POST /chat-demo/token")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("token for a room without the tag: %d, want 403", resp.StatusCode)
	}

	d := &chatDemo{reports: map[string]chatPaneReport{}, pending: map[string][]map[string]string{}}
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target) // passes the /chat WebSocket upgrade through
	proxy.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Request.URL.Path, "/play/") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		// The page keeps its Content-Security-Policy: the probe is a
		// same-origin script, which it allows.
		page := strings.Replace(string(body), "<head>", `<head><script src="/__chatprobe.js"></script>`, 1)
		resp.Header.Del("Content-Length")
		resp.Body = io.NopCloser(strings.NewReader(page))
		return nil
	}
	page := func(pane string) string {
		return "/play/" + channelID + "?" + url.Values{"room": {roomArn}, "pane": {pane}}.Encode()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/__chat.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprintf(w, chatPages, page("A"), page("B"))
	})
	mux.HandleFunc("/__chatprobe.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, chatProbe)
	})
	mux.HandleFunc("/__report", func(w http.ResponseWriter, r *http.Request) {
		var rep chatPaneReport
		cmds := []map[string]string{}
		if json.NewDecoder(r.Body).Decode(&rep) == nil && rep.Pane != "" {
			d.mu.Lock()
			d.reports[rep.Pane] = rep
			cmds = append(cmds, d.pending[rep.Pane]...)
			delete(d.pending, rep.Pane)
			d.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cmds)
	})
	mux.Handle("/", proxy)
	front := httptest.NewServer(mux)
	t.Cleanup(front.Close)
	chromiumOut := launchChromium(t, chromium, front.URL+"/__chat.html")
	diag := func() string {
		return fmt.Sprintf("pane A: %+v\npane B: %+v\nchromium:\n%s", d.report("A"), d.report("B"), logTail(chromiumLog(chromiumOut()), 40))
	}

	// Both connect; B keeps the random name the endpoint gave it.
	connected := func(r chatPaneReport) bool { return r.State == "connected" }
	d.waitPane(t, "A", "connected", 30*time.Second, connected, diag)
	b := d.waitPane(t, "B", "connected", 30*time.Second, connected, diag)
	if !regexp.MustCompile(`^viewer-[a-z0-9]{4}$`).MatchString(b.Name) || b.StateText != "connected as "+b.Name {
		t.Errorf("pane B: name %q, state %q; want a random viewer-xxxx it is connected as", b.Name, b.StateText)
	}
	bob := b.Name

	// A takes the name alice (a new connection with a token for alice).
	d.do("A", map[string]string{"name": "alice"})
	d.waitPane(t, "A", "connected as alice", 20*time.Second, func(r chatPaneReport) bool {
		return r.State == "connected" && r.StateText == "connected as alice"
	}, diag)

	// A sends; both show it, A as its own.
	const hello = "hello from A"
	d.do("A", map[string]string{"send": hello})
	bRep := d.waitPane(t, "B", "shows A's message", 15*time.Second, func(r chatPaneReport) bool { return r.messageID("alice", hello) != "" }, diag)
	id := bRep.messageID("alice", hello)
	aRep := d.waitPane(t, "A", "shows its own message", 10*time.Second, func(r chatPaneReport) bool { return r.messageID("alice", hello) == id }, diag)
	for _, m := range aRep.Messages {
		if m.ID == id && !m.Mine {
			t.Errorf("pane A does not mark its own message as its own")
		}
	}
	if aRep.Input != "" || aRep.Error != "" {
		t.Errorf("pane A after sending: input %q, error %q; want both empty", aRep.Input, aRep.Error)
	}
	// B answers.
	d.do("B", map[string]string{"send": "hi alice"})
	d.waitPane(t, "A", "shows B's reply", 15*time.Second, func(r chatPaneReport) bool { return r.messageID(bob, "hi alice") != "" }, diag)

	// The app's moderator deletes A's message: it disappears from both pages.
	_, err = chat.DeleteMessage(cx, &ivschat.DeleteMessageInput{RoomIdentifier: aws.String(roomArn), Id: aws.String(id), Reason: aws.String("test")})
	must(t, err, "DeleteMessage")
	for _, pane := range []string{"A", "B"} {
		d.waitPane(t, pane, "message deleted", 15*time.Second, func(r chatPaneReport) bool { return !r.shows(id) && r.messageID(bob, "hi alice") != "" }, diag)
	}

	// A message longer than the room allows: SendMessage's error is shown,
	// and the text stays in the input.
	long := strings.Repeat("x", 41)
	d.do("B", map[string]string{"send": long})
	bRep = d.waitPane(t, "B", "shows the send error", 15*time.Second, func(r chatPaneReport) bool { return r.Error != "" }, diag)
	if !strings.HasPrefix(bRep.Error, "Not sent (400)") || bRep.Input != long {
		t.Errorf("pane B: error %q, input %q; want Not sent (400)… and the text kept", bRep.Error, bRep.Input)
	}

	// DisconnectUser: A is told, B is disconnected.
	_, err = chat.DisconnectUser(cx, &ivschat.DisconnectUserInput{RoomIdentifier: aws.String(roomArn), UserId: aws.String(bob), Reason: aws.String("bye")})
	must(t, err, "DisconnectUser")
	d.waitPane(t, "A", "told of B's disconnection", 15*time.Second, func(r chatPaneReport) bool {
		for _, n := range r.Notices {
			if n == bob+" was disconnected: bye" {
				return true
			}
		}
		return false
	}, diag)
	d.waitPane(t, "B", "disconnected", 15*time.Second, func(r chatPaneReport) bool { return r.State == "disconnected" }, diag)

	for _, pane := range []string{"A", "B"} {
		if r := d.report(pane); len(r.Violations) > 0 || len(r.Uncaught) > 0 {
			t.Errorf("pane %s: CSP violations %v, uncaught errors %v", pane, r.Violations, r.Uncaught)
		}
	}
}
