package app

import "github.com/openivs/openivs/internal/awsapi"

// onCall sees every finished, authenticated API call and hands it to the
// hooks that want it (audit log, API metrics). Hooks run on the request's
// goroutine after the response is written, so they must be quick.
func (a *App) onCall(rec awsapi.CallRecord) {
	for _, hook := range a.callHooks {
		hook(rec)
	}
}
