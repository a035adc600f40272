# sluice train: a cnn on a tiny generated shapes set (examples/make_shapes, converted with
# `sluice convert DIR`) for a few dozen steps: exit 0, every report line, train.csv with a row
# per log interval, an event file the independent Python reader parses, an atomic checkpoint a
# --resume run continues from; the cnn's defaults learning the task; --trace; the CUDA backend's
# wiring through its emulator (same losses and checkpoint bytes as the CPU reference, exact
# resume); --device cuda without a device fails clearly; usage errors exit 2.
. "$(dirname "$0")/lib.sh"

make_shapes=$(dirname "$SLUICE")/../examples/make_shapes
[ -x "$make_shapes" ] || fail "no make_shapes binary next to $SLUICE ($make_shapes)"

"$make_shapes" shapes --per-class 24 --size 32 --seed 1 >/dev/null
"$make_shapes" held --per-class 8 --size 32 --seed 2 >/dev/null
"$SLUICE" convert shapes -o shapes-train --shards 2 >/dev/null
"$SLUICE" convert held -o shapes-val --shards 1 >/dev/null

data='records("shapes-train-*.sluice") | global_shuffle(seed=1) | map(decode_jpeg, flip, normalize(imagenet)) | select("image", "label")'
val='records("shapes-val") | map(decode_jpeg, normalize(imagenet)) | select("image", "label")'

expect_exit 0 "$SLUICE" train --help
expect_output_has "usage: sluice train --data PIPELINE"
expect_output_has "decode_jpeg"

expect_exit 0 "$SLUICE" train --data "$data" --val "$val" --model cnn --device cpu --steps 30 \
  --batch 8 --classes 4 --lr 0.002 --optimizer adamw --eval-every 15 --checkpoint ck \
  --logdir logs --seed 3 --threads 2
expect_output_has "trained:      cnn on cpu, 30 steps"
expect_output_has "validation:   loss "
expect_output_has "throughput:   "
expect_output_has "step time:    "
expect_output_has "= data wait "
expect_output_has "input:        "
expect_output_has "bottleneck:   "
expect_output_has "checkpoint:   ck/checkpoint.sltc"
grep -qE '^input:        (highly|moderately|not) input-bound$' "$WORK/out" || fail "no verdict line"
[ -s ck/checkpoint.sltc ] || fail "no checkpoint"
[ ! -e ck/.checkpoint.sltc.tmp ] || fail "temporary checkpoint left behind"

# train.csv: the header, rows at steps 10, 15 (eval), 20, 30 (eval)
[ "$(head -n 1 logs/train.csv)" = "step,loss,accuracy,lr,images_per_s,val_loss,val_accuracy" ] ||
  fail "csv header: $(head -n 1 logs/train.csv)"
[ "$(cut -d, -f1 logs/train.csv | tail -n +2 | tr '\n' ' ')" = "10 15 20 30 " ] ||
  fail "csv steps: $(cut -d, -f1 logs/train.csv | tr '\n' ' ')"

events=$(ls logs/events.out.tfevents.*)
[ "$(echo "$events" | wc -l)" = 1 ] || fail "expected one event file: $events"
"$PY" "$TOOLS/tfevents_read.py" "$events" >events.txt || fail "event file does not parse"
[ "$(head -n 1 events.txt)" = "version brain.Event:2" ] || fail "first event: $(head -n 1 events.txt)"
[ "$(grep -c ' train/loss ' events.txt)" = 4 ] || fail "train/loss scalars: $(cat events.txt)"
[ "$(grep -c ' val/accuracy ' events.txt)" = 2 ] || fail "val/accuracy scalars"
grep -q '^scalar 30 learning_rate 0.0020000000949949026$' events.txt || fail "learning rate"

# resume: continues at step 30 to 40, appends to train.csv, writes a second event file
expect_exit 0 "$SLUICE" train --data "$data" --val "$val" --model cnn --steps 40 --batch 8 \
  --classes 4 --lr 0.002 --eval-every 15 --checkpoint ck --resume --logdir logs --seed 3 \
  --threads 2
expect_output_has "trained:      cnn on cpu, 40 steps (resumed at step 30)"
[ "$(cut -d, -f1 logs/train.csv | tail -n +2 | tr '\n' ' ')" = "10 15 20 30 40 " ] ||
  fail "csv steps after resume: $(cut -d, -f1 logs/train.csv | tr '\n' ' ')"
[ "$(ls logs/events.out.tfevents.* | wc -l)" = 2 ] || fail "expected a second event file"

# the mlp on uint8 images (no normalize: the loop scales HWC uint8 itself), by epochs
expect_exit 0 "$SLUICE" train \
  --data 'records("shapes-train-*.sluice") | map(decode_jpeg) | select("image", "label")' \
  --model mlp --epochs 2 --batch 16 --classes 4 --optimizer sgd --threads 2
expect_output_has "trained:      mlp on cpu, 12 steps, 2.00 epochs"

