"""The `deepfake-detect` command. Exit codes: 0 ok, 1 bad input, 2 usage error.

Results go to standard output; progress and messages go to standard error, so
``--json`` and ``--csv`` output can be piped.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import click

from . import _backend  # before Keras is imported
from .detector import DeepfakeDetector
from .errors import DeepfakeDetectError, SaveError

PART_HELP = "a registry name, optionally with arguments: NAME or NAME:key=value,key=value"


def parse_part(text: str | None) -> str | dict | None:
    """'uniform:n=16' → {"name": "uniform", "n": 16}; 'uniform' → "uniform"."""
    if text is None or ":" not in text:
        return text
    name, _, args = text.partition(":")
    spec: dict = {"name": name}
    for pair in filter(None, args.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not key=value (in {text!r})")
        try:
            spec[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            spec[key.strip()] = value
    return spec


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(1)


class _Group(click.Group):
    """Turns the library's own errors into a one-line message and exit code 1."""

    def invoke(self, ctx):
        shown = warnings.formatwarning
        warnings.formatwarning = _one_line_warning
        try:
            return super().invoke(ctx)
        except (DeepfakeDetectError, FileNotFoundError) as e:
            _fail(e)
        finally:
            warnings.formatwarning = shown


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepfake-detect")
def main() -> None:
    """Tell real videos from deepfakes: fit a detector on a labelled folder, predict videos."""
    # The command is a process of our own: keep JAX's compiled programs across runs (see _backend).
    os.environ.setdefault(_backend.JAX_CACHE_ENV_VAR, "default")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line on standard error ("warning: ..."), not Python's two with the source line."""
    return f"warning: {message}\n"


