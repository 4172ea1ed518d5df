package live

import (
	"context"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/openivs/openivs/internal/events"
	"github.com/openivs/openivs/internal/hls"
	"github.com/openivs/openivs/internal/media"
	"github.com/openivs/openivs/internal/transcode"
)

// sourcePath is the URL path element of the passthrough rendition: not
// its IVS-style name, which follows the measured frame rate and must not
// move under players.
const sourcePath = "source"

// fpsProbeFrames is how many video frames measure an input's frame rate
// when its SPS does not say; fpsProbeLimit bounds the wait.
const (
	fpsProbeFrames = 8
	fpsProbeLimit  = 1500 * time.Millisecond
)

// startRenditions sets the stream's renditions up as soon as the ladder
// can be chosen, which needs the input's frame rate: at once when the SPS
// carries it, else after a few frames. The hub keeps the current GOP, so
// renditions set up late still start at the stream's first keyframe.
// Called with s.mu held.
func (s *session) startRenditions(video *media.Track) {
	v := *video
	if fps := spsFPS(v.SPS); fps > 0 {
		s.buildRenditions(v, fps)
		return
	}
	sub := s.hub.Subscribe("fps-probe")
	go func() {
		fps := measureFPS(sub, v.ID, s.endedCh)
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.ended {
			s.buildRenditions(v, fps)
		}
	}()
}

// spsFPS is the frame rate an SPS's VUI timing states, or 0.
func spsFPS(sps []byte) float64 {
	var p h264.SPS
	if len(sps) == 0 || p.Unmarshal(sps) != nil {
		return 0
	}
	if fps := p.FPS(); fps >= 1 && fps <= 240 {
		return fps
	}
	return 0
}

// measureFPS reads video DTS spacing off the hub (30 when it cannot tell).
func measureFPS(sub *media.Subscriber, videoTrack int, ended <-chan struct{}) float64 {
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), fpsProbeLimit)
	defer cancel()
	go func() {
		select {
		case <-ended:
			cancel()
		case <-ctx.Done():
		}
	}()
	var first, last time.Duration
	n := 0
	for n < fpsProbeFrames {
		f, err := sub.Next(ctx)
		if err != nil {
			break
		}
		if f.Track != videoTrack || f.Discontinuity {
			continue
		}
		if n == 0 {
			first = f.DTS
		}
		last = f.DTS
		n++
	}
	if n < 2 || last <= first {
		return 30
	}
	return min(240, max(1, float64(n-1)*float64(time.Second)/float64(last-first)))
}

