// Package web holds the browser assets built from web/player and
// web/chat-demo and the demo pages, embedded so the openivs binary serves
// them without a build step.
// Rebuild dist/ with web/build.sh; web/check-bundle.sh checks it is fresh.
package web

import "embed"

// FS holds dist/openivs-player.min.js, dist/openivs-chat-demo.min.js and
// demo/ (play.html, play.js, play.css; chat.html and chat.css, the chat panel).
//
//go:embed dist/openivs-player.min.js dist/openivs-chat-demo.min.js demo
var FS embed.FS
