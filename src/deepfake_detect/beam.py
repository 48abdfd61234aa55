"""Extraction and scoring of a whole collection on Apache Beam (``pip install "deepfake-detect[beam]"``).

`run` builds and runs one pipeline::

    collection ─► inputs ─► Reshuffle ─► ExtractRows (per worker: one extractor, or one loaded
                                          model, built in DoFn.setup) ─► (shard, row)
               ─► GroupByKey ─► WriteShards: <kind>-SSSSS-of-NNNNN.parquet (+ .jsonl) in OUTPUT

- The collection is a dataset folder or a ``labels.csv`` (listed where the pipeline is
  launched: labels and groups as `discover` finds them), or a text file of paths, one a line,
  read with Beam's ``ReadFromText`` (so through Beam's file systems: ``gs://``, ``s3://``,
  ``hdfs://`` where their Beam extras are installed). An input on such a file system is copied
  to a local temporary file on the worker before it is read.
- Each worker runs exactly the local code (`bulk.extract_rows`: `FeatureExtractor.extract_many`
  with no cache) on the inputs of a bundle, `batch` at a time, so the next input's decoding
  overlaps this one's detection and embedding as it does locally. Embedding stays per input:
  the backbone pads each input's crops to its own batch size, so features are bit-identical
  to the local path's (crops of several inputs in one batch would change the padding, and
  the last bits of the features with it).
- A corrupt, empty or unreadable input becomes a row with status "error" (its exception's
  type and message), an input without a face one with status "no_face"; the job goes on.
  Beam counters ``deepfake_detect:{ok,no_face,error}`` count them and distributions
  ``deepfake_detect:{decode,detect,crop,embed}_ms`` time the stages per input.
- Rows are keyed by ``video_id``: each shard is written whole, by one worker, from the
  grouped rows of its ids, one row per id (a retried bundle cannot count an input twice),
  sorted; a shard is written under a temporary name and renamed. The same collection and
  configuration give the same files.
- With a model (``kind="predictions"``), each worker loads the model once and writes its
  verdicts (`DeepfakeDetector.verdict`: what `predict_video` gives) as predictions shards.

Pipeline options (``beam_args``) pass through to Beam unchanged; without a ``--runner`` the
pipeline runs on the DirectRunner with 2 worker processes (`DIRECT_DEFAULTS`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

try:
    import apache_beam
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('deepfake_detect.beam needs Apache Beam: pip install "deepfake-detect[beam]"') from e
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from . import _backend  # noqa: F401  (before Keras is imported)
from . import bulk, shards
from .detector import DeepfakeDetector
from .shards import Item

#: Options added where `beam_args` name no runner, or the DirectRunner without a worker count.
DIRECT_DEFAULTS = ("--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing",
                   "--default_sdk_harness_log_level=WARNING")
NAMESPACE = "deepfake_detect"


def pipeline_options(beam_args: Sequence[str] = ()) -> PipelineOptions:
    """`PipelineOptions` from command-line style arguments, the DirectRunner's defaults added
    where no other runner is named (see `DIRECT_DEFAULTS`)."""
    args = list(beam_args)
    runner = PipelineOptions(args).get_all_options().get("runner")
    if runner in (None, "DirectRunner", "direct", "BundleBasedDirectRunner"):
        given = {a.split("=")[0] for a in args if a.startswith("--")}
        args = [d for d in DIRECT_DEFAULTS if d.split("=")[0] not in given] + args
    return PipelineOptions(args)


def _remote(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


@contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local path holding the bytes of `path`: itself where local, else a temporary copy made
    through Beam's file systems (removed on exit)."""
    if not _remote(path):
        yield str(path).removeprefix("file://")
        return
    suffix = os.path.splitext(path)[1]
    fd, local = tempfile.mkstemp(suffix=suffix, prefix="deepfake_detect-")
    try:
        with os.fdopen(fd, "wb") as out, FileSystems.open(path) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        yield local
    finally:
        os.unlink(local)


def _with_local_weights(config: dict[str, Any], stack: ExitStack) -> dict[str, Any]:
    """`config` with a backbone weights file on a remote file system replaced by a local copy."""
    backbone = config.get("backbone")
    if isinstance(backbone, dict) and isinstance(backbone.get("weights"), str) and _remote(backbone["weights"]):
        config = {**config, "backbone": {**backbone, "weights": stack.enter_context(local_copy(backbone["weights"]))}}
    return config


