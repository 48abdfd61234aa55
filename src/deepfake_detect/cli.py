"""The `deepfake-detect` command. Exit codes: 0 ok, 1 bad input, 2 usage error.

Results go to standard output; progress and messages go to standard error, so
``--json`` and ``--csv`` output can be piped. The library's errors are one line
(``--debug`` shows their traceback).
"""

from __future__ import annotations

import contextlib
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
    """Turns the library's own errors into a one-line message and exit code 1 (with ``--debug``,
    they raise with their traceback)."""

    def parse_args(self, ctx, args):
        ctx.meta["deepfake_detect.argv"] = list(args)  # the command line, as given, for reports
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        shown = warnings.formatwarning
        warnings.formatwarning = _one_line_warning
        try:
            return super().invoke(ctx)
        except (DeepfakeDetectError, FileNotFoundError) as e:
            if ctx.params.get("debug"):
                raise
            _fail(e)
        finally:
            warnings.formatwarning = shown


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepfake-detect")
@click.option("--debug", is_flag=True, help="Show the traceback of an error, not only its message.")
def main(debug: bool) -> None:
    """Tell real videos from deepfakes: `deepfake-detect predict clip.mp4` checks a video with the
    pretrained model; fit a detector of your own on a labelled folder with `fit`."""
    # The command is a process of our own: keep JAX's compiled programs across runs (see _backend).
    os.environ.setdefault(_backend.JAX_CACHE_ENV_VAR, "default")
    if not debug:  # a warning is one line that says what happened, not where in the code
        import warnings

        original = warnings.formatwarning
        warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
        click.get_current_context().call_on_close(lambda: setattr(warnings, "formatwarning", original))


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
        click.option("--weights", default=None,
                     help="Backbone weights: 'imagenet' (downloads), 'bundled' (shipped, MobileNet V1 0.5), a file "
                          "path, or 'none'."),
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
    elif weights_given and os.path.isfile(weights):
        weights = os.path.abspath(weights)  # the saved model keeps a path that works from any folder
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
    """The media files of INPUTS: files as given, folders searched (any depth); an empty folder
    is a usage error, not a silent success."""
    from .video import is_media

    out: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and is_media(p))
            if not found:
                raise DeepfakeDetectError(f"{item}: no videos or images in this folder (or below it)")
            out.extend(found)
        else:
            out.append(item)
    return out


def _is_model_file(arg: str) -> bool:
    """Whether a command's first argument names a saved model (a .dfd file, which loading then
    checks: a missing file, a FIFO or a device is refused there) rather than an input."""
    return arg.lower().endswith(".dfd")


def model_options(command):
    """``--weights`` and ``--allow-fingerprint-mismatch``: how a saved model's backbone is loaded."""
    command = click.option("--allow-fingerprint-mismatch", is_flag=True,
                           help="Use the backbone even where its weights differ from those the model was trained "
                                "with (warned).")(command)
    return click.option("--weights", default=None,
                        help="The backbone's weights file, where the model's own cannot be found.")(command)


def open_model(model: str | None, weights: str | None, allow_mismatch: bool, cache: str | None) -> DeepfakeDetector:
    """A saved model, or the pretrained one (`model` None)."""
    from .pretrained import model_file

    pretrained = model is None
    model = str(model_file("default")) if pretrained else model
    detector = DeepfakeDetector.load(model, backbone_weights=weights, allow_fingerprint_mismatch=allow_mismatch,
                                     cache=cache)
    detector.model_name_ = "default (pretrained)" if pretrained else Path(model).name
    return detector


def _command_line() -> str:
    """The command line that is running, as typed (for a report, so that it can be rerun)."""
    import shlex

    ctx = click.get_current_context()
    return shlex.join(["deepfake-detect", *ctx.meta.get("deepfake_detect.argv", [])])


