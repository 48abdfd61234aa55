"""Visual reports: PNG figures (matplotlib, drawn off-screen) and one self-contained ``report.html``.

`write_evaluation_report` draws, for an `EvaluationReport`: the ROC curves with their AUC
(``roc.png``), the score histograms by class (``scores.png``), the confusion matrices
(``confusion.png``) and, for the videos it got most wrong first, a timeline of frame
probabilities with the face thumbnails under it (``timeline_NN.png``).
`write_prediction_report` writes the page a verification desk files for one video: the
verdict with its threshold and band, what the input file is (SHA-256, size, duration), which
model and library gave it and when, a caveat, the timeline of frame scores with the faces
(borders explained in a legend, times under them), on request occlusion maps of the most
suspicious frames (`deepfake_detect.explain`), and the processing details last.
`write_index` links the pages of several videos. The HTML holds every number and inlines
every image as a base64 PNG, so it can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import datetime
import html
import math
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .results import EvaluationReport, FramePrediction, VideoPrediction
from .sampling import Exactly
from .video import sample_frames

_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "average_precision", "eer", "log_loss")
_REAL, _FAKE = "#2b7bba", "#d7301f"
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.leaky { background: #fde0dc; border: 2px solid #d7301f; padding: .6em 1em; font-weight: 600; }
.protocol { font-size: 1.1em; } img { max-width: 100%; display: block; margin: .6em 0; }
code { background: #f4f4f4; padding: .1em .3em; } .fake { color: #d7301f; } .real { color: #2b7bba; }
.inconclusive { color: #b8860b; } .verdict { font-size: 1.3em; border: 2px solid #444; padding: .5em 1em; }
.caveat { background: #fff6d6; border-left: 4px solid #e0a800; padding: .5em 1em; }
.legend span.box { display: inline-block; width: 1em; height: 1em; border: 3px solid; vertical-align: middle;
  margin: 0 .3em 0 1em; } .explain { display: flex; flex-wrap: wrap; gap: 1em; }
.explain figure { margin: 0; } .explain img { display: inline-block; margin: 0 .2em; }
"""
#: The line every report carries: what a score is and is not.
CAVEAT = ("A score is evidence, not proof. p_fake is this model's score (0 to 1) that the video is a deepfake, "
          "learned from a small research dataset (see the model card): it can be wrong on material unlike its "
          "training data, on heavily compressed, filtered or low-resolution video, and on manipulations it never "
          "saw. Confirm a finding by other means before relying on it.")
_STAGES = {"cache": "reading the feature cache", "decode": "decoding the sampled frames",
           "detect": "finding the faces", "crop": "cutting the face crops", "embed": "computing the face features",
           "classify": "scoring the frames"}