# The cnn with its defaults learns the shapes task: 1000 images at 32x32, 200 steps of 32, a
# validation set drawn with another seed. Guards the global max head (trainer/TRAINER.md, "The
# cnn's head"): it reaches 84% here (90% by step 200-225 on 2000 shapes), while the average head
# is still at 25-30%, its loss near ln(4) = 1.386.
"$make_shapes" learn --per-class 250 --size 32 --seed 5 >/dev/null
"$make_shapes" learn-val --per-class 50 --size 32 --seed 6 >/dev/null
"$SLUICE" convert learn -o learn.sluice >/dev/null
"$SLUICE" convert learn-val -o learn-val.sluice >/dev/null
expect_exit 0 "$SLUICE" train --model cnn --steps 200 --batch 32 --classes 4 --threads 2 \
  --data 'records("learn.sluice") | global_shuffle(seed=1) | map(decode_jpeg, flip, normalize(imagenet)) | select("image", "label")' \
  --val 'records("learn-val.sluice") | map(decode_jpeg, normalize(imagenet)) | select("image", "label")'
loss="" acc=""
read -r loss acc <<<"$(sed -n 's/^validation:   loss \(.*\), accuracy \(.*\)%$/\1 \2/p' "$WORK/out")" ||
  true
awk -v l="$loss" -v a="$acc" 'BEGIN { exit !(l < 0.9 && a >= 70) }' ||
  fail "cnn after 200 steps: validation loss ${loss:-?}, accuracy ${acc:-?}% (expected < 0.9, >= 70%)"

# --trace writes the training pipeline's Chrome trace
expect_exit 0 "$SLUICE" train --data "$data" --model cnn --steps 3 --batch 8 --classes 4 \
  --width 4 --trace trace.json
expect_output_has "trace:        trace.json"
"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not d["traceEvents"])' \
  trace.json || fail "trace.json is not a Chrome trace with events"

# --- the CUDA backend's wiring, through its CPU emulator (--device cuda-emu, hidden) ---------
# The emulator runs the same per-value bodies as the CPU model's reference loops (--cpu-reference,
# hidden), so float32 training is the same arithmetic: every per-step loss in train.csv (printed
# to 6 decimals) must agree to 1e-6, and the checkpoint (model, optimizer, iterator) must be the
# same bytes. The default CPU path (OpenBLAS GEMMs, another summation order) differs in the 6th
# decimal after a few steps, so it is not the comparison. Tiny inputs: 16x16, width 4, batch 4.
"$make_shapes" tiny --per-class 6 --size 16 --seed 7 >/dev/null
"$SLUICE" convert tiny -o tiny.sluice >/dev/null
tdata='records("tiny.sluice") | global_shuffle(seed=1) | map(decode_jpeg, flip, normalize(imagenet)) | select("image", "label")'
tval='records("tiny.sluice") | map(decode_jpeg, normalize(imagenet)) | select("image", "label")'
tu8='records("tiny.sluice") | global_shuffle(seed=2) | map(decode_jpeg, flip) | select("image", "label")'
tu8val='records("tiny.sluice") | map(decode_jpeg) | select("image", "label")'

# same_losses A.csv B.csv: equal step columns, loss and val_loss within 1e-6
same_losses() {
  [ "$(wc -l <"$1")" = "$(wc -l <"$2")" ] || fail "$1 and $2 have different row counts"
  paste -d, "$1" "$2" | tail -n +2 | awk -F, '
    { n = NF / 2
      if ($1 != $(n + 1)) { print "step " $1 " vs " $(n + 1); bad = 1 }
      d = $2 - $(n + 2); if (d < 0) d = -d
      if (d > 1e-6) { print "step " $1 ": loss " $2 " vs " $(n + 2); bad = 1 }
      if ($6 != "" || $(n + 6) != "") { d = $6 - $(n + 6); if (d < 0) d = -d
        if (d > 1e-6) { print "step " $1 ": val_loss " $6 " vs " $(n + 6); bad = 1 } } }
    END { exit bad }' || fail "per-step losses differ: $1 vs $2"
}

# the cnn on float32 images (uploaded as they are), AdamW, an evaluation every 4 steps
for dev in "cuda-emu" "cpu --cpu-reference"; do
  d=${dev%% *}
  expect_exit 0 "$SLUICE" train --data "$tdata" --val "$tval" --model cnn --width 4 --steps 8 \
    --batch 4 --classes 4 --eval-every 4 --log-every 1 --logdir "l-$d" --checkpoint "c-$d" \
    --seed 5 --threads 2 --device $dev
done
expect_output_has "trained:      cnn on cpu, 8 steps"
same_losses l-cuda-emu/train.csv l-cpu/train.csv
cmp c-cuda-emu/checkpoint.sltc c-cpu/checkpoint.sltc || fail "cuda-emu and cpu checkpoints differ"

