#!/usr/bin/env bash
# sluice against PyTorch's DataLoader and tf.data on the same JPEGs, with a bare-C ceiling.
#
# What it does, in one go (not part of `make test`; ~10-20 minutes the first time, pip downloads
# included, ~3-5 minutes after that):
#   1. Debian python3-skimage (the photographs) and a release build of `sluice` and
#      `bench_image` in build/peers; a venv in build/peers-venv with torch, torchvision,
#      tensorflow-cpu, pillow and psutil from PyPI (skipped when they import).
#   2. The image set (make_images.py; CLASSES x PER_CLASS ~500x375 quality-90 JPEGs, seeded),
#      converted once for each system: `sluice convert DIR` (4 shards) and tf.Example TFRecords
#      written by TensorFlow (tf_data.py --write, 4 shards). Files read once to warm the page
#      cache.
#   3. ROUNDS rounds, each running, in this order, EPOCHS passes over the set:
#      (a) sluice bench 'records | global_shuffle(seed=1) | repeat(EPOCHS) |
#          select("image", "label") | map(decode_jpeg, random_resized_crop(224), flip,
#          normalize(imagenet), parallel=auto) | batch(64) | prefetch(auto)' --threads CORES
#          (select first: a map read directly by batch writes its images into the batch)
#      (a') the same with jemalloc preloaded, when libjemalloc2 is installed (a diagnostic:
#          see bench/README.md)
#      (b) torch_loader.py, (c) tf_data.py, (d) bench_image --dir (its bare-C loop, the
#          ceiling, and sluice's fused op without the engine), threads = cores.
#   4. summarize.py: images/s median (min-max), CPU-seconds per image, ratios, load.
#
# usage: bench/peers/run.sh [--classes N] [--per-class M] [--rounds R] [--epochs E]
#                           [--out DIR] [--no-install] [--nice N]
# --nice N (e.g. -10, needs root) runs every measured system at that niceness, so that other
# work on a shared machine disturbs the rounds less; the load is printed either way.
# Outputs under build/peers-bench/YYYYmmdd-HHMMSS/ (raw per-round files, summary.md).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/peers
CLASSES=10 PER_CLASS=200 ROUNDS=3 EPOCHS=6 INSTALL=1 NICE=0
OUT=$ROOT/build/peers-bench/$(date +%Y%m%d-%H%M%S)
ARGS=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    --classes) CLASSES=$2; shift 2 ;;
    --per-class) PER_CLASS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --nice) NICE=$2; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
CORES=$(nproc)
BUILD=$ROOT/build/peers
VENV=$ROOT/build/peers-venv
DATA=$ROOT/build/peers-data/${CLASSES}x${PER_CLASS}
SYSPY=/usr/bin/python3
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
say() { echo "== $*" >&2; }

# ---- 1. dependencies and builds ---------------------------------------------------------------
if ! $SYSPY -c 'import skimage, PIL' 2>/dev/null; then
  [ $INSTALL = 1 ] || { echo "run.sh: python3-skimage missing" >&2; exit 1; }
  say "installing Debian python3-skimage"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-skimage python3-pil >/dev/null
fi
say "building sluice and bench_image (release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$BUILD" -j"$CORES" sluice bench_image >/dev/null
SLUICE=$BUILD/tools/sluice
BENCH_IMAGE=$BUILD/bench/bench_image
if ! "$VENV/bin/python" -c 'import torch, torchvision, tensorflow, PIL, psutil' 2>/dev/null; then
  [ $INSTALL = 1 ] || { echo "run.sh: the venv $VENV lacks its packages" >&2; exit 1; }
  say "installing torch, torchvision, tensorflow-cpu, pillow, psutil from PyPI into $VENV"
  [ -x "$VENV/bin/python" ] || $SYSPY -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q torch torchvision tensorflow-cpu pillow psutil
fi
PY=$VENV/bin/python
export TF_CPP_MIN_LOG_LEVEL=2

# ---- 2. the image set, once per size ----------------------------------------------------------
STAMP="classes=$CLASSES per_class=$PER_CLASS $(md5sum "$HERE/make_images.py" | cut -c1-12)"
if [ "$(cat "$DATA/stamp" 2>/dev/null)" != "$STAMP" ]; then
  say "making the image set in $DATA"
  rm -rf "$DATA"
  mkdir -p "$DATA/rec" "$DATA/tfr"
  $SYSPY "$HERE/make_images.py" "$DATA" --classes "$CLASSES" --per-class "$PER_CLASS"
  "$SLUICE" convert "$DATA/train" -o "$DATA/rec/train" --shards 4
  "$PY" "$HERE/tf_data.py" --write "$DATA/tfr/train" --from "$DATA/train" --shards 4 \
    2>"$DATA/tf_write.log" || { cat "$DATA/tf_write.log" >&2; exit 1; }
  echo "$STAMP" >"$DATA/stamp"