def write_evaluation_report(report: EvaluationReport, out_dir: str | os.PathLike, timelines: int = 6,
                            title: str = "Deepfake detection: evaluation", command: str | None = None) -> Path:
    """Writes the figures and ``report.html`` of `report` into `out_dir`; returns the HTML's path.

    Args:
        timelines: how many videos get a timeline figure, the most wrongly scored first.
        command: the command that produced the report, shown so it can be rerun.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scored = [(pred, label) for pred, label in zip(report.predictions, report.labels) if pred.p_fake is not None]
    figures = []
    if scored:
        figures += [("ROC curves", _save(_roc_figure(report, scored), out / "roc.png")),
                    ("Scores by class", _save(_histogram_figure(scored), out / "scores.png")),
                    ("Confusion matrices", _save(_confusion_figure(report), out / "confusion.png"))]
    worst = sorted(scored, key=lambda s: -abs(s[1] - s[0].p_fake))[:timelines]
    for k, (pred, label) in enumerate(worst, start=1):
        figures.append((f"{Path(pred.path).name} (truly {'fake' if label else 'real'})",
                        _save(_timeline_figure(pred), out / f"timeline_{k:02d}.png")))
    body = [f"<h1>{_e(title)}</h1>", f'<p class="protocol">Protocol: <b>{_e(report.protocol)}</b></p>']
    if report.leaky:
        body.append('<div class="leaky">Leaky protocol: frames of the same video are on both sides of the split. '
                    "These numbers measure how well the model memorises videos and identities, not how well it "
                    "detects fakes in unseen videos. Use the grouped protocol for that.</div>")
    if command:
        body.append(f"<p>Command: <code>{_e(command)}</code></p>")
    body.append(f"<p>deepfake-detect {_e(_version())}, {_e(_now())}.</p>")
    body.append(f'<p class="caveat">{_e(CAVEAT)}</p>')
    body.append(f"<p>{report.n_videos} inputs, {report.n_frames} frames with a face"
                + (f"; {report.videos_without_face} inputs without a face were left out of the metrics"
                   if report.videos_without_face else "") + ".</p>")
    body += ["<h2>Metrics</h2>", _metrics_table(report)]
    if report.by_method:
        body += ["<h2>Per manipulation method</h2>",
                 "<p>Video level: the real inputs against the fakes of each method.</p>",
                 _table(["method", *(k.replace("_", " ") for k in _METRICS)],
                        [[m, *(metrics[k] for k in _METRICS)] for m, metrics in report.by_method.items()])]
    if report.folds:
        body += ["<h2>Folds</h2>", _table(["fold", "videos", "video accuracy", "video ROC AUC", "frame accuracy",
                                           "frame ROC AUC"],
                                          [[f.protocol, f.n_videos, f.video["accuracy"], f.video["roc_auc"],
                                            f.frame["accuracy"], f.frame["roc_auc"]] for f in report.folds])]
    body += ["<h2>Figures</h2>", *(_figure(caption, path) for caption, path in figures)]
    body += ["<h2>Predictions</h2>", _table(["input", "truth", "verdict", "p(fake)", "faces / frames"],
                                            [[Path(p.path).name, "fake" if y else "real", p.label, p.p_fake,
                                              f"{p.faces_found} / {p.frames_sampled}"]
                                             for p, y in zip(report.predictions, report.labels)])]
    return _write_html(out, title, body)


def write_prediction_report(prediction: VideoPrediction, out_dir: str | os.PathLike,
                            title: str | None = None, model: dict | None = None, command: str | None = None,
                            explanations: Sequence | None = None) -> Path:
    """Writes the timeline figure and ``report.html`` of one video's verdict into `out_dir`;
    returns the HTML's path.

    Args:
        model: what gave the verdict: "name", "fingerprint" (and any other key), shown as is.
        command: the command that produced the report, shown so it can be rerun.
        explanations: `deepfake_detect.explain.Explanation`s (occlusion maps) to show.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(prediction.path).name
    title = title or f"Deepfake detection: {name}"
    body = [f"<h1>{_e(title)}</h1>", _verdict_html(prediction), f'<p class="caveat">{_e(CAVEAT)}</p>']
    if prediction.reason:
        body.append(f"<p>{_e(prediction.reason)}</p>")
    body += ["<h2>Input</h2>", _table(["", ""], [[k, v] for k, v in input_facts(prediction).items()])]
    facts = {**{f"model {k}": v for k, v in (model or {}).items()}, "library": f"deepfake-detect {_version()}",
             "date and time": _now()}
    if command:
        facts["command"] = command
    body += ["<h2>Who and what produced this report</h2>", _table(["", ""], [[k, str(v)] for k, v in facts.items()])]
    if prediction.frames:
        body += ["<h2>Frame scores and faces</h2>",
                 _figure("p_fake of each sampled frame over time; under it the faces, each at its time",
                         _save(_timeline_figure(prediction), out / "timeline.png")),
                 _legend(prediction.threshold)]
    if explanations:
        body += ["<h2>What moved the score</h2>",
                 "<p>For the most suspicious frames: the face as the model saw it, and over it how much covering each "
                 "part lowers p_fake (red: that part pushed the score towards fake; blue: towards real). It shows what "
                 "the model reacts to, not where a manipulation is.</p>", _explanations_html(explanations, out)]
    if prediction.frames:
        body += ["<h2>Frames</h2>", _table(["frame", "time (s)", "p_fake", "face box (x1, y1, x2, y2)", "face score"],
                                           [[f.index, f.time, f.p_fake,
                                             ", ".join(f"{v:.0f}" for v in (f.box.x1, f.box.y1, f.box.x2, f.box.y2)),
                                             f.box.score] for f in prediction.frames])]
    if prediction.timings:
        rows = [[_STAGES.get(k, k), v] for k, v in prediction.timings.items()]
        body.append("<details><summary>Processing details: seconds per stage (decoding overlaps the rest, so they "
                    "can add up to more than the wall time)</summary>" + _table(["stage", "seconds"], rows)
                    + "</details>")
    return _write_html(out, title, body)