// buildRenditions creates the ladder's renditions: a packager for each,
// the transcoder for the encoded ones, and the audio-only rendition that
// BASIC and STANDARD viewers may ask for. Stream Start follows when all
// are playable. Called with s.mu held.
func (s *session) buildRenditions(video media.Track, fps float64) {
	log := s.m.log.With("stream_id", s.st.StreamID)
	in := transcode.Input{Width: video.Width, Height: video.Height, FPS: fps}
	typ := s.ch.Type
	if s.m.cfg.Transcode == nil {
		typ = transcode.TypeBasic
	}
	rungs := transcode.Ladder(typ, s.ch.Preset, in)
	var tc *transcode.Transcoder
	if transcode.Transcodes(typ) {
		var err error
		tc, err = transcode.New(transcode.Config{
			Source: s.hub, Rungs: rungs, Input: in, Logger: log,
			FFmpeg: s.m.cfg.Transcode.FFmpeg, X264Preset: s.m.cfg.Transcode.X264Preset,
		})
		if err != nil {
			log.Error("transcode: cannot transcode; serving the source only", "err", err)
			rungs, tc = transcode.Ladder(transcode.TypeBasic, "", in), nil
		}
	}
	opts := hls.Options{Container: s.ch.ContainerFormat, LowLatency: s.ch.LatencyMode != "NORMAL", Logger: s.m.log}
	var audio *media.Track
	for i := range s.tracks {
		if s.tracks[i].Kind == media.Audio {
			audio = &s.tracks[i]
			break
		}
	}
	var variants []hls.Variant
	var hubs []*media.Hub
	haveAudioOnly := false
	for i, r := range rungs {
		hub := s.hub
		v := hls.Variant{Name: r.Name, Path: r.Name, Width: r.Width, Height: r.Height, AudioOnly: r.AudioOnly,
			Bandwidth: nominalBandwidth(r), FrameRate: r.FPS}
		if r.Source {
			v.Source, v.Path = true, sourcePath
		} else if hub = tc.Hub(i); hub == nil {
			continue // audio-only rung of a stream without audio
		}
		haveAudioOnly = haveAudioOnly || r.AudioOnly
		variants = append(variants, v)
		hubs = append(hubs, hub)
	}
	// Until measured, the passthrough is advertised above the highest
	// encoded rung (it is above 720p), so players order and pick it right.
	for i := range variants {
		if variants[i].Source {
			for _, o := range variants {
				variants[i].Bandwidth = max(variants[i].Bandwidth, o.Bandwidth*5/4)
			}
		}
	}
	if !haveAudioOnly && audio != nil {
		// BASIC and STANDARD: the source audio alone, on request.
		variants = append(variants, hls.Variant{
			Name: transcode.AudioOnlyName, Path: transcode.AudioOnlyName, AudioOnly: true, OnRequest: true,
			Bandwidth: nominalBandwidth(transcode.Rung{AudioOnly: true}),
		})
		hubs = append(hubs, audioOnlyHub(s.hub, *audio, s.metaTrack))
	}
	perVariant, recTracks := s.startRecording(variants, opts)
	for i := range variants {
		variants[i].Packager = hls.NewPackager(hubs[i], perVariant[i])
	}
	for i, v := range variants {
		var reports []hls.RenditionReport
		for j, o := range variants {
			if j != i {
				reports = append(reports, hls.RenditionReport{URI: "../" + o.Path + "/" + hls.PlaylistName, Packager: o.Packager})
			}
		}
		v.Packager.SetRenditionReports(reports)
		p, rec := v.Packager, recTracks[i]
		go func() {
			// Run returns once the hub closes at the end of the session.
			if err := p.Run(context.Background()); err != nil {
				log.Error("packager stopped", "rendition", v.Path, "err", err)
			}
			if rec != nil {
				rec.Done() // the packager flushed its last segment
			}
		}()
	}
	s.renditions, s.transcoder = variants, tc
	if tc != nil {
		release := s.releaseSlot
		s.m.wg.Add(1) // Close waits for ffmpeg to be gone
		go func() {
			defer s.m.wg.Done()
			tc.Run(context.Background())
			if release != nil {
				release()
			}
		}()
	} else if s.releaseSlot != nil {
		s.releaseSlot()
	}
	go s.awaitPlayable(variants)
}

// awaitPlayable reports Stream Start once every rendition is playable
// (those listed on request only are not waited for).
func (s *session) awaitPlayable(variants []hls.Variant) {
	for _, v := range variants {
		if v.OnRequest {
			continue
		}
		select {
		case <-v.Packager.Ready():
		case <-s.endedCh:
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.streaming {
		return
	}
	s.streaming = true
	now := time.Now()
	// Stream start latency: the first video frame (a keyframe; packagers
	// skip anything before one) reaching ingest → every rendition playable.
	s.m.log.Info("stream playable", "stream_id", s.st.StreamID, "renditions", len(variants),
		"after_first_frame", now.Sub(s.firstVideoWall).Round(time.Millisecond))
	s.event(events.StreamStateChange, "Stream Start", "", now)
	s.save()
}

// nominalBandwidth is what the multivariant playlist advertises for a
// rendition before its packager has measured it: the ladder's bitrates
// plus MPEG-TS overhead; 0 (the packager's default) for the passthrough.
func nominalBandwidth(r transcode.Rung) int {
	const sourceAudioKbps = 128 // typical; measured once segments exist
	if r.Source {
		return 0
	}
	audio := r.AudioKbps
	if audio == 0 {
		audio = sourceAudioKbps
	}
	return (r.VideoKbps + audio) * 1000 * 11 / 10
}

// audioOnlyHub carries the source's audio alone (and its timed
// metadata), for the audio-only rendition of channels that do not
// transcode audio.
func audioOnlyHub(src *media.Hub, audio media.Track, metaTrack int) *media.Hub {
	srcID := audio.ID
	audio.ID = 0
	tracks := []media.Track{audio}
	if metaTrack >= 0 {
		tracks = append(tracks, media.Track{ID: 1, Kind: media.Data, Codec: media.CodecID3})
	}
	h := media.NewHub(tracks, media.HubOptions{})
	sub := src.Subscribe("audio-only")
	go func() {
		defer h.Close()
		defer sub.Close()
		for {
			f, err := sub.Next(context.Background())
			if err != nil {
				return // the source ended
			}
			g := *f
			switch f.Track {
			case srcID:
				g.Track = 0
			case metaTrack: // -1 when there is none: never a frame's track
				g.Track = 1
			default:
				continue
			}
			h.Write(&g)
		}
	}()
	return h
}
