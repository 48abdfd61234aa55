"""Embedding throughput (faces/s) of MobileNet V1 on CPU: stock Keras-JAX, our backbone, TensorFlow.

    PYTHONPATH=src .venv/bin/python benchmarks/embed.py [--alpha 0.5] [--size 128] [--batch 64]
        [--batches 4] [--repeats 5] [--weights PATH] [--out benchmarks/results/embed.json]

Rows, all on the same uint8 crops with the same preprocessing, `--batches` x `--batch` crops a pass:
  (a) keras-jax   `keras.applications.MobileNet(...).predict(x, batch_size)` on Keras' JAX backend
  (b) embed       `MobileNetV1(...).embed(batch)` for each batch: this library (fast depthwise
                  convolutions; embed splits a batch into its own buckets)
  (c) tf.function the same Keras model on the TensorFlow backend in a `tf.function` (no XLA), in a
                  child process; the row is skipped when TensorFlow is not importable.
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
import subprocess
import sys
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


def workloads(args: argparse.Namespace, backend: str) -> dict[str, Callable[[], object]]:
    """This process's rows, each a pass over the crops; Keras must not be imported yet."""
    os.environ["KERAS_BACKEND"] = backend
    from deepfake_detect.backbones import MobileNetV1

    crops = np.random.default_rng(0).integers(0, 256, (args.batches * args.batch, args.size, args.size, 3), np.uint8)
    batches = [crops[i:i + args.batch] for i in range(0, len(crops), args.batch)]
    stock = MobileNetV1(alpha=args.alpha, input_size=args.size, weights=args.weights, fast_depthwise=False)
    if backend == "tensorflow":
        import tensorflow as tf

        forward = tf.function(lambda x: stock.model(x, training=False), jit_compile=False)
        return {"tf.function": lambda: [forward(stock.preprocess(batch)).numpy() for batch in batches]}
    ours = MobileNetV1(alpha=args.alpha, input_size=args.size, weights=args.weights)
    diff = np.abs(ours.embed(batches[0]) - stock.model.predict(stock.preprocess(batches[0]), verbose=0)).max()
    print(f"max |embed - keras-jax| over {args.batch} crops: {diff:.2e}")
    return {
        "keras-jax": lambda: stock.model.predict(stock.preprocess(crops), batch_size=args.batch, verbose=0),
        "embed": lambda: [ours.embed(batch) for batch in batches],
    }


def tf_child(args: argparse.Namespace) -> None:
    """`--tf-child`: warm up the TensorFlow row, then time one pass per line read from stdin."""
    run = workloads(args, "tensorflow")["tf.function"]
    run()
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(clock(run)), flush=True)


def tf_pass(args: argparse.Namespace) -> Pass | None:
    """Row (c): a pass timed by a child process on the TensorFlow backend; None without TensorFlow."""
    if importlib.util.find_spec("tensorflow") is None:
        print("tensorflow is not importable: skipping the tf.function row")
        return None
    child = subprocess.Popen([sys.executable, __file__, "--tf-child", *sys.argv[1:]], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"})

    def reply() -> str:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the TensorFlow child process failed (exit code {child.wait()})")
        return line.strip()

    while reply() != "ready":
        pass

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
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "embed.json")
    parser.add_argument("--tf-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
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
    print(f"\nMobileNet V1 {args.alpha}@{args.size}, batch {args.batch}, {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{'row':12s} {'best faces/s':>13s} {'median':>8s} {'vs keras-jax':>13s} {'vs tf.function':>15s} "
          f"{'CPU ms/face':>12s}")
    for name, r in rows.items():
        vs_tf = f"{r['best'] / tf_best:14.2f}x" if tf_best else f"{'-':>15s}"
        print(f"{name:12s} {r['best']:13.1f} {r['median']:8.1f} {r['best'] / base:12.2f}x {vs_tf} "
              f"{r['cpu_ms_per_face']:12.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "tf_child")},
              "cpus": os.cpu_count(), "load_average": {"before": load_before, "after": os.getloadavg()},
              "versions": versions(), "faces_per_s": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