def write_index(rows: Sequence[dict], out_dir: str | os.PathLike, title: str = "Deepfake detection: batch",
                command: str | None = None) -> Path:
    """Writes ``index.html`` linking each input's page: `rows` hold "path", "label", "p_fake",
    "faces", "report" (the page, relative to `out_dir`) and "error" (an input that failed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = []
    for row in rows:
        link = f'<a href="{_e(row["report"])}">{_e(Path(row["path"]).name)}</a>' if row.get("report") else \
            _e(Path(row["path"]).name)
        p = "-" if row.get("p_fake") is None else f'{row["p_fake"]:.3f}'
        label = row.get("label") or "error"
        cells.append(f'<tr><td>{link}</td><td class="{_e(label)}">{_e(label)}</td><td class="num">{p}</td>'
                     f'<td>{_e(str(row.get("faces", "")))}</td><td>{_e(row.get("error") or "")}</td></tr>')
    body = [f"<h1>{_e(title)}</h1>", f"<p>deepfake-detect {_e(_version())}, {_e(_now())}"
            + (f"; command <code>{_e(command)}</code>" if command else "") + ".</p>",
            f'<p class="caveat">{_e(CAVEAT)}</p>',
            "<table><tr><th>input</th><th>verdict</th><th>p_fake</th><th>faces / frames</th><th>error</th></tr>"
            + "".join(cells) + "</table>"]
    return _write_html(out, title, body, name="index.html")


def input_facts(prediction: VideoPrediction) -> dict[str, str]:
    """What identifies the input: path, SHA-256, size, duration, frame size (what can be read)."""
    from .digests import file_sha256
    from .video import probe

    path = Path(prediction.path)
    facts = {"file": path.name, "path": str(path.resolve())}
    try:
        facts["SHA-256"] = file_sha256(path)
        facts["size"] = f"{path.stat().st_size:,} bytes"
    except OSError as e:
        facts["SHA-256"] = f"unreadable ({e})"
    try:
        info = probe(path)
        if math.isfinite(info.duration):
            facts["duration"] = f"{info.duration:.2f} s ({info.frame_count} frames at {info.fps:.3g} fps)"
        facts["frame size"] = f"{info.width} x {info.height} pixels"
    except Exception:  # noqa: BLE001  (the facts the header gives; none is not an error here)
        pass
    facts["frames looked at"] = f"{prediction.frames_sampled}, a face in {prediction.faces_found}"
    return facts


def _verdict_html(prediction: VideoPrediction) -> str:
    label = prediction.label
    if prediction.p_fake is None:
        return f'<p class="verdict">Verdict: <b class="{_e(label)}">{_e(label)}</b> (no score).</p>'
    p, t, band = prediction.p_fake, prediction.threshold, prediction.inconclusive
    if label == "inconclusive":
        why = f"inside the inconclusive band {band[0]:.3g}-{band[1]:.3g}: the score says too little either way"
    else:
        why = f"{'at or above' if p >= t else 'below'} the threshold {t:.3g}"
        if band is not None:
            why += f", outside the inconclusive band {band[0]:.3g}-{band[1]:.3g}"
    return (f'<p class="verdict">Verdict: <b class="{_e(label)}">{_e(label)}</b>: p_fake {p:.3f}, {_e(why)}.</p>'
            "<p>p_fake is the model's score, from 0 (real) to 1 (fake), averaged over the frames where a face was "
            "found; the verdict compares it with the threshold.</p>")


def _legend(threshold: float) -> str:
    return (f'<p class="legend">Thumbnail borders:<span class="box" style="border-color:{_FAKE}"></span>'
            f"that frame's p_fake is at or above the threshold {threshold:.3g} (looks fake)"
            f'<span class="box" style="border-color:{_REAL}"></span>below it (looks real). '
            "The number under a face is its time in the video, in seconds.</p>")


def _explanations_html(explanations: Sequence, out: Path) -> str:
    items = []
    for k, ex in enumerate(explanations, start=1):
        face = _save_rgb(cv2.resize(ex.crop, (160, 160), interpolation=cv2.INTER_AREA), out / f"explain_{k:02d}_face.png")
        heat = _save_rgb(overlay(ex), out / f"explain_{k:02d}_map.png")
        caption = f"frame {ex.frame.index} at {ex.frame.time:.2f} s: p_fake {ex.p_fake:.3f}"
        items.append("<figure>" + _img(caption + ", face", face) + _img(caption + ", occlusion map", heat)
                     + f"<figcaption>{_e(caption)}</figcaption></figure>")
    return '<div class="explain">' + "".join(items) + "</div>"


def overlay(explanation, size: int = 160) -> np.ndarray:
    """An `explain.Explanation`'s crop with its map over it, RGB uint8 (size, size, 3): red where
    covering that part lowers p(fake), blue where it raises it."""
    crop = cv2.resize(explanation.crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    heat = cv2.resize(explanation.heat.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    scale = max(float(np.abs(explanation.heat).max()), 1e-6)
    v = np.clip(heat / scale, -1, 1)[..., None]
    red, blue = np.array([215, 48, 31], np.float32), np.array([43, 123, 186], np.float32)
    color = np.where(v > 0, red, blue)
    alpha = 0.6 * np.abs(v)
    return np.clip(crop * (1 - alpha) + color * alpha, 0, 255).astype(np.uint8)


def _save_rgb(image: np.ndarray, path: Path) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def _img(alt: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _version() -> str:
    from .version import __version__

    return __version__


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def face_thumbnails(path: str | os.PathLike, frames: Sequence[FramePrediction], size: int = 96,
                    margin: float = 0.15) -> list[np.ndarray]:
    """The face of each of `frames`, re-read from the video at `path`: RGB uint8 (size, size, 3)
    crops of the box grown by `margin` on each side; a grey square where a frame cannot be read."""
    _, decoded = sample_frames(path, Exactly([f.index for f in frames]))
    pixels = dict(decoded)
    out = []
    for f in frames:
        image = pixels.get(f.index)
        if image is None:
            out.append(np.full((size, size, 3), 128, np.uint8))
            continue
        b = f.box
        side = max(b.width, b.height) * (1 + 2 * margin)
        cx, cy = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2
        h, w = image.shape[:2]
        x1, y1 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
        x2, y2 = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
        crop = image[y1:y2, x1:x2] if x2 > x1 and y2 > y1 else image
        out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return out


def _timeline_figure(pred: VideoPrediction, thumbnails: int = 10):
    """Frame p(fake) over time, and under it the faces of up to `thumbnails` frames at their times."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    frames = pred.frames
    use_time = any(f.time > 0 for f in frames)
    xs = np.array([f.time if use_time else f.index for f in frames], dtype=np.float64)
    picked = np.unique(np.linspace(0, len(frames) - 1, min(thumbnails, len(frames))).round().astype(int))
    span = xs[-1] - xs[0]
    slot = span / (len(picked) - 1) if len(picked) > 1 and span > 0 else 1.0
    gaps = np.diff(xs[picked])
    thumb = 0.92 * max(gaps.min(), 0.6 * slot) if len(gaps) and span > 0 else 0.92 * slot  # width, in x units
    lo, hi = xs[0] - slot / 2, xs[-1] + slot / 2
    width_in, left, right = 10.0, 0.07, 0.98
    axes_in = width_in * (right - left)
    thumb_in = thumb * axes_in / (hi - lo)
    plot_in, pad_in = 2.6, 0.75
    height_in = plot_in + thumb_in + 2 * pad_in
    fig = Figure(figsize=(width_in, height_in), dpi=100)
    ax = fig.add_axes((left, (thumb_in + 1.3 * pad_in) / height_in, right - left, plot_in / height_in))
    strip = fig.add_axes((left, 0.45 * pad_in / height_in, right - left, thumb_in / height_in), sharex=ax)
    ax.plot(xs, [f.p_fake for f in frames], "-o", color="#444", markersize=3, linewidth=1)
    ax.axhline(pred.threshold, color="#999", linestyle="--", linewidth=1, label=f"threshold {pred.threshold:.3g}")
    if pred.p_fake is not None:
        ax.axhline(pred.p_fake, color=_FAKE if pred.label == "fake" else _REAL, linewidth=1.5,
                   label=f"video p(fake) {pred.p_fake:.3f} → {pred.label}")
    ax.set(ylim=(-0.02, 1.02), xlim=(lo, hi), ylabel="p(fake)", title=Path(pred.path).name)
    ax.set_xlabel("time (s)" if use_time else "frame", labelpad=1)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    for k, face in zip(picked, face_thumbnails(pred.path, [frames[i] for i in picked])):
        x0 = xs[k] - thumb / 2
        strip.imshow(face, extent=(x0, x0 + thumb, 0, 1), aspect="auto", interpolation="bilinear")
        color = _FAKE if frames[k].p_fake >= pred.threshold else _REAL
        strip.add_patch(Rectangle((x0, 0), thumb, 1, fill=False, edgecolor=color, linewidth=2.5))
        strip.text(xs[k], -0.04, f"{frames[k].time:.1f} s" if use_time else f"#{frames[k].index}", ha="center",
                   va="top", fontsize=8, color="#333")
    strip.set(ylim=(0, 1), xlim=(lo, hi))
    strip.axis("off")
    return fig


