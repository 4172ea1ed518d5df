package live

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/media"
)

// BenchmarkPutMetadataThroughput: IVS allows 155 PutMetadata calls per
// second per account (5 per channel). 31 FRAGMENTED_MP4 LOW-latency
// channels stream 30 fps video in real time while, in the "155_per_s" run,
// PutMetadata is called 155 times a second spread over them (1 KB
// payloads, the limit). A viewer of one channel follows the live edge with
// LL-HLS blocking playlist reloads; part lateness is when the reload
// answered minus when the part ended (its segment's program date time plus
// the durations of its parts, i.e. the ingest time of the frame that
// closes it). The target: metadata delays parts by at most 10 ms (compare
// the p99 of the two runs). Each run streams for 10 s (-benchtime=1x).
func BenchmarkPutMetadataThroughput(b *testing.B) {
	for _, rate := range []int{0, 155} {
		b.Run(fmt.Sprintf("%d_per_s", rate), func(b *testing.B) {
			for b.Loop() {
				late, calls := metadataLoadRun(b, rate, 10*time.Second)
				slices.Sort(late)
				pct := func(p float64) float64 {
					return float64(late[int(p*float64(len(late)-1))].Microseconds()) / 1000
				}
				b.ReportMetric(pct(0.5), "p50-part-late-ms")
				b.ReportMetric(pct(0.99), "p99-part-late-ms")
				b.ReportMetric(pct(1), "max-part-late-ms")
				b.ReportMetric(float64(len(late)), "parts")
				b.ReportMetric(calls, "calls/s")
			}
		})
	}
}

// metadataLoadRun streams 31 channels for d with rate PutMetadata calls a
// second across them and returns the lateness of the parts one viewer saw
// and the call rate achieved.
func metadataLoadRun(b *testing.B, rate int, d time.Duration) ([]time.Duration, float64) {
	const channels = 31
	f := newFixture(b, Config{}, ivs.Quotas{})
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Second)
	defer cancel()
	var arns []string
	var streams []interface {
		WriteFrame(*media.Frame) error
	}
	for range channels {
		arn, key, err := f.svc.CreateChannelIn(ctx, "123456789012", "", "BASIC", hls.ContainerFMP4, false)
		if err != nil {
			b.Fatal(err)
		}
		arns = append(arns, arn)
		streams = append(streams, f.goLive(b, key))
	}

	// Real-time 30 fps video on every channel, 1 s GOP, ~1 Mbit/s.
	start := time.Now()
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				ts := time.Duration(i) * time.Second / 30
				if ts > d {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(start.Add(ts))):
				}
				nalu := make([]byte, 4000)
				nalu[0] = 0x41
				if i%30 == 0 {
					nalu[0] = 0x65
				}
				if st.WriteFrame(&media.Frame{Track: 0, PTS: ts, DTS: ts, Wall: time.Now(), Key: i%30 == 0, NALUs: [][]byte{nalu}}) != nil {
					return
				}
			}
		}()
	}

	// The load: rate calls a second, round robin over the channels, each
	// call on its own goroutine as concurrent API requests would be.
	var calls int
	if rate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := strings.Repeat("x", ivs.MaxMetadataBytes)
			time.Sleep(time.Second) // every channel has video by now
			began := time.Now()
			for i := 0; ; i++ {
				at := began.Add(time.Duration(i) * time.Second / time.Duration(rate))
				if at.Sub(start) > d {
					return
				}
				time.Sleep(time.Until(at))
				calls++
				go func() {
					if err := f.mgr.PutMetadata(ctx, arns[i%channels], payload); err != nil && ctx.Err() == nil {
						b.Errorf("PutMetadata: %v", err)
					}
				}()
			}
		}()
	}

	// The viewer of channel 0.
	var late []time.Duration
	var p *hls.Packager
	for p == nil {
		if vs, ok := f.mgr.Playback(arns[0]); ok {
			p = vs[0].Packager
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	msn, part := uint64(0), -1
	for time.Since(start) < d-500*time.Millisecond {
		url := "/playlist.m3u8"
		blocking := msn > 0 || part >= 0
		if blocking {
			url += fmt.Sprintf("?_HLS_msn=%d&_HLS_part=%d", msn, part+1)
		}
		rec := httptest.NewRecorder()
		p.ServeMedia(rec, httptest.NewRequest("GET", url, nil).WithContext(ctx), "playlist.m3u8")
		answered := time.Now()
		lm, lp, end, complete, ok := lastPart(rec.Body.String())
		if !ok {
			b.Fatalf("no part in the playlist:\n%s", rec.Body.String())
		}
		if blocking && (lm != msn || lp != part) {
			late = append(late, answered.Sub(end))
		}
		msn, part = lm, lp
		if complete {
			// The segment is done; its next part is the next segment's first.
			msn, part = lm+1, -1
		}
	}
	// The load was real: the last complete segment carries its channel's
	// share of the calls as emsg boxes.
	if rate > 0 {
		rec := httptest.NewRecorder()
		p.ServeMedia(rec, httptest.NewRequest("GET", "/x", nil), fmt.Sprintf("seg%d.m4s", msn-1))
		if n := bytes.Count(rec.Body.Bytes(), []byte("emsg")); n < rate/channels/2 {
			b.Errorf("segment %d carries %d emsg boxes, want about %d", msn-1, n, rate/channels)
		}
	}
	cancel()
	wg.Wait()
	return late, float64(calls) / (d - time.Second).Seconds()
}

// lastPart finds the newest part of a media playlist: its segment's MSN,
// its index, when it ended (program date time + part durations) and
// whether its segment is complete.
func lastPart(playlist string) (msn uint64, part int, end time.Time, complete, ok bool) {
	var seq uint64
	var pdt time.Time
	var elapsed time.Duration
	segs := 0 // segments (complete) seen since the media sequence
	part = -1
	sc := bufio.NewScanner(strings.NewReader(playlist))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			pdt, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"))
			elapsed, part = 0, -1
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			attrs := strings.TrimPrefix(line, "#EXT-X-PART:")
			for _, kv := range strings.Split(attrs, ",") {
				if v, found := strings.CutPrefix(kv, "DURATION="); found {
					dur, _ := strconv.ParseFloat(v, 64)
					elapsed += time.Duration(dur * float64(time.Second))
				}
			}
			part++
			msn, end, ok, complete = seq+uint64(segs), pdt.Add(elapsed), true, false
		case line != "" && !strings.HasPrefix(line, "#"):
			segs++ // a complete segment's URI: parts after it belong to the next
			complete = true
		}
	}
	return msn, part, end, complete, ok
}
