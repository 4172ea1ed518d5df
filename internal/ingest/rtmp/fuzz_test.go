package rtmp

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/openivs/openivs/internal/ingest"
)

func TestParseTarget(t *testing.T) {
	cases := []struct {
		url     string
		key     string
		prio    int
		hasPrio bool
		err     error
	}{
		{url: "rtmp://h/app/sk_us-west-2_abc", key: "sk_us-west-2_abc"},
		{url: "rtmps://h:443/app/sk_x?priority=5", key: "sk_x", prio: 5, hasPrio: true},
		{url: "rtmp://h/app/sk_x?priority=0", key: "sk_x", prio: 0, hasPrio: true},
		{url: "rtmp://h/app/sk_x?foo=1&priority=12&bar", key: "sk_x", prio: 12, hasPrio: true},
		{url: "rtmp://h/app//sk_x", key: "sk_x"},
		{url: "rtmp://h/app/sk_x?priority=abc", err: errBadPriority},
		{url: "rtmp://h/app/sk_x?priority=-1", err: errBadPriority},
		{url: "rtmp://h/app/sk_x?priority=+1", err: errBadPriority},
		{url: "rtmp://h/app/sk_x?priority=", err: errBadPriority},
		{url: "rtmp://h/app/sk_x?priority=1&priority=2", err: errBadPriority},
		{url: "rtmp://h/app/sk_x?priority=99999999999999999999999", err: errBadPriority},
		{url: "rtmp://h/live/sk_x", err: errWrongApp},
		{url: "rtmp://h/App/sk_x", err: errWrongApp},
		{url: "rtmp://h/sk_x", err: errWrongApp},
		{url: "rtmp://h/app/", err: errNoStreamKey},
		{url: "rtmp://h/app", err: errNoStreamKey},
		{url: "rtmp://h/app/inst/sk_x", err: errNoStreamKey},
		{url: "rtmp://h/app/" + strings.Repeat("k", maxStreamKeyLen+1), err: errNoStreamKey},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseTarget(u)
		if err != tc.err || got.StreamKey != tc.key || got.Priority != tc.prio || got.HasPriority != tc.hasPrio {
			t.Errorf("parseTarget(%q) = %+v, %v; want key %q prio %d/%v err %v",
				tc.url, got, err, tc.key, tc.prio, tc.hasPrio, tc.err)
		}
	}
}

// FuzzParseTarget feeds what an encoder controls (tcUrl and publish name,
// joined the way gortmplib does) through the stream-name parser.
func FuzzParseTarget(f *testing.F) {
	for _, s := range [][2]string{
		{"rtmp://h/app", "sk_us-west-2_abcd1234efgh5678ijkl"},
		{"rtmp://h/app", "sk_x?priority=5"},
		{"rtmps://h:443/app", "sk_x?priority=abc"},
		{"rtmp://h/live", "k"},
		{"rtmp://h/app/", "/k?priority=1&priority=2"},
		{"rtmp://h", "?priority=3"},
		{"rtmp://h/app", "k%zz"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tcURL, name string) {
		raw := tcURL
		if name != "" && name[0] != '?' {
			raw += "/" + name
		}
		u, err := url.Parse(raw)
		if err != nil {
			return // gortmplib refuses the connection before us
		}
		tgt, err := parseTarget(u)
		if err != nil {
			if tgt != (target{}) {
				t.Fatalf("error %v with a non-empty target %+v", err, tgt)
			}
			return
		}
		if tgt.StreamKey == "" || strings.Contains(tgt.StreamKey, "/") || len(tgt.StreamKey) > maxStreamKeyLen {
			t.Fatalf("bad key accepted: %q", tgt.StreamKey)
		}
		if tgt.Priority < 0 || (!tgt.HasPriority && tgt.Priority != 0) {
			t.Fatalf("bad priority: %+v", tgt)
		}
	})
}