def _roc_figure(report: EvaluationReport, scored: list[tuple[VideoPrediction, int]]):
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    fig = Figure(figsize=(5.5, 5), dpi=100)
    ax = fig.add_subplot()
    levels = [("video", [y for _, y in scored], [p.p_fake for p, _ in scored], "-")]
    frame_y, frame_p = _frame_scores(scored)
    levels.append(("frame", frame_y, frame_p, "--"))
    for level, y, p, style in levels:
        if len(set(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        label = f"{level} AUC {getattr(report, level)['roc_auc']:.3f}"
        if level == "video" and all(map(math.isfinite, report.video_auc_ci)):
            label += " (95% CI {:.2f}-{:.2f})".format(*report.video_auc_ci)
        ax.plot(fpr, tpr, style, linewidth=2, label=label)
    ax.plot([0, 1], [0, 1], ":", color="#999", label="chance")
    ax.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate (fake caught)",
           xlim=(0, 1), ylim=(0, 1.01), title="ROC" + (" — LEAKY protocol" if report.leaky else ""))
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def _histogram_figure(scored: list[tuple[VideoPrediction, int]]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), dpi=100)
    frame_y, frame_p = _frame_scores(scored)
    levels = (("frames", np.array(frame_y), np.array(frame_p)),
              ("videos", np.array([y for _, y in scored]), np.array([p.p_fake for p, _ in scored])))
    bins = np.linspace(0, 1, 21)
    for k, (level, y, p) in enumerate(levels, start=1):
        ax = fig.add_subplot(1, 2, k)
        for label, name, color in ((0, "real", _REAL), (1, "fake", _FAKE)):
            ax.hist(p[y == label], bins=bins, alpha=0.6, color=color, label=f"{name} ({int((y == label).sum())})")
        ax.axvline(scored[0][0].threshold, color="#444", linestyle="--", linewidth=1)
        ax.set(xlabel="p(fake)", ylabel=level, title=f"{level}: score by true class")
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def _confusion_figure(report: EvaluationReport):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.8), dpi=100)
    for k, level in enumerate(("video", "frame"), start=1):
        m = getattr(report, level)
        cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
        ax = fig.add_subplot(1, 2, k)
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(cm.max(), 1))
        for (i, j), n in np.ndenumerate(cm):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=14,
                    color="white" if n > cm.max() / 2 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["real", "fake"], yticklabels=["real", "fake"],
               xlabel="predicted", ylabel="true", title=f"{level}s")
    fig.tight_layout()
    return fig


