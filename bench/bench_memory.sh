#!/usr/bin/env bash
# Peak RSS against the iterator's memory budget (issue 3: "peak RSS stays under the budget +
# 64 MiB"). Each pipeline runs to its end under `sluice bench --memory B` inside
# /usr/bin/time; the budget is set just above the pipeline's estimated buffers (a run one step
# below it must fail at open, which is checked too). Prints estimated buffers, budget, peak RSS
# and peak RSS / (budget + 64 MiB): under 1.00 passes.
#
#   bash bench/bench_memory.sh [path/to/sluice]
set -euo pipefail
SLUICE=${1:-build/release/tools/sluice}
MIB=$((1024 * 1024))
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
printf '%-62s %10s %10s %10s %8s\n' pipeline estimated budget "peak RSS" ratio
fail=0
for spec in \
    "range(20000000) | batch(1000) | shuffle(10000) | prefetch(4)" \
    "range(40000000) | batch(100) | shuffle(100000) | batch(8) | prefetch(8)" \
    "range(20000000) | batch(10000) | shuffle(2000) | prefetch(16)" \
    "range(3000000) | cache | repeat(2) | batch(4096)"; do
    # The estimate: the open-time message of a run with a 1-byte budget names the total.
    msg=$("$SLUICE" bench "$spec" --memory 1 --seconds 1 2>&1 >/dev/null || true)
    est=$(sed -n 's/.*buffers need \([0-9.]*\) MB in all.*/\1/p' <<<"$msg")
    [ -n "$est" ] || { echo "no estimate for: $spec ($msg)"; exit 1; }
    budget=$(awk -v e="$est" 'BEGIN { printf "%d", e * 1e6 * 1.05 + 1 }')
    below=$(awk -v e="$est" 'BEGIN { printf "%d", e * 1e6 * 0.95 }')
    if "$SLUICE" bench "$spec" --memory "$below" --seconds 1 >/dev/null 2>&1; then
        echo "FAIL: $spec opened under a budget below its estimate"; fail=1
    fi
    /usr/bin/time -o "$tmp" -f '%M' "$SLUICE" bench "$spec" --memory "$budget" --seconds 60 \
        >/dev/null 2>&1
    rss_kb=$(tail -1 "$tmp")
    ratio=$(awk -v r="$rss_kb" -v b="$budget" -v m="$MIB" 'BEGIN { printf "%.2f", r * 1024 / (b + 64 * m) }')
    printf '%-62s %8.1fMB %8.1fMB %8.1fMB %8s\n' "$spec" "$est" "$(awk -v b="$budget" 'BEGIN{print b/1e6}')" \
        "$(awk -v r="$rss_kb" 'BEGIN{print r*1024/1e6}')" "$ratio"
    awk -v x="$ratio" 'BEGIN { exit !(x > 0 && x < 1.0) }' || fail=1
done
echo "reproduce: bash bench/bench_memory.sh $SLUICE"
[ "$fail" = 0 ] && echo "peak RSS under budget + 64 MiB: all pass" || { echo "FAIL"; exit 1; }