func TestEncoderFromData(t *testing.T) {
	meta := amf0.ECMAArray{{Key: "duration", Value: float64(0)}, {Key: "encoder", Value: "obs-output module (libobs version 30.1.2)"}}
	cases := []struct {
		d    amf0.Data
		want string
		ok   bool
	}{
		{amf0.Data{"@setDataFrame", "onMetaData", meta}, "obs-output module (libobs version 30.1.2)", true},
		{amf0.Data{"onMetaData", amf0.Object(meta)}, "obs-output module (libobs version 30.1.2)", true},
		{amf0.Data{"onMetaData", amf0.Object{{Key: "encoder", Value: float64(3)}}}, "", true},
		{amf0.Data{"onMetaData", amf0.Object{{Key: "encoder", Value: "a\x00b\nc\u202ed\xff"}}}, "abcd", true},
		{amf0.Data{"onMetaData", amf0.Object{{Key: "encoder", Value: strings.Repeat("é", 200)}}}, strings.Repeat("é", maxEncoderLen/2), true},
		{amf0.Data{"onMetaData", "x"}, "", true},
		{amf0.Data{"onCuePoint", meta}, "", false},
		{amf0.Data{"@setDataFrame"}, "", false},
		{amf0.Data{}, "", false},
	}
	for i, tc := range cases {
		got, ok := encoderFromData(tc.d)
		if got != tc.want || ok != tc.ok {
			t.Errorf("case %d: got %q %v, want %q %v", i, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzEncoderFromAMF0 runs AMF0 bytes through gortmplib's decoder and this
// package's onMetaData reading.
func FuzzEncoderFromAMF0(f *testing.F) {
	for _, d := range []amf0.Data{
		{"@setDataFrame", "onMetaData", amf0.ECMAArray{{Key: "encoder", Value: "Lavf59.27.100"}, {Key: "width", Value: float64(640)}}},
		{"onMetaData", amf0.Object{{Key: "encoder", Value: "x\x00y"}}},
		{"onMetaData", amf0.StrictArray{"a", float64(1)}},
		{"onMetaData", nil},
	} {
		b, err := d.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x02, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := amf0.Unmarshal(b)
		if err != nil {
			return
		}
		enc, _ := encoderFromData(d)
		if len(enc) > maxEncoderLen || !utf8.ValidString(enc) || strings.ContainsAny(enc, "\x00\n\r\x1b") {
			t.Fatalf("unsafe encoder name %q", enc)
		}
	})
}

// FuzzConnection serves one connection over net.Pipe after a valid RTMP
// handshake. The first input byte picks what comes before the fuzzed bytes:
// nothing (even) or a valid connect/createStream/publish (odd), so both the
// command phase and the media phase (track discovery, codecs, frames) are
// reached. The handler must not panic and must return once the peer is gone.
func FuzzConnection(f *testing.F) {
	f.Add([]byte{0})
	f.Add(append([]byte{0}, connectPrelude(f)...))
	f.Add([]byte{1})
	stream := mediaStream(f)
	f.Add(append([]byte{1}, stream...))
	f.Add(append([]byte{1}, stream[:len(stream)/3]...))
	corrupt := bytes.Clone(stream)
	for i := 40; i < len(corrupt); i += 97 {
		corrupt[i] ^= 0x5a
	}
	f.Add(append([]byte{1}, corrupt...))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		serveInput(t, data)
	})
}

// TestConnectionHarnessReachesMedia proves the fuzz harness gets past
// discovery into Start and frames with its media seed, and that a corrupted
// stream only ends its own connection.
func TestConnectionHarnessReachesMedia(t *testing.T) {
	pub := serveInput(t, append([]byte{1}, mediaStream(t)...))
	_, starts, _ := pub.snapshot()
	if len(starts) != 1 || len(starts[0].snapshot()) < 100 {
		t.Fatalf("media seed did not reach Start and frames: %d starts", len(starts))
	}
	if tr := starts[0].tracks; len(tr) != 2 || tr[0].Width != 1920 || tr[1].SampleRate != 48000 {
		t.Errorf("tracks = %+v", tr)
	}
	if r := starts[0].req; r.StreamKey != "sk_fuzz" || r.Priority != 1 || !r.HasPriority {
		t.Errorf("request = %+v", r)
	}
}

// serveInput runs serveConn over net.Pipe against a client that completes
// the handshake and then writes data[1:] (after a connect/publish prelude
// when data[0] is odd), then hangs up.
func serveInput(t *testing.T, data []byte) *testPublisher {
	t.Helper()
	pub := newTestPublisher()
	pub.admitAll = true
	srv := NewServer(Config{Publisher: pub, HandshakeTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.serveConn(ctx, server, ingest.RTMP)
	}()

	if _, _, err := handshake.DoClient(client, false, false); err == nil {
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(io.Discard, client)
		}()
		_ = client.SetWriteDeadline(time.Now().Add(3 * time.Second))
		if data[0]%2 == 1 {
			_, _ = client.Write(connectPrelude(t))
		}
		_, _ = client.Write(data[1:])
		client.Close()
		<-drained
	} else {
		client.Close()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection handler did not return after the peer closed")
	}
	_, starts, _ := pub.snapshot()
	for _, s := range starts {
		select {
		case <-s.closed:
		default:
			t.Fatal("a started stream was not closed")
		}
	}
	return pub
}

// connectPrelude is what a publishing client sends after the handshake:
// connect, createStream and publish of app/<key>.
func connectPrelude(tb testing.TB) []byte {
	var buf bytes.Buffer
	w := message.NewWriter(&buf, bytecounter.NewWriter(&buf), false)
	for _, m := range []message.Message{
		&message.CommandAMF0{ChunkStreamID: 3, Name: "connect", CommandID: 1, Arguments: []any{
			amf0.Object{
				{Key: "app", Value: "app"},
				{Key: "type", Value: "nonprivate"},
				{Key: "flashVer", Value: "FMLE/3.0"},
				{Key: "tcUrl", Value: "rtmp://127.0.0.1/app"},
			},
		}},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "createStream", CommandID: 2, Arguments: []any{nil}},
		&message.CommandAMF0{ChunkStreamID: 3, MessageStreamID: 1, Name: "publish", CommandID: 3,
			Arguments: []any{nil, "sk_fuzz?priority=1", "live"}},
	} {
		if err := w.Write(m); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// msgWriterConn lets gortmplib's Writer produce a media byte stream.
type msgWriterConn struct{ w *message.Writer }

func (c *msgWriterConn) BytesReceived() uint64           { return 0 }
func (c *msgWriterConn) BytesSent() uint64               { return 0 }
func (c *msgWriterConn) Read() (message.Message, error)  { return nil, io.EOF }
func (c *msgWriterConn) Write(msg message.Message) error { return c.w.Write(msg) }

// mediaStream is 3 s of H.264 + AAC as gortmplib's Writer would publish it,
// chunked on chunk streams the prelude does not use.
func mediaStream(tb testing.TB) []byte {
	var buf bytes.Buffer
	conn := &msgWriterConn{w: message.NewWriter(&buf, bytecounter.NewWriter(&buf), false)}
	vt, at := h264AACTracks()
	w := &gortmplib.Writer{Conn: conn, Tracks: []*gortmplib.Track{vt, at}}
	if err := w.Initialize(); err != nil {
		tb.Fatal(err)
	}
	for i := range 75 {
		ts := time.Duration(i) * 40 * time.Millisecond
		nalu := []byte{0x41, 0x9a, byte(i)}
		if i%25 == 0 {
			nalu = []byte{0x65, 0x88, 0x84, byte(i)}
		}
		if err := w.WriteH264(vt, ts, ts, [][]byte{nalu}); err != nil {
			tb.Fatal(err)
		}
		if err := w.WriteMPEG4Audio(at, ts, []byte{0x21, 0x10, byte(i)}); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// h264AACTracks are the gortmplib tracks of a 1080p H.264 + AAC-LC 48 kHz
// stereo stream, for clients that publish synthetic media.
func h264AACTracks() (video, audio *gortmplib.Track) {
	video = &gortmplib.Track{Codec: &codecs.H264{
		SPS: []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03,
			0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20},
		PPS: []byte{0x08, 0x06, 0x07, 0x08},
	}}
	audio = &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: &mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2, ChannelCount: 2,
	}}}
	return video, audio
}
