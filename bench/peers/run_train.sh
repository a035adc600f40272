#!/usr/bin/env bash
# Training steps/s of sluice's CPU trainer against PyTorch on the same model and batch, and the
# input overhead of feeding the step from a sluice pipeline instead of an in-memory batch.
#
# What it does (not part of `make test`; builds nothing: it expects build/release, or --build):
#   1. A venv in build/peers-venv with torch from PyPI, as bench/peers/run.sh makes it (reused
#      when torch imports; run.sh adds its other packages when it runs).
#   2. The data, once: examples/make_shapes, 4 classes x 1000 32x32 JPEGs (seed 11, as step 8 of
#      examples/demo.sh), converted with `sluice convert` into 2 shards, under
#      build/train-bench-data/.
#   3. ROUNDS rounds; in each, for each model (cnn, mlp): bench_train_step (one in-memory round,
#      then one round fed by the demo's training pipeline
#        records | global_shuffle(seed=1) | map(decode_jpeg, flip, normalize(imagenet),
#        parallel=auto) | select("image", "label") | batch(B, drop_remainder=true) |
#        prefetch(auto)
#      through sl_trainer_run, as `sluice train --batch B` builds it), then torch_train.py (the
#      same architecture, parameter count checked equal, in-memory random batch).
#   4. Per model: steps/s median [min-max] over the rounds for sluice in-memory, sluice
#      pipeline-fed and PyTorch, sluice/PyTorch (in-memory, medians) and the input overhead
#      1 - fed / in-memory (medians), with the 1-minute load beside each round.
#
# usage: bench/peers/run_train.sh [--rounds R] [--threads T] [--batch B] [--optimizer sgd|adamw]
#                                 [--models "cnn mlp"] [--build DIR] [--out DIR] [--no-install]
# --threads T (default: the number of CPUs): torch.set_num_threads(T) for PyTorch; for sluice
# the OpenBLAS threads of the matrix products and the pipeline's worker budget. PyTorch's OpenMP
# threads spin-wait for each other by default; OMP_WAIT_POLICY=PASSIVE in the environment (kept
# in the first line) makes them sleep, which matters when other jobs share the cores.
# Outputs under build/train-bench/YYYYmmdd-HHMMSS/ (each program's output, rows.tsv).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/peers
# The one environment variable that changes PyTorch's figures on a shared machine (README).
echo "reproduce with: ${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=$OMP_WAIT_POLICY }bench/peers/run_train.sh$([ $# = 0 ] || printf ' %q' "$@")"
ROUNDS=3 THREADS=$(nproc) BATCH=32 OPTIM=sgd MODELS="cnn mlp" INSTALL=1
BUILD=$ROOT/build/release
OUT=$ROOT/build/train-bench/$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --optimizer) OPTIM=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "run_train.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
VENV=$ROOT/build/peers-venv
DATA=$ROOT/build/train-bench-data
SYSPY=/usr/bin/python3
say() { echo "== $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# ---- 1. programs and the venv -----------------------------------------------------------------
STEP=$BUILD/bench/bench_train_step SLUICE=$BUILD/tools/sluice SHAPES=$BUILD/examples/make_shapes
for p in "$STEP" "$SLUICE" "$SHAPES"; do
  [ -x "$p" ] || { echo "run_train.sh: $p is missing; build it first:" \
                        "ninja -C $BUILD bench_train_step sluice make_shapes" >&2; exit 1; }
done
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  [ $INSTALL = 1 ] || { echo "run_train.sh: the venv $VENV lacks torch" >&2; exit 1; }
  say "installing torch from PyPI into $VENV"
  [ -x "$VENV/bin/python" ] || $SYSPY -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q torch
fi
PY=$VENV/bin/python

# ---- 2. the data, once ------------------------------------------------------------------------
STAMP="shapes 4x1000 size 32 seed 11, 2 shards"
if [ "$(cat "$DATA/stamp" 2>/dev/null)" != "$STAMP" ]; then
  say "making 4000 32x32 shapes in $DATA"
  rm -rf "$DATA"
  mkdir -p "$DATA"
  "$SHAPES" "$DATA/train32" --per-class 1000 --size 32 --seed 11 >/dev/null
  "$SLUICE" convert "$DATA/train32" -o "$DATA/train32" --shards 2 >/dev/null
  echo "$STAMP" >"$DATA/stamp"
fi
cat "$DATA"/train32-*.sluice >/dev/null # into the page cache
PIPE="records(\"$DATA/train32-*.sluice\") | global_shuffle(seed=1) | map(decode_jpeg, flip, normalize(imagenet), parallel=auto) | select(\"image\", \"label\")"

# ---- 3. the rounds ----------------------------------------------------------------------------
mkdir -p "$OUT"
{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(uname -r)"
  echo "torch $("$PY" -c 'import torch; print(torch.__version__)'), sluice $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes'), $BUILD"
  echo "batch $BATCH, 3x32x32 inputs, 4 classes, $OPTIM, threads $THREADS, $ROUNDS rounds"
} | tee "$OUT/machine.txt"
ROWS=$OUT/rows.tsv
: >"$ROWS"
steps_for() { [ "$1" = cnn ] && echo "20 5" || echo "200 20"; } # timed steps, warmup per round
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODELS; do
    read -r N W <<<"$(steps_for "$m")"
    l=$(load1)
    say "round $r/$ROUNDS $m: sluice in-memory and pipeline-fed (load $l)"
    "$STEP" --model "$m" --batch "$BATCH" --threads "$THREADS" --optimizer "$OPTIM" \
      --steps "$N" --warmup "$W" --rounds 1 --data "$PIPE" >"$OUT/r${r}_${m}_sluice.txt"
    res=$(grep '^RESULT' "$OUT/r${r}_${m}_sluice.txt")
    params=$(sed 's/.*params=\([0-9]*\).*/\1/' <<<"$res")
    printf '%s\t%s\tsluice_inmem\t%s\t%s\t%s\n' "$r" "$m" \
      "$(sed 's/.*inmem=\([0-9.]*\).*/\1/' <<<"$res")" "$l" "$params" >>"$ROWS"
    printf '%s\t%s\tsluice_fed\t%s\t%s\t%s\n' "$r" "$m" \
      "$(sed 's/.*fed=\([0-9.]*\).*/\1/' <<<"$res")" "$l" "$params" >>"$ROWS"
    l=$(load1)
    say "round $r/$ROUNDS $m: PyTorch (load $l)"
    "$PY" "$HERE/torch_train.py" --model "$m" --batch "$BATCH" --threads "$THREADS" \
      --optimizer "$OPTIM" --steps "$N" --warmup "$W" --rounds 1 --expect-params "$params" \
      >"$OUT/r${r}_${m}_pytorch.json"
    "$SYSPY" -c 'import json, sys; d = json.load(open(sys.argv[1]))
print("%s\t%s\tpytorch\t%s\t%s\t%s" % (sys.argv[2], sys.argv[3], d["steps_per_s"], sys.argv[4],
                                       d["params"]))' \
      "$OUT/r${r}_${m}_pytorch.json" "$r" "$m" "$l" >>"$ROWS"
  done
done

# ---- 4. the table -----------------------------------------------------------------------------
"$SYSPY" - "$ROWS" <<'PYEOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
models = list(dict.fromkeys(r[1] for r in rows))
names = {"sluice_inmem": "sluice in-memory", "sluice_fed": "sluice pipeline-fed",
         "pytorch": "PyTorch in-memory"}
for m in models:
    params = next(r[5] for r in rows if r[1] == m)
    print("\n%s (%s parameters on both sides): steps/s median [min-max] over %d rounds"
          % (m, params, len({r[0] for r in rows if r[1] == m})))
    med = {}
    for s in names:
        v = [float(r[3]) for r in rows if r[1] == m and r[2] == s]
        loads = [r[4] for r in rows if r[1] == m and r[2] == s]
        med[s] = statistics.median(v)
        print("  %-22s %9.2f [%.2f-%.2f]   load %s" % (names[s], med[s], min(v), max(v),
                                                      ", ".join(loads)))
    # Also per round: both sides of a ratio ran back to back, so a shared machine's load
    # touches them more alike than it touches the medians taken across rounds.
    per = {}
    for r in rows:
        if r[1] == m:
            per.setdefault(r[0], {})[r[2]] = float(r[3])
    ratio = [p["sluice_inmem"] / p["pytorch"] for p in per.values()]
    over = [100 * (1 - p["sluice_fed"] / p["sluice_inmem"]) for p in per.values()]
    print("  sluice / PyTorch (in-memory): %.2fx of the medians; per round %s"
          % (med["sluice_inmem"] / med["pytorch"], ", ".join("%.2fx" % v for v in ratio)))
    print("  input overhead (1 - fed / in-memory): %.1f%% of the medians; per round %s"
          % (100 * (1 - med["sluice_fed"] / med["sluice_inmem"]),
             ", ".join("%.1f%%" % v for v in over)))
PYEOF
echo "(raw files: $OUT)"
