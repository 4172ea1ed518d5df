#!/usr/bin/env bash
# Runs every Fuzz target in the module for FUZZTIME (default 10s) each;
# `go test -fuzz` accepts only one target per run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}

found=0
while read -r pkg; do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	# Only packages whose tests define a Fuzz function.
	grep -lqs '^func Fuzz' "$dir"/*_test.go || continue
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		found=$((found + 1))
		echo "fuzz: $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done < <(go list ./...)
echo "fuzz: ran $found targets"