@main.command()
@click.argument("args", nargs=-1, required=True, type=click.Path(), metavar="[MODEL] INPUTS...")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input (JSON Lines).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Call a video fake at p_fake >= this (default: the model's, 0.5).")
@click.option("--inconclusive", type=(float, float), default=None, metavar="LOW HIGH",
              help="Call a video inconclusive where LOW <= p_fake <= HIGH.")
@model_options
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False),
              help="Write a report page here: report.html for one input; for several, one page each in a "
                   "subfolder and index.html linking them.")
@click.option("--explain", is_flag=True,
              help="With --report: occlusion maps of the 3 most suspicious frames (what moved the score).")
@cache_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@scale_out_options
def predict(args, as_json, as_csv, threshold, inconclusive, weights, allow_fingerprint_mismatch, report_dir, explain,
            cache, no_cache, quiet, **scale_out):
    """Check each video or image of INPUTS (folders: every video in them) with MODEL, a saved .dfd
    model, or without MODEL with the pretrained model shipped with deepfake-detect. With --output,
    write the predictions of one collection as shards; with --runner beam, on Apache Beam.

    p_fake is the model's score (0 to 1) that a video is a deepfake; the verdict is fake at or
    above the threshold, real below it, inconclusive inside the --inconclusive band, unknown
    without a face. A score is evidence, not proof: see `deepfake-detect info`."""
    from .errors import VideoReadError
    from .progress import progress
    from .verdict import checked, operating_point

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if explain and report_dir is None:
        raise click.UsageError("--explain draws into a report: give --report DIR too")
    model, inputs = (args[0], args[1:]) if _is_model_file(args[0]) else (None, args)
    if not inputs:
        raise click.UsageError(f"{args[0]} is a model: give the videos or images to check after it")
    if scale_out["output"] is not None or scale_out["runner"] == "beam":
        from .pretrained import model_file

        return _scale_out_predict(model or str(model_file("default")), inputs, weights, chosen_cache(cache, no_cache),
                                  quiet, **scale_out)
    try:
        checked(threshold if threshold is not None else 0.5, inconclusive)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--inconclusive") from None
    videos = _videos(inputs)
    detector = open_model(model, weights, allow_fingerprint_mismatch, chosen_cache(cache, no_cache))
    about = {"name": detector.model_name_, "fingerprint": detector.fingerprint_,
             "backbone": detector.part("backbone").registry_name}
    writer = csv.writer(sys.stdout) if as_csv else None
    columns = ["path", "label", "p_fake", "threshold", "inconclusive", "faces_found", "frames_sampled", "reason",
               "error"]
    if writer:
        writer.writerow(columns)
    elif not as_json:
        decision = operating_point(detector, threshold, inconclusive)
        point = f"fake at p_fake >= {decision.threshold:.3g}"
        if decision.inconclusive:
            point += f", inconclusive for {decision.inconclusive[0]:.3g} <= p_fake <= {decision.inconclusive[1]:.3g}"
        click.echo(f"# model {about['name']} (fingerprint {about['fingerprint']}); p_fake: the model's score (0-1) "
                   f"that the video is a deepfake; {point}. A score is evidence, not proof.")
        click.echo(f"# {'p_fake':>6}    {'verdict':12} {'faces':>7}  input")
    failed, pages = 0, []
    many = len(videos) > 1
    # closed however the loop ends: its last features are committed, its decoding thread joined
    with contextlib.closing(detector.predict_videos(videos, threshold=threshold, inconclusive=inconclusive)) as predictions:
        for k, (pred, path) in enumerate(zip(progress(predictions, 0 if quiet else 1, "predicting", total=len(videos)),
                                             videos), start=1):  # the stream first: it ends, and commits, on its own
            if isinstance(pred, VideoReadError):
                e = pred
                failed += 1
                click.echo(f"error: {e}", err=True)
                row = dict.fromkeys(columns)
                row.update(path=str(path), label="error", error=str(e))
                pages.append({**row, "report": None})
                if as_json:
                    click.echo(json.dumps(row))
                elif writer:
                    writer.writerow(row.values())
                else:
                    click.echo(f"  {'-':>6} -> {'error':12} {'':>7}  {path}  ({e})")
                continue
            row = {"path": pred.path, "label": pred.label, "p_fake": pred.p_fake, "threshold": pred.threshold,
                   "inconclusive": list(pred.inconclusive) if pred.inconclusive else None,
                   "faces_found": pred.faces_found, "frames_sampled": pred.frames_sampled, "reason": pred.reason,
                   "error": None}
            if as_json:
                click.echo(json.dumps(row))
            elif writer:
                writer.writerow([" ".join(map(str, v)) if isinstance(v, list) else v for v in row.values()])
            else:
                shown = "   -  " if pred.p_fake is None else f"{pred.p_fake:.3f}"
                faces = f"{pred.faces_found}/{pred.frames_sampled}"
                click.echo(f"  {shown:>6} -> {pred.label:12} {faces:>7}  {pred.path}"
                           + (f"  ({pred.reason})" if pred.reason else ""))
            if report_dir is not None:
                from .report import write_prediction_report

                out = Path(report_dir) / (f"{k:03d}_{Path(path).stem}" if many else "")
                explanations = None
                if explain and pred.frames:
                    from .explain import most_suspicious, occlusion_maps

                    explanations = occlusion_maps(detector, path, most_suspicious(pred))
                page = write_prediction_report(pred, out, model=about, command=_command_line(),
                                               explanations=explanations)
                pages.append({"path": pred.path, "label": pred.label, "p_fake": pred.p_fake,
                              "faces": f"{pred.faces_found} / {pred.frames_sampled}",
                              "report": str(page.relative_to(report_dir))})
                if not many:
                    click.echo(f"report: {page}", err=True)
    if report_dir is not None and many:
        from .report import write_index

        click.echo(f"report: {write_index(pages, report_dir, command=_command_line())}", err=True)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("args", nargs=-1, required=True, type=click.Path(exists=True), metavar="[MODEL] DATA")
