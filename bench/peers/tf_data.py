"""Peer (c): tf.data over the same images stored as tf.Example records in TFRecord files.

  --write OUT_PREFIX --from TRAIN_DIR   writes the folder's JPEGs (bytes as they are) as
      tf.train.Example {image/encoded: bytes, image/class/label: int64} into --shards files
      OUT_PREFIX-0000N-of-0000S.tfrecord with tf.io.TFRecordWriter (class folders sorted ->
      labels, as ImageFolder does), in a seeded shuffled order so every shard mixes classes.

  FILES_GLOB   runs the input pipeline a tf.data user writes for ImageNet training:
      TFRecordDataset(files) -> shuffle(all records, reshuffled each epoch) -> repeat(epochs)
      -> map(parse, sample_distorted_bounding_box (area (0.08, 1), aspect (3/4, 4/3), 10
      attempts, whole image as fallback), decode_and_crop_jpeg of that window only, resize to
      224x224 (bilinear), random_flip_left_right, (x/255 - mean)/std with ImageNet's figures,
      num_parallel_calls=AUTOTUNE) -> batch(64) -> prefetch(AUTOTUNE); and prints one JSON line
      with the same fields as torch_loader.py (cpu_seconds: this process, all its threads).

usage: tf_data.py FILES_GLOB [--epochs E] [--batch B] [--seed S] [--antialias]
       tf_data.py --write OUT_PREFIX --from TRAIN_DIR [--shards N]
"""
import argparse
import glob
import json
import os
import random
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def write(prefix, train, shards, seed):
    classes = sorted(d for d in os.listdir(train) if os.path.isdir(os.path.join(train, d)))
    items = []
    for label, c in enumerate(classes):
        for root, _, files in sorted(os.walk(os.path.join(train, c))):
            for f in sorted(files):
                if f.lower().endswith((".jpg", ".jpeg")):
                    items.append((os.path.join(root, f), label))
    random.Random(seed).shuffle(items)
    for s in range(shards):
        path = "%s-%05d-of-%05d.tfrecord" % (prefix, s, shards)
        with tf.io.TFRecordWriter(path) as w:
            for p, label in items[s * len(items) // shards:(s + 1) * len(items) // shards]:
                with open(p, "rb") as f:
                    data = f.read()
                ex = tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[label])),
                }))
                w.write(ex.SerializeToString())
    print("%d images in %d classes -> %s-*-of-%05d.tfrecord" % (len(items), len(classes), prefix,
                                                                 shards))


def pipeline(files, epochs, batch, seed, antialias, n_records):
    features = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    }
    mean = tf.constant(MEAN, tf.float32) * 255.0
    std = tf.constant(STD, tf.float32) * 255.0

    def augment(serialized):
        ex = tf.io.parse_single_example(serialized, features)
        data = ex["image/encoded"]
        shape = tf.io.extract_jpeg_shape(data)
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
            min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
            max_attempts=10, use_image_if_no_bounding_boxes=True)
        oy, ox, _ = tf.unstack(begin)
        h, w, _ = tf.unstack(size)
        crop = tf.io.decode_and_crop_jpeg(data, tf.stack([oy, ox, h, w]), channels=3)
        img = tf.image.resize(crop, [224, 224], method="bilinear", antialias=antialias)
        img = tf.image.random_flip_left_right(img)
        img = (img - mean) / std
        return img, ex["image/class/label"]

    ds = tf.data.TFRecordDataset(files)
    ds = ds.shuffle(n_records, seed=seed, reshuffle_each_iteration=True).repeat(epochs)
    ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    return s.ru_utime + s.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="?")
    ap.add_argument("--write")
    ap.add_argument("--from", dest="train")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--antialias", action="store_true")
    a = ap.parse_args()
    if a.write:
        write(a.write, a.train, a.shards, a.seed)
        return
    tf.random.set_seed(a.seed)
    files = sorted(glob.glob(a.files))
    n_records = sum(1 for _ in tf.data.TFRecordDataset(files))
    ds = pipeline(files, a.epochs, a.batch, a.seed, a.antialias, n_records)
    c0 = cpu()
    t0 = time.perf_counter()
    first = None
    images = 0
    checksum = 0.0
    for x, y in ds:
        if first is None:
            first = time.perf_counter()
            first_n = int(x.shape[0])
        images += int(x.shape[0])
        checksum += float(x[0, 0, 0, 0])  # touch the batch, as a training step would
    t1 = time.perf_counter()
    print(json.dumps({
        "system": "tf.data", "images": images, "seconds": t1 - t0, "first_batch_s": first - t0,
        "steady_images_per_s": (images - first_n) / (t1 - first),
        "images_per_s": images / (t1 - t0), "cpu_seconds": cpu() - c0,
        "antialias": a.antialias, "versions": {"tensorflow": tf.__version__},
    }))


if __name__ == "__main__":
    main()
