package app

import (
	"github.com/openivs/openivs/internal/ivs"
	"github.com/openivs/openivs/internal/live"
)

// Live is the node's live-stream manager (nil before Start). The ingest
// benchmark reads hubs through it to subscribe in-process consumers.
func (a *App) Live() *live.Manager { return a.live }

// IVS is the node's IVS control plane (nil before Start). The ingest
// benchmark creates its channels through it instead of signed API calls.
func (a *App) IVS() *ivs.Service { return a.ivs }