def _frame_scores(scored: list[tuple[VideoPrediction, int]]) -> tuple[list[int], list[float]]:
    y = [label for pred, label in scored for _ in pred.frames]
    p = [f.p_fake for pred, _ in scored for f in pred.frames]
    return y, p


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def _metrics_table(report: EvaluationReport) -> str:
    spread = report.across_folds() if report.folds else {}
    header = ["metric", "video", "frame"] + (["video, folds mean ± std", "frame, folds mean ± std"] if spread else [])
    rows = []
    for k in _METRICS:
        row = [k.replace("_", " "), report.video[k], report.frame[k]]
        if k == "roc_auc" and all(map(math.isfinite, report.video_auc_ci)):
            row[1] = "{:.3f} (95% CI {:.3f}-{:.3f})".format(report.video[k], *report.video_auc_ci)
        rows.append(row + ["{:.3f} ± {:.3f}".format(*spread[level][k]) for level in ("video", "frame")
                           if spread])
    for key, name in (("tn", "real called real"), ("fp", "real called fake"), ("fn", "fake called real"),
                      ("tp", "fake called fake")):
        rows.append([name, report.video[key], report.frame[key]] + (["", ""] if spread else []))
    return _table(header, rows)


def _table(header: list, rows: list[list]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return f'<td class="num">{"-" if math.isnan(v) else f"{v:.3f}"}</td>'
        if isinstance(v, int):
            return f'<td class="num">{v}</td>'
        return f"<td>{_e(str(v))}</td>"

    head = f"<tr>{''.join(f'<th>{_e(str(h))}</th>' for h in header)}</tr>" if any(header) else ""
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _figure(caption: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}"><figcaption>{_e(caption)}' \
           f"</figcaption></figure>"


def _write_html(out: Path, title: str, body: list[str], name: str = "report.html") -> Path:
    page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = out / name
    path.write_text(page, encoding="utf-8")
    return path


def _e(text: str) -> str:
    return html.escape(text, quote=True)
