package messaging

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/openivs/openivs/internal/chat"
)

// BenchmarkFanout: one SEND_MESSAGE from one client, received by all N
// clients of the room (rate limits lifted). ns/op is one message reaching
// everyone; ns/delivery divides that by N.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h := newHarness(b, func(c *Config) { c.ConnRequestsPerSecond = 1 << 30 })
			h.ctl.setRoom(chat.Room{ARN: testRoom, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 1 << 30})
			got := make(chan struct{}, n)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var sender *websocket.Conn
			for i := range n {
				token, _, _ := h.ctl.issue(tokenSpec{UserID: fmt.Sprint("user", i), Capabilities: []string{chat.CapSendMessage}})
				ws, _, err := h.dial(ctx, token)
				if err != nil {
					b.Fatal(err)
				}
				defer ws.CloseNow()
				if i == 0 {
					sender = ws
				}
				go func() {
					for {
						if _, _, err := ws.Read(ctx); err != nil {
							return
						}
						got <- struct{}{}
					}
				}()
			}
			frame := []byte(`{"Action":"SEND_MESSAGE","RequestId":"5b4c0b8e-6a9c-4c1e-9a52-0b0f4f2b7e11","Content":"a chat message of ordinary length, about sixty characters","Attributes":{"color":"red"}}`)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := sender.Write(ctx, websocket.MessageText, frame); err != nil {
					b.Fatal(err)
				}
				for range n {
					<-got
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// BenchmarkIdleConnections opens 1000 idle connections from bare TCP
// clients (whose own memory is next to nothing) and reports the heap and
// stack the server holds for each.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 1000
	var heap, stack float64
	for range b.N {
		h := newHarness(b)
		before := memInUse()
		conns := make([]net.Conn, 0, n)
		for i := range n {
			token, _, _ := h.ctl.issue(tokenSpec{UserID: fmt.Sprint("user", i)})
			conns = append(conns, rawDial(b, h, token))
		}
		deadline := time.Now().Add(10 * time.Second)
		for h.conns(testRoom) != n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		// The fake control plane keeps its spent tokens out of the count:
		// they are deleted on redeem.
		after := memInUse()
		heap = float64(after.HeapInuse-before.HeapInuse) / n
		stack = float64(after.StackInuse-before.StackInuse) / n
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(heap+stack, "B/idle-conn")
	b.ReportMetric(heap, "heap-B/idle-conn")
	b.ReportMetric(stack, "stack-B/idle-conn")
}

func memInUse() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
