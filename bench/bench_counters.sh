#!/usr/bin/env bash
# What the engine's per-stage counters cost, as instruction counts (callgrind), counters on
# (build/release) against compiled out (build/nocount, configured here with -DSL_COUNTERS=OFF):
#   1. the JPEG decode pipeline, records -> decode_jpeg + random_resized_crop(224) + flip +
#      normalize -> batch(32), with a sequential map and with map(parallel=2): instructions per
#      image = (run of 6 batches - run of 2 batches) / 128, so start-up cancels; 3 runs each,
#      median (threads make the parallel counts vary by ~1%);
#   2. the per-element overhead pipelines of bench_engine --callgrind.
# usage: bash bench/bench_counters.sh        (~6 min on 2 vCPUs; needs build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "\$ bash bench/bench_counters.sh   # $(date -u '+%F %H:%M') UTC, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
cmake -S . -B build/nocount -G Ninja -DCMAKE_BUILD_TYPE=Release -DSL_COUNTERS=OFF -DSL_CUDA=OFF \
  -DSL_BUILD_TESTS=OFF >/dev/null
ninja -C build/nocount sluice bench_engine >/dev/null
ninja -C build/release sluice bench_engine make_shapes >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/release/examples/make_shapes "$work/img" --per-class 40 --size 448 --seed 3 >/dev/null
build/release/tools/sluice convert "$work/img" -o "$work/img" --shards 2 >/dev/null

# instructions of one `sluice head` run over N batches
count() { # BUILD MAP_ARGS N
  local p="records(\"$work/img-*.sluice\") | select(\"image\", \"label\") | map(decode_jpeg, random_resized_crop(224), flip, normalize(imagenet)$2) | batch(32) | take($3)"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "build/$1/tools/sluice" head "$p" -n 0 \
    --threads 1 >/dev/null 2>"$work/cg.err"
  awk '/^(summary|totals):/ {print $2; exit}' "$work/cg.out"
}
per_image() { # BUILD MAP_ARGS -> median of 3 (N=6 - N=2) / 128
  local r=()
  for _ in 1 2 3; do r+=($(( ($(count "$1" "$2" 6) - $(count "$1" "$2" 2)) / 128 ))); done
  printf '%s\n' "${r[@]}" | sort -n | sed -n 2p
}
echo
echo "JPEG decode pipeline, instructions per image (median of 3)"
printf '  %-28s %14s %14s %8s\n' map "counters on" "compiled out" "on/off"
for args in "" ", parallel=2"; do
  on=$(per_image release "$args") off=$(per_image nocount "$args")
  printf '  %-28s %14d %14d %8s\n' "map(...${args})" "$on" "$off" \
    "$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%+.2f%%", 100 * (a - b) / b}')"
done
echo
echo "per-element overhead (bench_engine --callgrind), counters on:"
build/release/bench/bench_engine --callgrind 100000 300000 2>&1 | sed 's/^/  /'
echo "compiled out:"
build/nocount/bench/bench_engine --callgrind 100000 300000 2>&1 | sed 's/^/  /'