def _set_cache_max_bytes(ctx, param, value):
    """``--cache-max-bytes``: checked, then handed to the cache through its environment variable."""
    if value is not None:
        from .cache import MAX_BYTES_ENV_VAR, max_bytes_setting

        try:
            max_bytes_setting(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
        os.environ[MAX_BYTES_ENV_VAR] = value
    return value


def cache_options(command):
    """``--cache PATH``, ``--no-cache`` and ``--cache-max-bytes``: the feature cache a command reads and fills."""
    command = click.option("--cache-max-bytes", default=None, expose_value=False, callback=_set_cache_max_bytes,
                           help="Cap on the cache's entries, e.g. 2GB or 500MB, or 'none' (default: "
                                "$DEEPFAKE_DETECT_CACHE_MAX_BYTES, else 2GB); least recently used entries go first.")(command)
    command = click.option("--no-cache", is_flag=True, help="No feature cache (as --cache none).")(command)
    return click.option("--cache", default="default", show_default=True,
                        help="Feature cache: 'default', a path, or 'none'.")(command)


def chosen_cache(cache: str, no_cache: bool) -> str | None:
    """The `cache` argument of `DeepfakeDetector` that `cache_options` give."""
    return None if no_cache or cache.lower() == "none" else cache


def pipeline_options(command):
    """The options that choose a detector's parts (shared by `fit` and `extract`)."""
    def part(flag: str, key: str, what: str):
        default = inspect.signature(DeepfakeDetector).parameters[key].default
        return click.option(flag, default=None, help=f"{what} (default: the preset's, else {default}): {PART_HELP}.")

    options = [
        click.option("--preset", default=None,
                     help="Start from a named configuration (see `deepfake-detect list presets`); the part options "
                          "below replace its parts."),
        part("--sampler", "sampler", "Frame sampler"),
        part("--face-detector", "face_detector", "Face detector"),
        part("--backbone", "backbone", "Backbone"),
        click.option("--weights", default=None, help="Backbone weights: 'imagenet' (downloads), a file path, or 'none'."),
        part("--head", "head", "Head"),
        part("--aggregator", "aggregator", "Aggregator"),
        cache_options,
        click.option("-q", "--quiet", is_flag=True, help="No progress output."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_detector(preset, sampler, face_detector, backbone, weights, head, aggregator, cache, no_cache):
    """A `DeepfakeDetector` from the `pipeline_options` values: `from_preset` with the parts
    given, else the constructor with them; `weights` replaces the backbone's weights."""
    from .presets import with_weights

    given = {"sampler": sampler, "face_detector": face_detector, "backbone": backbone, "head": head,
             "aggregator": aggregator}
    arguments = {key: parse_part(text) for key, text in given.items() if text is not None}
    arguments["cache"] = chosen_cache(cache, no_cache)
    weights_given = weights is not None
    if weights_given and weights.lower() == "none":
        weights = None
    if preset is not None:
        if weights_given:
            arguments["weights"] = weights
        try:
            return DeepfakeDetector.from_preset(preset, **arguments)
        except KeyError as e:  # the only one: an unknown preset
            raise click.BadParameter(str(e.args[0]), param_hint="--preset") from None
    detector = DeepfakeDetector(**arguments)
    if weights_given:
        detector.set_params(backbone=with_weights(detector.backbone, weights))
    return detector


@main.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to save the model.")
@click.option("--validation-split", default=0.0, show_default=True,
              help="Share of videos held out (grouped) for validation curves only; calibration and threshold are "
                   "cross-fitted over grouped folds, and the final head trains on every other video.")
@pipeline_options
def fit(data, output, validation_split, quiet, **parts):
    """Train a detector on DATA (real/ and fake/ folders, or a labels.csv) and save it. A preset
    trained by fine-tuning (its backbone too) is fine-tuned with its recipe."""
    detector = build_detector(**parts)
    preset = getattr(detector, "preset_", None)
    if preset is not None and preset.train == "fine_tune":
        history = detector.fine_tune(data, validation_split=validation_split, verbose=0 if quiet else 1)
    else:
        history = detector.fit(data, validation_split=validation_split, verbose=0 if quiet else 1)
    path = _save_or_keep(detector, output)
    final = {k: round(v[-1], 4) for k, v in history.history.items()}
    click.echo(f"saved {path} ({final})", err=True)


def scale_out_options(command):
    """``--runner``, ``--beam-options``, ``--output`` and ``--shards``: a bulk run of a whole
    collection into Parquet shards (`deepfake_detect.bulk`, `deepfake_detect.beam`)."""
    options = [
        click.option("--runner", type=click.Choice(["direct", "beam"]), default="direct", show_default=True,
                     help="direct: in this process; beam: an Apache Beam pipeline (pip install "
                          "\"deepfake-detect[beam]\"), on the DirectRunner with 2 worker processes unless "
                          "--beam-options name another runner."),
        click.option("--beam-options", default="", help="Beam pipeline options, passed on unchanged, e.g. "
                     "\"--runner=FlinkRunner --flink_master=host:8081\"."),
        click.option("--output", default=None, help="Folder (or a URL of Beam's file systems) for the Parquet "
                     "shards and summary.json; needed by --runner beam."),
        click.option("--shards", type=int, default=0, help="Shards to write (0: one per 1,000 inputs; 16 for a "
                     "list of paths read on Beam).  [default: 0]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _scale_out(detector, data, runner, beam_options, output, shards, quiet, model=None, weights=None):
    """A bulk run of `data` (features, or with `model` predictions) into shards in `output`."""
    import shlex

    from . import bulk

    if output is None:
        raise click.UsageError("--runner beam writes Parquet shards: give --output DIR")
    if runner == "beam":
        try:
            from . import beam
        except ImportError as e:
            raise click.UsageError(str(e)) from None
        config = detector.get_config() if model is None else None
        summary = beam.run(data, output, config=config, model=model, weights=weights,
                           beam_args=shlex.split(beam_options), num_shards=shards)
    else:
        if not Path(data).exists():
            raise click.BadParameter(f"{data} does not exist", param_hint="DATA")
        kind = "features" if model is None else "predictions"
        summary = bulk.run_local(detector, data, output, kind, num_shards=shards,
                                 verbose=0 if quiet else 1,
                                 suffixes=("parquet", "jsonl") if model is not None else ("parquet",))
    click.echo(f"{bulk.describe(summary)} in {output}", err=True)


def _scale_out_predict(model, inputs, weights, cache, quiet, runner, beam_options, output, shards):
    """`predict --output`/`--runner beam`: one collection's predictions as shards."""
    if len(inputs) != 1:
        raise click.UsageError("--output and --runner beam take one collection: a folder, a labels.csv or a text "
                               f"file of paths; got {len(inputs)} INPUTS")
    detector = None
    if runner != "beam":
        detector = DeepfakeDetector.load(model, backbone_weights=weights, cache=cache)
    _scale_out(detector, inputs[0], runner, beam_options, output, shards, quiet, model=model, weights=weights)


def _save_or_keep(detector: DeepfakeDetector, output: str) -> Path:
    """`detector.save(output)`; where that fails (a full disk), the trained model is saved in the
    temporary folder instead and the command fails with one line saying where it is."""
    try:
        return detector.save(output)
    except SaveError as e:
        try:
            kept = detector.save(Path(tempfile.mkdtemp(prefix="deepfake-detect-")) / Path(output).name)
        except SaveError:
            raise SaveError(f"{e} Nowhere else to keep it ({tempfile.gettempdir()} failed too): free space and fit "
                            "again (the features are cached, so only the head is trained again).") from e
        raise SaveError(f"{e} It was saved to {kept} instead: move it where it belongs.") from e


@main.command()
@click.argument("data", type=click.Path())
@pipeline_options
@scale_out_options
def extract(data, quiet, runner, beam_options, output, shards, **parts):
    """Fill the feature cache with the crops and features of every input of DATA (no training).
    With --output, write them as Parquet shards too; with --runner beam, on Apache Beam."""
    from .datasets import discover

    detector = build_detector(**parts)
    if output is not None or runner == "beam":
        return _scale_out(detector, data, runner, beam_options, output, shards, quiet)
    if not Path(data).is_dir():
        raise click.BadParameter(f"{data} is not a folder (a labels.csv or list of paths needs --output)",
                                 param_hint="DATA")
    if detector.extractor.cache is None:
        raise click.UsageError("extract only fills the cache: give --cache default or a path, not none")
    samples = discover(data)
    features = detector.extract_features([s.path for s in samples], 0 if quiet else 1, "extracting")
    faces = sum(len(f) for f in features)
    click.echo(f"{len(samples)} inputs, {faces} faces cached in {detector.extractor.cache.path}", err=True)


def _videos(inputs: tuple[str, ...]) -> list[Path]:
    from .video import is_media

    out: list[Path] = []
    for item in map(Path, inputs):
        out.extend(sorted(p for p in item.rglob("*") if p.is_file() and is_media(p)) if item.is_dir() else [item])
    return out


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON Lines).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@click.option("--weights", default=None, help="Another copy of the backbone's weights file.")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False),
              help="Write report.html and a timeline PNG of frame scores and faces here (one video only).")
@cache_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@scale_out_options
def predict(model, inputs, as_json, as_csv, weights, report_dir, cache, no_cache, quiet, **scale_out):
    """Predict each video or image in INPUTS (folders: every video in them) with MODEL. With
    --output, write the predictions of one collection as shards; with --runner beam, on Apache Beam."""
    from .errors import VideoReadError
    from .progress import progress

    if scale_out["output"] is not None or scale_out["runner"] == "beam":
        return _scale_out_predict(model, inputs, weights, chosen_cache(cache, no_cache), quiet, **scale_out)
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    videos = _videos(inputs)
    if report_dir is not None and len(videos) != 1:
        raise click.UsageError(f"--report draws one video; INPUTS hold {len(videos)}")
    detector = DeepfakeDetector.load(model, backbone_weights=weights, cache=chosen_cache(cache, no_cache))
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer:
        writer.writerow(["path", "label", "p_fake", "faces_found", "frames_sampled", "reason"])
    failed = 0
    for path in progress(videos, 0 if quiet else 1, "predicting"):
        try:
            pred = detector.predict_video(path)
        except VideoReadError as e:
            failed += 1
            click.echo(f"error: {e}", err=True)
            continue
        row = {"path": pred.path, "label": pred.label, "p_fake": pred.p_fake, "faces_found": pred.faces_found,
               "frames_sampled": pred.frames_sampled, "reason": pred.reason}
        if as_json:
            click.echo(json.dumps(row))
        elif writer:
            writer.writerow(row.values())
        else:
            shown = "   -  " if pred.p_fake is None else f"{pred.p_fake:.3f}"
            click.echo(f"{pred.label:8} {shown}  {pred.path}" + (f"  ({pred.reason})" if pred.reason else ""))
        if report_dir is not None:
            from .report import write_prediction_report

            click.echo(f"report: {write_prediction_report(pred, report_dir)}", err=True)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="The metrics as JSON.")
@click.option("--weights", default=None, help="Another copy of the backbone's weights file.")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False),
              help="Write report.html and PNG figures (ROC, scores, confusion, timelines) here.")
