"""Embedding throughput (faces/s) of MobileNet V1 on CPU: stock Keras-JAX, our backbone, TensorFlow.

    PYTHONPATH=src .venv/bin/python benchmarks/embed.py [--alpha 0.5] [--size 128] [--batch 64]
        [--batches 4] [--repeats 5] [--weights PATH] [--backbone mobilenet_v1|face_region]
        [--tf-python /work/venv-tf/bin/python] [--out benchmarks/results/embed.json]

Rows, all on the same uint8 crops with the same preprocessing, `--batches` x `--batch` crops a pass:
  (a) keras-jax   `keras.applications.MobileNet(...).predict(x, batch_size)` on Keras' JAX backend
  (b) embed       `MobileNetV1(...).embed(batch)` for each batch: this library (fast depthwise
                  convolutions; embed splits a batch into its own buckets)
  (c) tf.function the same Keras model on the TensorFlow backend in a `tf.function` (no XLA), in a
                  child process run by `--tf-python` (default: this interpreter); the row is
                  skipped when TensorFlow is not importable there. The child needs only
                  TensorFlow, Keras and numpy (it builds the model from `keras.applications`,
                  not from this library), so a separate virtual environment serves, and it
                  checks its features of the first batch against Keras-JAX's before timing.
`--backbone face_region` measures the recommended preset's backbone instead (MobileNet V1
multiblock: blocks 3-9, mean and std over the central 40%; give `--size 288`).
Each row is warmed up (compiled) once; then the rows take turns, one timed pass each, `--repeats`
times, so that load from other processes falls on every row alike. The table gives the best and
the median pass, ratios of the best passes, and the CPU time per face of the best pass (its
process's, all threads): the steadiest number on a busy machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / "mobilenet_v1_0.50_no_top.weights.h5"
Pass = Callable[[], tuple[float, float]]  # one timed pass: (wall seconds, CPU seconds)


def clock(fn: Callable[[], object]) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


#: The recommended preset's backbone (presets.py, "face_region"), less its name, size and weights.
FACE_REGION = {"blocks": [3, 4, 5, 6, 7, 8, 9], "pooling": "avg_std", "region": 0.4}


def crops_and_batches(args: argparse.Namespace) -> tuple[np.ndarray, list[np.ndarray]]:
    crops = np.random.default_rng(0).integers(0, 256, (args.batches * args.batch, args.size, args.size, 3), np.uint8)
    return crops, [crops[i:i + args.batch] for i in range(0, len(crops), args.batch)]


def preprocess(images: np.ndarray) -> np.ndarray:
    """MobileNet V1's preprocessing, as `MobileNetV1.preprocess` does it: to [-1, 1], float32."""
    x = np.multiply(images, np.float32(1 / 127.5), dtype=np.float32)
    x -= 1.0
    return x


def backbone(args: argparse.Namespace, fast_depthwise: bool):
    """This library's backbone that `--backbone` names (Keras must not be imported before)."""
    from deepfake_detect.backbones import MobileNetV1
    from deepfake_detect.backbones.multiblock import MobileNetV1MultiBlock

    if getattr(args, "backbone", "mobilenet_v1") == "face_region":
        return MobileNetV1MultiBlock(alpha=args.alpha, input_size=args.size, weights=args.weights,
                                     fast_depthwise=fast_depthwise, **FACE_REGION)
    return MobileNetV1(alpha=args.alpha, input_size=args.size, weights=args.weights, fast_depthwise=fast_depthwise)


def workloads(args: argparse.Namespace, backend: str = "jax") -> dict[str, Callable[[], object]]:
    """This process's rows (Keras-JAX predict, embed), each a pass over the crops; Keras must not
    be imported yet."""
    os.environ["KERAS_BACKEND"] = backend
    crops, batches = crops_and_batches(args)
    stock, ours = backbone(args, fast_depthwise=False), backbone(args, fast_depthwise=True)
    diff = np.abs(ours.embed(batches[0]) - stock.model.predict(stock.preprocess(batches[0]), verbose=0)).max()
    print(f"max |embed - keras-jax| over {args.batch} crops: {diff:.2e}")
    return {
        "keras-jax": lambda: stock.model.predict(stock.preprocess(crops), batch_size=args.batch, verbose=0),
        "embed": lambda: [ours.embed(batch) for batch in batches],
    }


def keras_model(args: argparse.Namespace):
    """The `--backbone` as a plain Keras model from `keras.applications` (no deepfake_detect import:
    the TensorFlow child's environment needs only TensorFlow, Keras and numpy). The same layers as
    the library's Keras model (multiblock.py), so the same features."""
    import keras
    from keras import ops

    multiblock = getattr(args, "backbone", "mobilenet_v1") == "face_region"
    base = keras.applications.MobileNet(input_shape=(args.size, args.size, 3), alpha=args.alpha, include_top=False,
                                        weights=args.weights, pooling=None if multiblock else "avg")
    if not multiblock:
        return base
    pooled = []
    for b in FACE_REGION["blocks"]:
        x = base.get_layer(f"conv_pw_{b}_relu").output
        size, region = x.shape[1], FACE_REGION["region"]  # multiblock.central
        lo = round(size * (1.0 - region) / 2)
        hi = max(round(size * (1.0 + region) / 2), lo + 1)
        x = x[:, lo:hi, lo:hi, :]
        mean = ops.mean(x, axis=(1, 2))
        pooled += [mean, ops.sqrt(ops.maximum(ops.mean(ops.square(x), axis=(1, 2)) - ops.square(mean), 0.0) + 1e-6)]
    return keras.Model(base.input, ops.concatenate(pooled, axis=-1))