@click.option("--json", "as_json", is_flag=True, help="The metrics as JSON.")
@model_options
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False),
              help="Write report.html and PNG figures (ROC, scores, confusion, timelines) here.")
@cache_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def evaluate(args, as_json, weights, allow_fingerprint_mismatch, report_dir, cache, no_cache, quiet):
    """Measure MODEL (a saved .dfd model; without it, the pretrained model) on the labelled
    dataset DATA (frame and video metrics). A folder of one class (real/ only, say) gives the
    accuracy and the share called fake."""
    if len(args) > 2 or (len(args) == 2 and not _is_model_file(args[0])):
        raise click.UsageError("give [MODEL] DATA: an optional .dfd model file, then one dataset folder")
    model, data = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    if not Path(data).is_dir():
        raise click.BadParameter(f"{data} is not a folder", param_hint="DATA")
    detector = open_model(model, weights, allow_fingerprint_mismatch, chosen_cache(cache, no_cache))
    report = detector.evaluate(data, verbose=0 if quiet else 1)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        click.echo(report.summary())
    if report_dir is not None:
        from .report import write_evaluation_report

        click.echo(f"report: {write_evaluation_report(report, report_dir, command=_command_line())}", err=True)


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
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False))
def info(model):
    """Show what a saved MODEL is made of: its parts, fingerprints and versions (JSON). Without
    MODEL: the pretrained model's card (training data and terms, recipe, measured numbers, known
    failure modes, how far to trust a score), then its file."""
    from .saving import read_model

    if model is None:
        from .digests import file_sha256
        from .pretrained import model_card, model_file

        path = model_file("default")
        click.echo(model_card())
        click.echo(f"model file: {path} ({path.stat().st_size:,} bytes, sha256 {file_sha256(path)})")
        return
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
