#!/usr/bin/env bash
# `make demo`: the record-file job end to end on data generated here.
#   1. write a TFRecord dataset of tf.train.Example records (image bytes, label, path, ...)
#      with an independent implementation (Debian's python3-protobuf)
#   2. index it (DALI-compatible), convert it into 4 typed, zstd-compressed sluice shards
#   3. verify, inspect, and read one record by random access
#   4. convert back to TFRecord and check the bytes are identical to the original
#   5. damage a copy: verify names the spot, repair recovers every intact record
#   6. images: generate an ImageFolder of shapes (examples/make_shapes.c), convert it with
#      `sluice convert DIR`, and stream it through decode + random crop + flip + normalize
#   7. the same from C: examples/stream_records.c, a training loop's input in ~40 lines
#   8. the main job: train the cnn on the CPU on 32x32 shapes (~100 s on 2 idle cores),
#      then the mlp on the same data; report both accuracies, the logs and the trace
# usage: demo.sh SLUICE_BINARY OUT_DIR
set -euo pipefail
sluice=$(realpath "$1")
out=$2
tools=$(cd "$(dirname "$0")/../tests/tools" && pwd)
rm -rf "$out" && mkdir -p "$out" && cd "$out"
step() { printf '\n== %s\n' "$*"; }
# Prints the command as it could be pasted into a shell (arguments with spaces or quotes are
# single-quoted), then runs it.
run() {
  local a line='$'
  for a in "$@"; do
    case $a in *[[:space:]\"\'\|\(\)\*]*) line+=" '${a//\'/\'\\\'\'}'" ;; *) line+=" $a" ;; esac
  done
  printf '%s\n' "$line"
  "$@"
}

step "1. generate a TFRecord dataset (3000 tf.Example records, some with 1.2 MB images)"
run /usr/bin/python3 "$tools/make_dataset.py" train.tfrecord --records 3000 --large-every 500

step "2. index it (DALI format) and convert it into 4 typed sluice shards"
run "$sluice" index train.tfrecord
run "$sluice" convert train.tfrecord -o train --shards 4 --compress zstd \
  --schema 'image:bytes,label:int64,path:bytes,height:int64,width:int64,emb:float32[4]'
ls -l train-*.sluice | awk '{print "   " $5 " bytes  " $9}'

step "3. verify every checksum, inspect a shard, read record 7 of shard 2 by random access"
run "$sluice" verify train-*.sluice
run "$sluice" inspect train-00002-of-00004.sluice
run "$sluice" cat train-00002-of-00004.sluice --record 7

step "4. back to TFRecord: byte-identical to the original"
run "$sluice" convert train-*.sluice -o roundtrip.tfrecord
if cmp -s train.tfrecord roundtrip.tfrecord; then
  echo "   roundtrip.tfrecord is byte-identical to train.tfrecord"
else
  echo "   MISMATCH: roundtrip.tfrecord differs from train.tfrecord" >&2
  exit 1
fi

step "5. damage a copy of shard 1: verify locates it, repair keeps every intact record"
cp train-00001-of-00004.sluice damaged.sluice
size=$(stat -c %s damaged.sluice)
printf '\xde\xad\xbe\xef' | dd of=damaged.sluice bs=1 seek=$((size / 3)) conv=notrunc status=none
echo "   (overwrote 4 bytes at offset $((size / 3)))"
set +e
"$sluice" verify damaged.sluice
echo "   verify exit status: $?"
set -e
run "$sluice" repair damaged.sluice -o repaired.sluice
run "$sluice" verify repaired.sluice

step "6. images: an ImageFolder of 1000 JPEG shapes in 4 classes -> typed records -> augmentation"
examples=$(realpath "$(dirname "$sluice")/../examples")
run "$examples/make_shapes" shapes --per-class 250
run "$sluice" convert shapes -o shapes-train --shards 2
echo "   labels.txt: $(tr '\n' ' ' < labels.txt)"
images='records("shapes-train-*.sluice") | global_shuffle(seed=1) | map(decode_jpeg, random_resized_crop(56), flip, normalize(imagenet), parallel=auto) | select("image", "label")'
run "$sluice" head "$images | batch(32)" -n 2
run "$sluice" bench "$images | repeat | batch(32) | prefetch(auto)" --seconds 3

step "7. a training loop's input in C (examples/stream_records.c): records -> shuffle -> decode + augment -> batch -> prefetch"
run "$examples/stream_records" 'shapes-train-*.sluice'

step "8. train: a cnn on 4000 shapes at 32x32 (validation: 800 others, another seed), then an mlp"
# The validation set is drawn with another seed, so no image is in both. 32x32 keeps a step on
# the CPU near 80 ms; shapes are 10-22 px across, still clearly drawn.
run "$examples/make_shapes" train32 --per-class 1000 --size 32 --seed 11
run "$examples/make_shapes" val32 --per-class 200 --size 32 --seed 12
run "$sluice" convert train32 -o train32 --shards 2
run "$sluice" convert val32 -o val32.sluice
train='records("train32-*.sluice") | global_shuffle(seed=1) | map(decode_jpeg, flip, normalize(imagenet), parallel=auto) | select("image", "label")'
val='records("val32.sluice") | map(decode_jpeg, normalize(imagenet)) | select("image", "label")'
# --classes 4: the shapes' labels (the default is 10); --cosine: the learning rate decays to 0
# at the last step; --threads 2: the pipeline's threads (the matrix products use one).
run "$sluice" train --data "$train" --val "$val" --model cnn --steps 1200 --batch 32 --classes 4 \
  --cosine --eval-every 300 --logdir logs-cnn --trace trace-cnn.json --checkpoint ckpt-cnn \
  --threads 2 | tee report-cnn.txt
run "$sluice" train --data "$train" --val "$val" --model mlp --steps 1200 --batch 32 --classes 4 \
  --cosine --eval-every 300 --logdir logs-mlp --threads 2 | tee report-mlp.txt
accuracy() { sed -n 's/^validation:.*accuracy \(.*\)$/\1/p' "$1"; }
printf '\n   cnn val accuracy %s | mlp val accuracy %s\n' "$(accuracy report-cnn.txt)" \
  "$(accuracy report-mlp.txt)"
echo "   logs:  $(pwd)/logs-cnn/train.csv and $(ls "$(pwd)"/logs-cnn/events.out.tfevents.*)"
echo "          (tensorboard --logdir $(pwd)/logs-cnn; the mlp's are in logs-mlp/)"
echo "   trace: $(pwd)/trace-cnn.json: the training pipeline's threads (open in ui.perfetto.dev)"

printf '\nDemo finished: files are in %s\n' "$(pwd)"
