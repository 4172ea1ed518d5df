#!/usr/bin/env bash
# Fails when the committed web/dist/openivs-player.min.js is not what web/build.sh produces.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./build.sh "$tmp/openivs-player.min.js"
if ! cmp -s "$tmp/openivs-player.min.js" dist/openivs-player.min.js; then
	echo "web/dist/openivs-player.min.js is stale: run web/build.sh and commit the result" >&2
	exit 1
fi
echo "web/dist/openivs-player.min.js is up to date"
