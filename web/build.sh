#!/usr/bin/env bash
# Builds web/dist/openivs-player.min.js from web/player (TypeScript on hls.js).
# Usage: web/build.sh [OUTFILE]   (default: web/dist/openivs-player.min.js)
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-dist/openivs-player.min.js}
if [[ ! -d node_modules ]]; then
	npm ci --no-audit --no-fund --loglevel=error >&2
fi
./node_modules/.bin/tsc -p player
# Deterministic output (no timestamps, no absolute paths) so check-bundle.sh can diff it.
./node_modules/.bin/esbuild player/src/index.ts \
	--bundle --minify --format=iife --global-name=IVSPlayer \
	--target=es2019 --platform=browser --legal-comments=eof \
	--log-level=warning --outfile="$out"
