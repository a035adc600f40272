# convert DIR: an image folder with good, odd and bad files into typed records. Class folders
# sorted -> labels; every file kept byte for byte, re-encoded (--max-side) or skipped with its
# reason in NAME.skipped.txt; the output is the same for any thread count and after a kill.
. "$(dirname "$0")/lib.sh"

IMG=$SL_TEST_SOURCE/tests/data/images
mkdir -p tree/cat tree/dog/sub tree/zebra
cp "$IMG/rgb420.jpg" tree/cat/a.jpg
cp "$IMG/gray.jpg" tree/cat/b_gray.jpg
cp "$IMG/progressive.jpg" tree/cat/c_progressive.jpg
cp "$IMG/corrupt/cmyk.jpg" tree/dog/cmyk.jpg
cp "$IMG/corrupt/png_named.jpg" tree/dog/png_named.jpg # a PNG called .jpg
cp "$IMG/rgb8.png" tree/dog/sub/rgb8.png               # below the class folder
cp "$IMG/corrupt/empty.jpg" tree/dog/empty.jpg
cp "$IMG/restart.jpg" tree/zebra/restart.jpg
cp "$IMG/corrupt/truncated.jpg" tree/zebra/truncated.jpg
cp "$IMG/corrupt/text.jpg" tree/zebra/notes.jpg
cp "$IMG/corrupt/gif.jpg" tree/zebra/anim.jpg
echo "class notes" >tree/zebra/README.txt
echo "stray" >tree/stray.txt   # not in a class folder: ignored, said so
echo "hidden" >tree/cat/.DS_Store # hidden: not part of the tree
mkdir dst

expect_exit 0 "$SLUICE" convert tree -o dst/train --shards 3 --threads 2
expect_output_has "converted 7 images (0 re-encoded) of 3 classes"
expect_output_has "skipped 5 files (listed with the reason in dst/train.skipped.txt)"
expect_output_has "ignored tree/stray.txt: not a class folder"
printf 'cat\ndog\nzebra\n' | cmp - dst/labels.txt || fail "labels.txt: $(cat dst/labels.txt)"
printf '%s\t%s\n' \
  dog/empty.jpg "not an image: empty input" \
  zebra/README.txt "not an image: no JPEG or PNG signature (starts with 63 6c 61 73)" \
  zebra/anim.jpg "gif image: only JPEG and PNG are decoded" \
  zebra/notes.jpg "not an image: no JPEG or PNG signature (starts with 54 68 69 73)" \
  zebra/truncated.jpg "jpeg: premature end of JPEG data" >want.skipped
cmp want.skipped dst/train.skipped.txt || { cat dst/train.skipped.txt >&2; fail "skip report differs"; }
for s in 0 1 2; do "$SLUICE" verify -q "dst/train-0000$s-of-00003.sluice" || fail "shard $s damaged"; done
[ -z "$(ls -A dst | grep '^\.')" ] || fail "state or side files left: $(ls -A dst)"

# The records, in order: label and path, height and width of the original, and the original
# bytes (size and crc32c computed here from the files).
"$SLUICE" head 'records("dst/train-*.sluice")' -n 0 >records.txt
[ "$(wc -l <records.txt)" = 7 ] || fail "expected 7 records: $(cat records.txt)"
n=0
for f in cat/a.jpg:0:167:241 cat/b_gray.jpg:0:167:241 cat/c_progressive.jpg:0:167:241 \
  dog/cmyk.jpg:1:48:64 dog/png_named.jpg:1:23:37 dog/sub/rgb8.png:1:23:37 \
  zebra/restart.jpg:2:167:241; do
  IFS=: read -r path label h w <<<"$f"
  crc=$("$PY" -c 'import crcmod.predefined,sys; c=crcmod.predefined.mkCrcFun("crc-32c"); d=open(sys.argv[1],"rb").read(); print("%d bytes crc32c=%08x" % (len(d), c(d)))' "tree/$path")
  line=$(sed -n "$((n + 1))p" records.txt)
  case "$line" in
  "$n: image=bytes["*"] $crc "*", label=int64[] $label, path=bytes["*"\"$path\", height=int64[] $h, width=int64[] $w") ;;
  *) fail "record $n: expected $path ($crc, label $label, ${w}x$h), got: $line" ;;
  esac
  n=$((n + 1))
done

# The output decodes in a pipeline.
expect_exit 0 "$SLUICE" head 'records("dst/train-*.sluice") | map(decode_jpeg, center_crop(224))' -n 0
[ "$(grep -c 'image=uint8\[224,224,3\]' "$WORK/out")" = 7 ] || fail "decode: $(cat "$WORK/out")"
expect_exit 0 "$SLUICE" head 'records("dst/train-*.sluice") | map(decode_jpeg, random_resized_crop(32), flip, normalize(imagenet))' -n 1 --threads 2
expect_output_has "0: image=float32[3,32,32]"