fi
N_IMAGES=$(find "$DATA/train" -name '*.jpg' | wc -l)
cat "$DATA"/train/*/*.jpg "$DATA"/rec/*.sluice "$DATA"/tfr/*.tfrecord >/dev/null

# ---- 3. the rounds ----------------------------------------------------------------------------
mkdir -p "$OUT"
{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $CORES CPUs ($(nproc --all) online)," \
       "$(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo) RAM, $(uname -r)," \
       "$(. /etc/os-release && echo "$PRETTY_NAME"), $(cc --version | head -1)"
  "$PY" - <<'PYEOF'
import PIL, PIL.features, torch, torchvision, numpy
import os; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
print("versions: torch %s, torchvision %s, tensorflow %s, Pillow %s (libjpeg-turbo %s), numpy %s"
      % (torch.__version__, torchvision.__version__, tf.__version__, PIL.__version__,
         PIL.features.version("libjpeg_turbo"), numpy.__version__))
PYEOF
  echo "sluice: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes'), release build $BUILD"
  echo "niceness of the measured runs: $NICE"
  echo "images: $N_IMAGES JPEGs, $CLASSES classes, mean $(du -cb "$DATA"/train/*/*.jpg | tail -1 | awk -v n="$N_IMAGES" '{printf "%.1f KB", $1/n/1e3}'); $EPOCHS epochs per run; $ROUNDS rounds"
} >"$OUT/machine.txt" 2>/dev/null
cat "$OUT/machine.txt" >&2

PIPE="records(\"$DATA/rec/train-*.sluice\") | global_shuffle(seed=1) | repeat($EPOCHS) | select(\"image\", \"label\") | map(decode_jpeg, random_resized_crop(224), flip, normalize(imagenet), parallel=auto) | batch(64) | prefetch(auto)"
load1() { cut -d' ' -f1 /proc/loadavg; }
[ "$NICE" = 0 ] || renice -n "$NICE" -p $$ >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  L=$OUT/r${r}_load.txt
  : >"$L"
  say "round $r/$ROUNDS: sluice (load $(load1))"
  echo "sluice $(load1)" >>"$L"
  "$SLUICE" bench "$PIPE" --threads "$CORES" --seconds 3600 --json >"$OUT/r${r}_sluice.json"
  if [ -e "$JEMALLOC" ]; then
    say "round $r/$ROUNDS: sluice with jemalloc (load $(load1))"
    echo "sluice_jemalloc $(load1)" >>"$L"
    LD_PRELOAD=$JEMALLOC MALLOC_CONF="oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1" \
      "$SLUICE" bench "$PIPE" --threads "$CORES" --seconds 3600 --json >"$OUT/r${r}_sluice_jemalloc.json"
  fi
  say "round $r/$ROUNDS: PyTorch DataLoader (load $(load1))"
  echo "pytorch $(load1)" >>"$L"
  "$PY" "$HERE/torch_loader.py" "$DATA/train" --epochs "$EPOCHS" --workers "$CORES" \
    >"$OUT/r${r}_pytorch.json"
  say "round $r/$ROUNDS: tf.data (load $(load1))"
  echo "tfdata $(load1)" >>"$L"
  "$PY" "$HERE/tf_data.py" "$DATA/tfr/train-*.tfrecord" --epochs "$EPOCHS" \
    >"$OUT/r${r}_tfdata.json" 2>"$OUT/r${r}_tfdata.err"
  say "round $r/$ROUNDS: bare-C ceiling (load $(load1))"
  echo "ceiling $(load1)" >>"$L"
  "$BENCH_IMAGE" --dir "$DATA/flat" --count "$N_IMAGES" --threads "$CORES" --rounds 1 \
    --passes "$EPOCHS" >"$OUT/r${r}_ceiling.txt"
done

# ---- 4. the table -----------------------------------------------------------------------------
$SYSPY "$HERE/summarize.py" "$OUT" "bench/peers/run.sh ${ARGS[*]:-}  (raw files: $OUT)"
