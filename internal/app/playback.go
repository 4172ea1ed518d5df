package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/openivs/openivs/internal/clientip"
	"github.com/openivs/openivs/internal/geoip"
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/playback"
	"github.com/openivs/openivs/internal/store"
)

// buildPlayback assembles the viewer-facing handler: the control plane's
// rules (authorisation, keys, restriction policies, revocations), the
// shared viewer-session key, GeoIP and trusted proxies.
func (a *App) buildPlayback(ctx context.Context, svc *ivs.Service) (*playback.Handler, error) {
	key, err := svc.PlaybackSessionKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("playback session key: %w", err)
	}
	proxies, err := clientip.ParseTrusted(a.cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	h := &playback.Handler{
		Region: a.cfg.Region, Streams: a.live, Viewers: a.viewers,
		ViewerLimit: a.quotas().ConcurrentViews, OnViewerLimit: a.viewerBreaches.publish(a),
		Rules: rulesSource{svc}, SessionKey: key, ClientIP: proxies,
		SingleUse: playback.SingleUseFunc(svc.UseSingleUseToken), Logger: a.log.With("component", "playback"),
	}
	if a.cfg.GeoIPDB != "" {
		db, err := geoip.Open(a.cfg.GeoIPDB)
		if err != nil {
			return nil, fmt.Errorf("--geoip-db: %w", err)
		}
		a.geoip = db
		h.GeoIP = db
		a.log.Info("GeoIP database loaded", "file", a.cfg.GeoIPDB)
	}
	svc.SetPlaybackRulesListener(func() { h.Invalidate("") })
	return h, nil
}

// rulesSource adapts the IVS service to what playback asks for.
type rulesSource struct{ svc *ivs.Service }

func (s rulesSource) PlaybackRules(ctx context.Context, channelARN string) (*playback.Rules, error) {
	acc, err := s.svc.PlaybackAccess(ctx, channelARN)
	if errors.Is(err, store.ErrNotFound) {
		return nil, playback.ErrNoChannel
	} else if err != nil {
		return nil, err
	}
	r := &playback.Rules{Authorized: acc.Authorized, Revoked: acc.Revoked}
	for _, k := range acc.Keys {
		r.Keys = append(r.Keys, playback.PublicKey{Key: k.Key, DER: string(k.DER)})
	}
	if p := acc.Policy; p != nil {
		r.Policy = &playback.Policy{AllowedOrigins: p.AllowedOrigins, StrictOrigin: p.EnableStrictOriginEnforcement,
			AllowedCountries: p.AllowedCountries}
	}
	return r, nil
}