def tf_child(args: argparse.Namespace) -> None:
    """`--tf-child`: build the model on TensorFlow, check its features of the first batch against
    `--expected` (Keras-JAX's), warm up, then time one pass per line read from stdin."""
    import keras
    import tensorflow as tf

    _, batches = crops_and_batches(args)
    model = keras_model(args)
    forward = tf.function(lambda x: model(x, training=False), jit_compile=False)

    def run():
        return [forward(preprocess(batch)).numpy() for batch in batches]

    diff = float(np.abs(run()[0] - np.load(args.expected)).max())
    print(json.dumps({"ready": {"max_diff": diff, "tensorflow": tf.__version__, "keras": keras.__version__,
                                "numpy": np.__version__}}), flush=True)
    for _ in sys.stdin:
        print(json.dumps(clock(run)), flush=True)


def tf_importable(python: str) -> bool:
    if os.path.abspath(python) == os.path.abspath(sys.executable):  # not realpath: venvs link one python
        return importlib.util.find_spec("tensorflow") is not None
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"
    return subprocess.run([python, "-c", probe], capture_output=True, check=False).returncode == 0


#: What the TensorFlow child reported when it was ready (versions, its features' difference).
TF_CHILD: dict = {}


def tf_pass(args: argparse.Namespace) -> Pass | None:
    """Row (c): a pass timed by a child process (`args.tf_python`, default this interpreter) on the
    TensorFlow backend; None where TensorFlow is not importable there. Call it after `workloads`
    (Keras is imported on JAX here: Keras-JAX's features of the first batch are the reference)."""
    python = getattr(args, "tf_python", None) or sys.executable
    if not tf_importable(python):
        print(f"tensorflow is not importable by {python}: skipping the tf.function row (see --tf-python)")
        return None
    from deepfake_detect.pretrained import weights_path

    stock = backbone(args, fast_depthwise=False)
    expected = Path(tempfile.mkdtemp(prefix="embed_bench_")) / "expected.npy"
    np.save(expected, stock.model.predict(stock.preprocess(crops_and_batches(args)[1][0]), verbose=0))
    weights = weights_path(args.weights)
    argv = [python, __file__, "--tf-child", "--expected", str(expected), "--alpha", str(args.alpha),
            "--size", str(args.size), "--batch", str(args.batch), "--batches", str(args.batches),
            "--backbone", getattr(args, "backbone", "mobilenet_v1"), "--weights", "none" if weights is None else str(weights)]
    child = subprocess.Popen(argv, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"})

    def reply() -> str:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the TensorFlow child process failed (exit code {child.wait()})")
        return line.strip()

    while not (line := reply()).startswith('{"ready"'):
        pass
    TF_CHILD.update(json.loads(line)["ready"])
    shutil.rmtree(expected.parent, ignore_errors=True)
    print(f"tf.function child ({python}): TensorFlow {TF_CHILD['tensorflow']}, max |tf.function - keras-jax| "
          f"over {args.batch} crops: {TF_CHILD['max_diff']:.2e}")

    def run() -> tuple[float, float]:
        child.stdin.write("go\n")
        child.stdin.flush()
        return tuple(json.loads(reply()))

    return run


def versions() -> dict[str, str]:
    found = {}
    for name in ("keras", "jax", "jaxlib", "tensorflow", "tensorflow-cpu"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=4, help="batches a timed pass embeds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS) if DEFAULT_WEIGHTS.exists() else None,
                        help="weights file (default: the shared 0.5 file if present, else random weights)")
    parser.add_argument("--backbone", choices=("mobilenet_v1", "face_region"), default="mobilenet_v1",
                        help="mobilenet_v1 (pooled last block) or the face_region preset's multiblock backbone")
    parser.add_argument("--tf-python", metavar="PATH",
                        help="interpreter of the tf.function child: one that imports tensorflow, keras and numpy "
                             "(default: this one)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "embed.json")
    parser.add_argument("--tf-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--expected", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.weights in ("none", "None"):
        args.weights = None
    if args.tf_child:
        return tf_child(args)

    passes: dict[str, Pass] = {name: (lambda fn=fn: clock(fn)) for name, fn in workloads(args, "jax").items()}
    if (tf := tf_pass(args)) is not None:
        passes["tf.function"] = tf
    load_before = os.getloadavg()
    for run in passes.values():  # warm-up
        run()
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in passes}
    for _ in range(args.repeats):
        for name, run in passes.items():
            timings[name].append(run())
    n = args.batches * args.batch
    rows = {name: {"best": n / min(t)[0], "median": n / float(np.median([wall for wall, _ in t])),
                   "cpu_ms_per_face": 1000 * min(t)[1] / n} for name, t in timings.items()}

    base, tf_best = rows["keras-jax"]["best"], rows.get("tf.function", {}).get("best")
    print(f"\n{args.backbone} {args.alpha}@{args.size}, batch {args.batch}, {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{'row':12s} {'best faces/s':>13s} {'median':>8s} {'vs keras-jax':>13s} {'vs tf.function':>15s} "
          f"{'CPU ms/face':>12s}")
    for name, r in rows.items():
        vs_tf = f"{r['best'] / tf_best:14.2f}x" if tf_best else f"{'-':>15s}"
        print(f"{name:12s} {r['best']:13.1f} {r['median']:8.1f} {r['best'] / base:12.2f}x {vs_tf} "
              f"{r['cpu_ms_per_face']:12.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "tf_child", "expected")},
              "cpus": os.cpu_count(), "load_average": {"before": load_before, "after": os.getloadavg()},
              "versions": versions(), "tf_child": TF_CHILD, "faces_per_s": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
