#!/usr/bin/env bash
# Fails when a committed bundle in web/dist is not what web/build.sh produces.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./build.sh "$tmp"
stale=0
for f in openivs-player.min.js openivs-chat-demo.min.js; do
	if ! cmp -s "$tmp/$f" "dist/$f"; then
		echo "web/dist/$f is stale: run web/build.sh and commit the result" >&2
		stale=1
	fi
done
[[ $stale == 0 ]] || exit 1
echo "web/dist bundles are up to date"