class ExtractRows(apache_beam.DoFn):
    """`Item` → its features row (or, given `model`, its predictions row); one extractor or model
    per worker, built in `setup`; inputs taken `batch` at a time within a bundle."""

    def __init__(self, kind: str, config: dict[str, Any] | None = None, model: str | None = None,
                 weights: str | None = None, batch: int = 8, fingerprint: str | None = None):
        if kind not in shards.KINDS:
            raise ValueError(f"kind must be one of {shards.KINDS}; got {kind!r}")
        if (kind == "predictions") != (model is not None):
            raise ValueError("predictions need a model file; features need none")
        self.kind, self.config, self.model, self.weights = kind, config, model, weights
        self.batch, self.fingerprint = max(1, int(batch)), fingerprint

    def setup(self) -> None:
        self._stack = ExitStack()
        if self.kind == "features":
            config = _with_local_weights(dict(self.config or {}), self._stack)
            self._detector = DeepfakeDetector(**config, cache=None)
        else:
            model = self._stack.enter_context(local_copy(self.model))
            weights = self._stack.enter_context(local_copy(self.weights)) if self.weights else None
            self._detector = DeepfakeDetector.load(model, backbone_weights=weights, cache=None)
        found = self._detector.extractor.fingerprint
        if self.fingerprint is not None and found != self.fingerprint:
            raise RuntimeError(f"this worker's extractor computes fingerprint {found}, the launcher's "
                               f"{self.fingerprint}: the weights or the library differ between them")
        self._counters = {s: Metrics.counter(NAMESPACE, s) for s in shards.STATUSES}
        self._stages = {s: Metrics.distribution(NAMESPACE, f"{s}_ms") for s in bulk.TIMED}

    def teardown(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()

    def start_bundle(self) -> None:
        self._pending: list[Item] = []

    def process(self, item: Item):
        self._pending.append(item)
        if len(self._pending) >= self.batch:
            yield from self._flush()

    def finish_bundle(self):
        for row in self._flush():
            yield WindowedValue(row, MIN_TIMESTAMP, (GlobalWindow(),))

    def _flush(self) -> Iterator[dict[str, Any]]:
        items, self._pending = self._pending, []
        if not items:
            return
        with ExitStack() as stack:
            local = []
            for item in items:
                try:
                    local.append(stack.enter_context(local_copy(item.path)))
                except Exception as e:  # noqa: BLE001 - an input that cannot be fetched is an error row
                    local.append(None)
                    yield self._count(self._error_row(item, e))
            fetched = [(it, p) for it, p in zip(items, local) if p is not None]
            if not fetched:
                return
            make = bulk.extract_rows if self.kind == "features" else bulk.prediction_rows
            source = self._detector.extractor if self.kind == "features" else self._detector
            for row, spent in make(source, [it for it, _ in fetched], [p for _, p in fetched]):
                for stage, seconds in spent.items():
                    if stage in self._stages:
                        self._stages[stage].update(int(round(seconds * 1000)))
                yield self._count(row)

    def _error_row(self, item: Item, error: BaseException) -> dict[str, Any]:
        make = shards.features_row if self.kind == "features" else shards.prediction_row
        return make(item, None, None, error)

    def _count(self, row: dict[str, Any]) -> dict[str, Any]:
        self._counters[row["status"]].inc()
        return row


class WriteShard(apache_beam.DoFn):
    """``(shard, rows)`` → the shard's file(s) in `output`, written whole and renamed into place."""

    def __init__(self, kind: str, output: str, num_shards: int, meta: dict[str, Any],
                 suffixes: Sequence[str] = ("parquet",)):
        self.kind, self.output, self.num_shards = kind, output, num_shards
        self.meta, self.suffixes = meta, tuple(suffixes)

    def process(self, keyed):
        shard, rows = keyed
        rows = list(rows)
        for suffix in self.suffixes:
            path = FileSystems.join(self.output, shards.shard_name(self.kind, shard, self.num_shards, suffix))
            tmp = FileSystems.join(self.output, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
            with FileSystems.create(tmp) as f:
                f.write(shards.encode(self.kind, rows, self.meta, suffix))
            if FileSystems.exists(path):
                FileSystems.delete([path])
            FileSystems.rename([tmp], [path])
            yield path


def read_inputs(pipeline, collection: str):
    """The `Item`s of `collection` as a PCollection, and how many there are (None where
    unknown until read: a text file of paths)."""
    if not _remote(collection) and not bulk.is_path_list(collection):
        items = bulk.list_collection(collection)
    elif collection.lower().endswith(".csv"):
        with FileSystems.open(collection) as f:
            text = f.read().decode("utf-8")
        items = bulk.parse_labels_csv(text, collection.rsplit("/", 1)[0], FileSystems.join)
    else:
        paths = (pipeline | "ReadPaths" >> apache_beam.io.ReadFromText(collection)
                 | "Strip" >> apache_beam.Map(str.strip)
                 | "SkipBlank" >> apache_beam.Filter(lambda line: bool(line) and not line.startswith("#"))
                 | "Items" >> apache_beam.Map(lambda line: Item(line, line)))
        return paths | "Spread" >> apache_beam.Reshuffle(), None
    return pipeline | "Inputs" >> apache_beam.Create(items), len(items)


def run(collection: str | os.PathLike, output: str | os.PathLike, config: dict[str, Any] | None = None,
        model: str | os.PathLike | None = None, weights: str | None = None, beam_args: Sequence[str] = (),
        num_shards: int = 0, batch: int = 8, jsonl: bool | None = None) -> dict[str, Any]:
    """Extract the features of every input of `collection` with the detector `config` (or, with
    `model`, a saved model file, predict them) on Beam, into shards in the folder `output`.

    Args:
        config: `DeepfakeDetector` arguments (``DeepfakeDetector.get_config()``); features only.
        model: a saved model (`DeepfakeDetector.save`): predictions instead of features.
        weights: another copy of the model's backbone weights file.
        beam_args: Beam pipeline options, command-line style (``["--runner=FlinkRunner", ...]``).
        num_shards: shards to write (0: one per 1,000 inputs, 16 for a text file of paths).
        batch: inputs a worker takes at a time within a bundle.
        jsonl: also write each shard as JSON Lines (default: for predictions).

    Returns the summary (also written to ``summary.json`` in `output`): inputs, how many are
    "ok", "no_face" and "error", the shards, the fingerprint, the wall time and the Beam
    metrics (seconds per stage, summed over inputs).
    """
    kind = "features" if model is None else "predictions"
    collection, output = str(collection), str(output)
    suffixes = ("parquet", "jsonl") if (kind == "predictions" if jsonl is None else jsonl) else ("parquet",)
    with ExitStack() as stack:  # the launcher computes the fingerprint the workers must agree with
        if model is None:
            local_config = _with_local_weights(dict(config or {}), stack)
            detector = DeepfakeDetector(**local_config, cache=None)
            meta_extra: dict[str, Any] = {}
        else:
            local_weights = stack.enter_context(local_copy(weights)) if weights else None
            detector = DeepfakeDetector.load(stack.enter_context(local_copy(str(model))),
                                             backbone_weights=local_weights, cache=None)
            meta_extra = {"model": detector.get_config()}
        extractor = detector.extractor
        fingerprint, stages = extractor.fingerprint, extractor.stages
    meta = shards.metadata(kind, fingerprint, stages, **meta_extra)
    _clear(output, kind)
    started = time.perf_counter()
    options = pipeline_options(beam_args)
    pipeline = apache_beam.Pipeline(options=options)
    inputs, n = read_inputs(pipeline, collection)
    num_shards = num_shards or bulk.auto_shards(n)
    model_arg = None if model is None else str(model)
    (inputs
     | "ExtractRows" >> apache_beam.ParDo(ExtractRows(kind, config if model is None else None, model_arg, weights,
                                                      batch, fingerprint))
     | "KeyByShard" >> apache_beam.Map(lambda row, n=num_shards: (shards.shard_of(row["video_id"], n), row))
     | "GroupByShard" >> apache_beam.GroupByKey()
     | "WriteShards" >> apache_beam.ParDo(WriteShard(kind, output, num_shards, meta, suffixes)))
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - started
    pattern = FileSystems.join(output, f"{kind}-*-of-*.parquet")
    files = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    counts = dict.fromkeys(shards.STATUSES, 0)
    for path in files:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            for status, k in shards.status_counts([f]).items():
                counts[status] = counts.get(status, 0) + k
    summary = bulk.summarize(kind, counts, files, fingerprint,
                             runner=options.get_all_options().get("runner") or "DirectRunner",
                             seconds=seconds, metrics=_metrics(result))
    with FileSystems.create(FileSystems.join(output, "summary.json")) as f:
        f.write((json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _clear(output: str, kind: str) -> None:
    """Remove the shards and summary of an earlier run of `kind` in `output`; create it."""
    if not _remote(output):
        os.makedirs(output, exist_ok=True)
        bulk.clear_output(output, [kind])
        return
    old = FileSystems.match([FileSystems.join(output, f"{kind}-*-of-*.*")])[0].metadata_list
    if old:
        FileSystems.delete([m.path for m in old])


def _metrics(result) -> dict[str, Any]:
    """The pipeline's counters and stage distributions (committed where the runner has them)."""
    try:
        queried = result.metrics().query()
    except Exception:  # noqa: BLE001 - a runner without metrics: the summary does without them
        return {}
    out: dict[str, Any] = {}
    for counter in queried.get("counters", []):
        if counter.key.metric.namespace == NAMESPACE:
            value = counter.committed if counter.committed is not None else counter.attempted
            out[counter.key.metric.name] = out.get(counter.key.metric.name, 0) + int(value)
    for dist in queried.get("distributions", []):
        if dist.key.metric.namespace == NAMESPACE:
            value = dist.committed if dist.committed is not None else dist.attempted
            name = dist.key.metric.name.removesuffix("_ms")
            seconds = out.setdefault("stage_seconds", {})
            seconds[name] = seconds.get(name, 0.0) + value.sum / 1000
    return out
