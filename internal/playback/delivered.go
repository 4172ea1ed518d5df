package playback

import "time"

// Delivered time (IVS's LiveDeliveredTime, viewer-seconds of live video
// served): a viewer session earns the time between two consecutive
// playlist fetches, when they are at most ViewerWindow apart. An LL-HLS
// player reloads every part, so each second it watches adds one second;
// a plain-HLS player reloading every target duration adds it in steps of
// that duration; a session that stopped earns nothing past its last
// fetch, and one back after a pause longer than ViewerWindow earns
// nothing for the pause.

// deliveredBetween is what a session earns at a fetch at now after one at
// last.
func deliveredBetween(last, now time.Time) time.Duration {
	if d := now.Sub(last); d > 0 && d <= ViewerWindow {
		return d
	}
	return 0
}

// DrainDelivered calls fn with each channel's viewer time earned since
// the previous drain, by viewer country ("" unknown), and resets it. The
// metrics call it every second.
func (v *Viewers) DrainDelivered(fn func(channelARN, country string, d time.Duration)) {
	v.channels.Range(func(k, c any) bool {
		cv := c.(*channelViewers)
		cv.mu.Lock()
		delivered := cv.delivered
		cv.delivered = nil
		cv.mu.Unlock()
		for country, d := range delivered {
			fn(k.(string), country, d)
		}
		return true
	})
}