# the mlp on uint8 images (through the pinned feed, normalized by its kernel; the loop submits
# batch k+1 before step k except before checkpoints and evaluations), SGD
for dev in "cuda-emu" "cpu --cpu-reference"; do
  d=${dev%% *}
  expect_exit 0 "$SLUICE" train --data "$tu8" --val "$tu8val" --model mlp --hidden 16 --steps 9 \
    --batch 4 --classes 4 --optimizer sgd --eval-every 4 --checkpoint-every 3 --log-every 1 \
    --logdir "u-$d" --checkpoint "uc-$d" --threads 2 --device $dev
done
same_losses u-cuda-emu/train.csv u-cpu/train.csv
cmp uc-cuda-emu/checkpoint.sltc uc-cpu/checkpoint.sltc || fail "cuda-emu and cpu mlp checkpoints differ"

# cuda-emu report, and exact resume on uint8 input (the feed, its read-ahead and checkpoints
# every 3 steps): 5 steps, then --resume to 10 == 10 steps straight (the checkpoint files bit for
# bit; the step, loss, accuracy and lr columns of train.csv as printed)
for run in "whole 10" "split 5" "split 10 --resume"; do
  set -- $run
  expect_exit 0 "$SLUICE" train --data "$tu8" --model cnn --width 4 --steps "$2" --batch 4 \
    --classes 4 --checkpoint-every 3 --log-every 1 --logdir "r-$1" --checkpoint "r-$1" --seed 5 \
    --threads 2 --device cuda-emu ${3:-}
done
expect_output_has "trained:      cnn on cuda-emu (fp32), 10 steps (resumed at step 5)"
expect_output_has "= data wait "
cmp r-whole/checkpoint.sltc r-split/checkpoint.sltc || fail "cuda-emu: 5 + 5 steps != 10 steps"
[ "$(cut -d, -f1-4 r-whole/train.csv)" = "$(cut -d, -f1-4 r-split/train.csv)" ] ||
  fail "cuda-emu: resumed losses differ (step,loss,accuracy,lr)"

# fp16 resumes exactly too: the checkpoint keeps the dynamic loss scale (these tiny cnns
# overflow at 65536 and skip their first steps, so a scale restarted there would skip again)
for run in "whole 10" "split 5" "split 10 --resume"; do
  set -- $run
  expect_exit 0 "$SLUICE" train --data "$tu8" --model cnn --width 4 --steps "$2" --batch 4 \
    --classes 4 --checkpoint-every 3 --log-every 1 --logdir "h-$1" --checkpoint "h-$1" --seed 5 \
    --threads 2 --device cuda-emu --precision fp16 ${3:-}
done
expect_output_has "trained:      cnn on cuda-emu (fp16), 10 steps (resumed at step 5)"
cmp h-whole/checkpoint.sltc h-split/checkpoint.sltc || fail "cuda-emu fp16: 5 + 5 steps != 10 steps"
[ "$(cut -d, -f1-4 h-whole/train.csv)" = "$(cut -d, -f1-4 h-split/train.csv)" ] ||
  fail "cuda-emu fp16: resumed losses differ"
scale=$(od -A n -t f4 -j 12 -N 4 h-whole/checkpoint.sltc | tr -d ' ')
awk -v s="$scale" 'BEGIN { exit !(s >= 1 && s < 65536) }' ||
  fail "fp16 checkpoint: loss scale '$scale' (expected backed off below 65536)"

# bf16 runs on the emulator and says so
expect_exit 0 "$SLUICE" train --data "$tu8" --model mlp --hidden 16 --steps 2 --batch 4 \
  --classes 4 --device cuda-emu --precision bf16
expect_output_has "trained:      mlp on cuda-emu (bf16), 2 steps"

# --device cuda with no device visible (hidden even on a GPU machine): one line naming why, exit 1
CUDA_VISIBLE_DEVICES="" expect_exit 1 "$SLUICE" train --data "$tu8" --model mlp --device cuda \
  --steps 5 --batch 4 --classes 4
grep -qE '^sluice train: --device cuda: (no CUDA device: the CUDA runtime reports 0 devices|this sluice was built without the CUDA backend)' \
  "$WORK/out" || { cat "$WORK/out" >&2; fail "--device cuda without a device"; }
[ "$(wc -l <"$WORK/out")" = 1 ] || fail "--device cuda: expected one line: $(cat "$WORK/out")"
expect_exit 2 "$SLUICE" train --data "$tu8" --model mlp --steps 5 --precision bf16
expect_output_has "--precision is for --device cuda"
expect_exit 2 "$SLUICE" train --data "$tu8" --model mlp --steps 5 --device cuda-emu --precision fp8
expect_output_has "--precision takes fp32, bf16 or fp16"
expect_exit 2 "$SLUICE" train --data "$tu8" --model mlp --steps 5 --device tpu
expect_output_has "--device takes cpu or cuda"

expect_exit 2 "$SLUICE" train --data "$data" --model cnn
expect_output_has "expected --steps N or --epochs E"
expect_exit 2 "$SLUICE" train --data "$data" --model resnet --steps 5
expect_output_has "--model takes cnn or mlp"
expect_exit 1 "$SLUICE" train --data "$data" --steps 5 --batch 8 --classes 4 --x pixels
expect_output_has 'the batch has no tensor "pixels"'
echo "ok"