# Any thread count, the same bytes.
mkdir one
"$SLUICE" convert tree -o one/train --shards 3 --threads 1 >/dev/null 2>&1
for s in 0 1 2; do
  cmp "dst/train-0000$s-of-00003.sluice" "one/train-0000$s-of-00003.sluice" || fail "shard $s differs with 1 thread"
done

# --max-side: images with a longer side above 100 become JPEGs 100 wide; smaller ones are kept.
expect_exit 0 "$SLUICE" convert tree -o small.sluice --max-side 100 --threads 2
expect_output_has "converted 7 images (4 re-encoded) of 3 classes"
expect_exit 0 "$SLUICE" head 'records("small.sluice") | map(decode_jpeg)' -n 0
[ "$(grep -c 'image=uint8\[69,100,3\].*height=int64\[\] 69, width=int64\[\] 100' "$WORK/out")" = 4 ] ||
  fail "re-encoded sizes: $(cat "$WORK/out")"
grep -q '^4: image=uint8\[23,37,3\]' "$WORK/out" || fail "a small PNG was changed: $(cat "$WORK/out")"
"$SLUICE" head 'records("small.sluice")' -n 0 | grep -q '^4: image=bytes\[2285\] .*"\.PNG' ||
  fail "a small PNG was not kept as PNG"

# Kill after the first shard (test hook), then rerun: kept, finished, byte-identical.
mkdir run
set +e
SLUICE_TEST_EXIT_AFTER_SHARDS=1 "$SLUICE" convert tree -o run/train --shards 3 >/dev/null 2>&1
rc=$?
set -e
[ $rc = 99 ] || fail "the test hook did not stop convert (exit $rc)"
[ "$(ls run/*.sluice | wc -l)" = 1 ] || fail "expected 1 published shard after the kill: $(ls run)"
[ -e run/.train.convert-state ] || fail "no state file after the kill"
expect_exit 0 "$SLUICE" convert tree -o run/train --shards 3
expect_output_has "kept 1 shard already published"
expect_output_has "converted 7 images (0 re-encoded) of 3 classes"
expect_output_has "skipped 5 files"
for s in 0 1 2; do
  cmp "dst/train-0000$s-of-00003.sluice" "run/train-0000$s-of-00003.sluice" || fail "shard $s differs after resume"
done
cmp dst/train.skipped.txt run/train.skipped.txt || fail "skip report differs after resume"
[ -z "$(ls -A run | grep '^\.')" ] || fail "state or side files left: $(ls -A run)"

# A changed tree invalidates the state: nothing stale is kept.
SLUICE_TEST_EXIT_AFTER_SHARDS=1 "$SLUICE" convert tree -o run2 --shards 2 >/dev/null 2>&1 || true
cp "$IMG/rgb444.jpg" tree/cat/d.jpg
expect_exit 0 "$SLUICE" convert tree -o run2 --shards 2
grep -q "kept" "$WORK/out" && fail "kept a shard of the old tree"
expect_output_has "converted 8 images"

# Real SIGKILLs on a larger tree: whatever is published verifies, and a rerun matches.
mkdir -p big/a big/b
for i in $(seq 1 60); do cp "$IMG/rgb444.jpg" "big/a/$i.jpg"; cp "$IMG/progressive.jpg" "big/b/$i.jpg"; done
"$SLUICE" convert big -o bigref --shards 6 --max-side 64 --threads 1 >/dev/null 2>&1
for delay in 0.02 0.1; do
  rm -rf kill && mkdir kill
  "$SLUICE" convert big -o kill/x --shards 6 --max-side 64 --threads 1 >/dev/null 2>&1 &
  pid=$!
  sleep $delay
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  for f in kill/*.sluice; do
    [ -e "$f" ] || continue
    "$SLUICE" verify -q "$f" || fail "kill after ${delay}s left a damaged $f"
  done
  "$SLUICE" convert big -o kill/x --shards 6 --max-side 64 --threads 2 >/dev/null 2>&1
  for f in bigref-*.sluice; do cmp "$f" "kill/x${f#bigref}" || fail "after kill at ${delay}s: $f differs"; done
done

# Usage errors and failures, each with a one-line reason.
expect_exit 2 "$SLUICE" convert tree -o tree/cat/out
expect_output_has "must not be inside the image folder"
expect_exit 2 "$SLUICE" convert tree -o x --compress zstd
expect_output_has "does not apply to an image folder"
expect_exit 2 "$SLUICE" convert tree big -o x
mkdir flat && cp "$IMG/rgb420.jpg" flat/
expect_exit 1 "$SLUICE" convert flat -o flat.sluice
expect_output_has "no class folders"
expect_exit 0 "$SLUICE" convert --help
expect_output_has "sluice convert DIR -o NAME"
echo "convert images OK"
