#!/usr/bin/env bash
# Builds the browser bundles into web/dist (or OUTDIR):
#   openivs-player.min.js     the player SDK, from web/player (TypeScript on hls.js)
#   openivs-chat-demo.min.js  the demo page's chat panel, from web/chat-demo (official amazon-ivs-chat-messaging)
# Usage: web/build.sh [OUTDIR]   (default: web/dist)
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-dist}
if [[ ! -d node_modules ]]; then
	npm ci --no-audit --no-fund --loglevel=error >&2
fi
./node_modules/.bin/tsc -p player
./node_modules/.bin/tsc -p chat-demo
# Deterministic output (no timestamps, no absolute paths) so check-bundle.sh can diff it.
common=(--bundle --minify --format=iife --target=es2019 --platform=browser --legal-comments=eof --log-level=warning)
./node_modules/.bin/esbuild player/src/index.ts "${common[@]}" --global-name=IVSPlayer \
	--outfile="$out/openivs-player.min.js"
./node_modules/.bin/esbuild chat-demo/src/index.ts "${common[@]}" \
	--outfile="$out/openivs-chat-demo.min.js"