@cache_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def evaluate(model, data, as_json, weights, report_dir, cache, no_cache, quiet):
    """Measure MODEL on the labelled dataset DATA (frame and video metrics)."""
    import shlex

    detector = DeepfakeDetector.load(model, backbone_weights=weights, cache=chosen_cache(cache, no_cache))
    report = detector.evaluate(data, verbose=0 if quiet else 1)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        click.echo(report.summary())
    if report_dir is not None:
        from .report import write_evaluation_report

        words = [*click.get_current_context().command_path.split(), model, data, "--report", report_dir]
        command = shlex.join(words + (["--weights", weights] if weights else []))
        click.echo(f"report: {write_evaluation_report(report, report_dir, command=command)}", err=True)


@main.command("list")
@click.argument("kind", type=click.Choice(["samplers", "detectors", "backbones", "heads", "aggregators", "presets"]))
def list_parts(kind):
    """List the registered parts of one KIND, or the presets with their descriptions."""
    import deepfake_detect as dd

    if kind == "presets":
        click.echo("\n".join(f"{name}: {about}" for name, about in dd.list_presets().items()))
        return
    names = {"samplers": dd.list_samplers, "detectors": dd.list_face_detectors, "backbones": dd.list_backbones,
             "heads": dd.list_heads, "aggregators": dd.list_aggregators}[kind]()
    click.echo("\n".join(names))


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
def info(model):
    """Show what a saved MODEL is made of: its parts, fingerprints and versions."""
    from .saving import read_model

    saved = read_model(model, arrays=False)  # checked as `load` checks it, without reading the arrays
    click.echo(json.dumps({"config": saved.config, "metadata": saved.metadata}, indent=2))


