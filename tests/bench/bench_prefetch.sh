#!/bin/bash
# bench_prefetch.sh - wall time of a cold prefetch of the 50 world domains
# (d01.test .. d50.test): TXT query, A/AAAA, HTTPS fetch and cache write
# each, on lookup_workers threads. Brings the test world up and down itself;
# needs root. Prints one line with the time.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${top_builddir:-$(cd "$HERE/../.." && pwd)}
W=/tmp/mts-bench-world.$$
if [ "$(id -u)" -ne 0 ]; then
    echo "bench_prefetch: skipped (the test world needs root)"
    exit 0
fi
trap '"$HERE/../world/world.sh" down "$W" >/dev/null 2>&1; rm -rf "$W"' EXIT
"$HERE/../world/world.sh" up "$W" >/dev/null 2>&1
seq -w 1 50 | sed 's/^/d/; s/$/.test/' >"$W/domains"
start=$(date +%s.%N)
"$BUILD/milter/mtasts-ctl" -c "$W/mtasts-milter.conf" prefetch "$W/domains" >"$W/out"
end=$(date +%s.%N)
printf "bench_prefetch: cold prefetch of 50 world domains: %.3f s (%s)\n" "$(echo "$end - $start" | bc -l)" "$(cat "$W/out")"
