#!/usr/bin/env bash
# Installs what the tests need when it is missing: ffmpeg and Chromium (apt),
# and the npm packages of web/ and test/chatsdk/ (npm ci); with
# --runtime only ffmpeg, which the server needs to transcode.
# Idempotent and silent when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }

have_chromium() {
	have chromium || have chromium-browser || have google-chrome || have google-chrome-stable
}

# --runtime: only what `openivs serve` needs (ffmpeg transcodes STANDARD and
# ADVANCED channels); without it, also what the tests need.
runtime=false
[[ ${1:-} == --runtime ]] && runtime=true

missing=()
have ffmpeg || missing+=(ffmpeg)
$runtime || have_chromium || missing+=(chromium)

if ((${#missing[@]} > 0)); then
	sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		if have sudo; then
			sudo=(sudo -n)
		else
			echo "deps: missing ${missing[*]} and not root (no sudo): install them and rerun" >&2
			exit 1
		fi
	fi
	if ! have apt-get; then
		echo "deps: missing ${missing[*]} and no apt-get: install them and rerun" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}" >&2
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	if ! { "${sudo[@]}" apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "deps: apt-get install ${missing[*]} failed" >&2
		exit 1
	fi
fi

$runtime && exit 0

# npm ci only when the lock file changed since the last install: web/ (the
# player and chat demo bundles) and test/chatsdk/ (the official chat SDK in
# Node), here rather than in the tests, which run in parallel.
for dir in web test/chatsdk; do
	if [[ -f $dir/package-lock.json ]]; then
		if [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
			echo "deps: npm ci in $dir/" >&2
			(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
		fi
	fi
done