@main.group()
@click.option("--path", default="default", show_default=True, help="The cache: 'default' or a path.")
@click.option("--cache-max-bytes", default=None, expose_value=False, callback=_set_cache_max_bytes,
              help="The cap its info shows and its writes keep to, as in predict (default: "
                   "$DEEPFAKE_DETECT_CACHE_MAX_BYTES, else 2GB).")
@click.pass_context
def cache(ctx, path):
    """Inspect and manage the feature cache."""
    from .cache import open_cache

    opened = open_cache(path)
    if opened is None:
        raise click.UsageError("the cache is switched off (DEEPFAKE_DETECT_CACHE=none); give --path")
    ctx.obj = opened


@cache.command("info")
@click.pass_obj
def cache_info(store):
    """Path, entries, size, bytes stored against the cap, and entries per fingerprint (JSON)."""
    click.echo(json.dumps(store.info(), indent=2))


@cache.command("prune")
@click.option("--older-than", "older_than_days", type=float, default=None, help="Drop entries unused for DAYS.")
@click.option("--fingerprint", default=None, help="Drop the entries of this fingerprint.")
@click.option("--max-bytes", type=int, default=None, help="Then drop least recently used entries down to this size.")
@click.pass_obj
def cache_prune(store, older_than_days, fingerprint, max_bytes):
    """Drop entries by age, fingerprint or total size."""
    if older_than_days is None and fingerprint is None and max_bytes is None:
        raise click.UsageError("say what to prune: --older-than, --fingerprint and/or --max-bytes")
    removed = store.prune(older_than_days=older_than_days, fingerprint=fingerprint, max_bytes=max_bytes)
    click.echo(f"removed {removed} entries", err=True)


@cache.command("clear")
@click.confirmation_option(prompt="Delete every entry of the cache?")
@click.pass_obj
def cache_clear(store):
    """Delete every entry."""
    store.clear()
    click.echo(f"cleared {store.path}", err=True)


@cache.command("verify")
@click.option("--drop", is_flag=True, help="Delete the bad entries found.")
@click.pass_obj
def cache_verify(store, drop):
    """Check every entry's checksum and shape; exit 1 if bad entries remain."""
    bad = store.verify(drop=drop)
    for key in bad:
        click.echo(key)
    click.echo(f"{len(bad)} bad entries" + (" dropped" if drop and bad else ""), err=True)
    if bad and not drop:
        sys.exit(1)


@cache.command("import")
@click.argument("shards", nargs=-1, required=True)
@click.pass_obj
def cache_import(store, shards):
    """Fill the cache with the features of Parquet SHARDS (files, folders or glob patterns) written by
    `extract --output`, so fit, evaluate and cross-validation on those inputs extract nothing."""
    try:
        counts = store.import_shards(list(shards))
    except ImportError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"imported {counts['ok'] + counts['no_face']} inputs ({counts['no_face']} without a face) from "
               f"{counts['files']} shard(s) into {store.path}; {counts['error']} error rows skipped", err=True)
