package record

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/blob"
)

// gatedStore holds the first Put until released and keeps what was put.
type gatedStore struct {
	blob.Store
	mu      sync.Mutex
	objects map[string]string
	gate    chan struct{}
	entered chan struct{}
	calls   int
}

func (g *gatedStore) Put(_ context.Context, _, key string, body io.ReadSeeker, _ blob.Object) error {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.gate
	}
	raw, _ := io.ReadAll(body)
	g.mu.Lock()
	g.objects[key] = string(raw)
	g.mu.Unlock()
	return nil
}

// A newer playlist queued while the older one is being uploaded must be
// uploaded after it, not dropped with it (a recording once ended with its
// playlist missing EXT-X-ENDLIST this way).
func TestUploaderKeepsNewerVersionOfInFlightKey(t *testing.T) {
	st := &gatedStore{objects: map[string]string{}, gate: make(chan struct{}), entered: make(chan struct{})}
	u := newUploader(st, "b", slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go u.run(ctx)
	u.add(upload{key: "p.m3u8", data: []byte("old")})
	<-st.entered
	u.add(upload{key: "p.m3u8", data: []byte("new")})
	u.add(upload{key: "q.m3u8", data: []byte("q1")})
	u.add(upload{key: "q.m3u8", data: []byte("q2")}) // replaces the queued q1
	close(st.gate)
	select {
	case <-u.drained():
	case <-time.After(5 * time.Second):
		t.Fatal("uploads did not drain")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.objects["p.m3u8"] != "new" || st.objects["q.m3u8"] != "q2" || st.calls != 3 {
		t.Fatalf("objects %v after %d puts", st.objects, st.calls)
	}
}
