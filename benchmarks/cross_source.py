"""What makes real videos of other sources look fake: resolution, compression, face size, features.

    python benchmarks/cross_source.py --data ../shared/data/ffpp_c23_dev --other-real ../shared/data/real_other \
        --weights-dir ../shared/weights [--json benchmarks/results/cross_source.json]

With the face_region preset's features (read from the feature cache):

1. each source's median frame size, bits per pixel (file bits / (pixels x frames)), face height
   (pixels, and as a share of the frame height), frame rate and length;
2. the face_region recipe trained on the dev set (calibration and threshold chosen inside, as
   `cross_source_false_positives`) scoring every other-source video: the rate called fake per
   source, and the Spearman correlation of p(fake) with face height and bits per pixel;
3. how separable the sources are in feature space: the grouped 5-fold AUC of a logistic
   regression telling dev real videos from other-source real videos (1.0: a different domain);
4. per-video feature normalisations, a cheap counter on frozen features, checked with a
   scikit-learn logistic regression on standardized frame features (a fast stand-in for the
   logistic head, C=0.03): grouped 5-fold dev AUC and the share of other-source videos at
   p >= 0.5 for none, per-frame L2, per-video scale (each feature divided by its video mean
   magnitude) and per-video centring (each video's mean subtracted).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ffpp_experiments import CANDIDATES, candidate_config  # noqa: E402


def video_facts(path: str, feats) -> dict:
    import cv2

    cap = cv2.VideoCapture(path)
    width, height, frames, fps = (cap.get(p) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                                                       cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FPS))
    cap.release()
    face = float(np.median(feats.boxes[:, 3] - feats.boxes[:, 1]))
    bits = os.path.getsize(path) * 8 / max(width * height * frames, 1)
    return {"width": width, "height": height, "bits_per_pixel": bits,
            "face_px": face, "face_share": face / height if height else float("nan"), "fps": fps,
            "seconds": frames / fps if fps else float("nan")}


def transform(x: np.ndarray, kind: str) -> np.ndarray:
    x = x.astype(np.float64)
    if kind == "frame_l2":
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if kind == "video_scale":
        return x / (np.abs(x).mean(0) + 1e-3)
    if kind == "video_center":
        return x - x.mean(0)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ffpp_c23_dev")
    parser.add_argument("--other-real", default="../shared/data/real_other")
    parser.add_argument("--weights-dir", default="../shared/weights")
    parser.add_argument("--json", default=None)
    parser.add_argument("--render", default=None, metavar="JSON",
                        help="print the Markdown tables of docs/how-to/presets.md from this results file, and stop")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return

    from scipy.stats import spearmanr
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from deepfake_detect.datasets import grouped_folds
    from deepfake_detect.evaluation import Recipe, json_ready, cross_source_false_positives, feature_bank

    command = shlex.join(["python", *sys.argv])
    print(command, flush=True)
    config = candidate_config(CANDIDATES["face_region"], args.weights_dir, "default")[0]
    recipe = Recipe.single("face_region", config)
    bank = feature_bank(recipe.candidates, args.data, args.other_real)
    feats = bank.features(recipe.candidates[0])
    samples = [bank.samples[i] for i in bank.kept]
    source = ["dev real" if s.label == 0 and not s.group.startswith("other:") else
              "dev fake" if s.label == 1 else f"other: {s.method}" for s in samples]
    facts = [video_facts(s.path, f) for s, f in zip(samples, feats)]
    out = {"command": command, "sources": {}}
    print(f"\n{'source':44} {'n':>3} {'frame':>10} {'bits/pixel':>10} {'face px':>8} {'face/frame':>10} "
          f"{'fps':>4} {'seconds':>7}")
    for name in sorted(set(source)):
        rows = [f for f, s in zip(facts, source) if s == name]
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        out["sources"][name] = {"n": len(rows), **med}
        print(f"{name:44} {len(rows):>3} {med['width']:>4.0f}x{med['height']:<5.0f} {med['bits_per_pixel']:>10.3f} "
              f"{med['face_px']:>8.0f} {med['face_share']:>10.2f} {med['fps']:>4.0f} {med['seconds']:>7.1f}")

    result = cross_source_false_positives(recipe, bank, True, bootstrap=1000)
    other = [i for i, s in enumerate(source) if s.startswith("other")]
    p = np.array([pred.p_fake for pred in result.report.predictions])
    called = np.array([pred.p_fake >= pred.threshold for pred in result.report.predictions])
    by_source = {}
    for name in sorted({source[i] for i in other}):
        mine = np.array([source[i] == name for i in other])
        by_source[name] = {"n": int(mine.sum()), "called_fake": float(called[mine].mean()),
                           "median_p_fake": float(np.median(p[mine]))}
    face = np.array([facts[i]["face_px"] for i in other])
    bpp = np.array([facts[i]["bits_per_pixel"] for i in other])
    out["face_region_trained_on_dev"] = {
        "called_fake": float(called.mean()), "called_fake_ci": list(result.report.called_fake_rate_ci),
        "by_source": by_source, "spearman_p_vs_face_px": float(spearmanr(p, face).statistic),
        "spearman_p_vs_bits_per_pixel": float(spearmanr(p, bpp).statistic)}
    print(f"\nface_region trained on the dev set: {called.mean():.3f} of other-source real videos called fake")
    for name, r in by_source.items():
        print(f"  {name:44} {r['called_fake']:.3f} called fake (median p {r['median_p_fake']:.3f}, n {r['n']})")
    print(f"  Spearman of p(fake) with face height {out['face_region_trained_on_dev']['spearman_p_vs_face_px']:.2f}, "
          f"with bits per pixel {out['face_region_trained_on_dev']['spearman_p_vs_bits_per_pixel']:.2f}")

    real = [i for i, s in enumerate(samples) if s.label == 0]
    means = np.array([feats[i].features.mean(0) for i in real])
    is_other = np.array([source[i].startswith("other") for i in real]).astype(int)
    groups = np.array([samples[i].group for i in real])
    oof = np.zeros(len(real))
    for tr, te in grouped_folds(is_other, groups, 5, 0):
        scaler = StandardScaler().fit(means[tr])
        model = LogisticRegression(C=0.03, max_iter=3000).fit(scaler.transform(means[tr]), is_other[tr])
        oof[te] = model.predict_proba(scaler.transform(means[te]))[:, 1]
    out["source_separability_auc"] = float(roc_auc_score(is_other, oof))
    print(f"\ndev real vs other-source real, told apart from mean features: grouped 5-fold AUC "
          f"{out['source_separability_auc']:.3f}")

    dev = [i for i, s in enumerate(samples) if not s.group.startswith("other:")]
    y = bank.labels[dev]
    g = bank.groups[dev]
    out["normalisation"] = {}
    print("\nper-video normalisation (scikit-learn logistic stand-in, C=0.03):")
    for kind in ("none", "frame_l2", "video_scale", "video_center"):
        x = {i: transform(feats[i].features, kind) for i in range(len(samples))}
        scores, rates = np.zeros(len(dev)), []
        for tr, te in grouped_folds(y, g, 5, 0):
            train = np.concatenate([x[dev[i]] for i in tr])
            labels = np.concatenate([np.full(len(x[dev[i]]), y[i]) for i in tr])
            scaler = StandardScaler().fit(train)
            model = LogisticRegression(C=0.03, class_weight="balanced", max_iter=3000).fit(scaler.transform(train),
                                                                                           labels)
            score = lambda v: model.predict_proba(scaler.transform(x[v]))[:, 1].mean()  # noqa: E731
            scores[te] = [score(dev[i]) for i in te]
            rates.append(np.mean([score(i) >= 0.5 for i in other]))
        out["normalisation"][kind] = {"dev_auc": float(roc_auc_score(y, scores)),
                                      "other_real_called_fake": float(np.mean(rates))}
        print(f"  {kind:14} dev AUC {out['normalisation'][kind]['dev_auc']:.3f}, other-source real called fake "
              f"{out['normalisation'][kind]['other_real_called_fake']:.3f}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(json_ready(out), indent=1))


def render(results: dict) -> str:
    """The Markdown tables of docs/how-to/presets.md, every number from `results` (cross_source.json)."""
    out = ["| source | videos | frame (median) | bits per pixel | face height (px) | face / frame height | fps | "
           "seconds |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results["sources"].items():
        out.append(f"| {name} | {r['n']} | {r['width']:.0f}x{r['height']:.0f} | {r['bits_per_pixel']:.3f} | "
                   f"{r['face_px']:.0f} | {r['face_share']:.2f} | {r['fps']:.0f} | {r['seconds']:.1f} |")
    t = results["face_region_trained_on_dev"]
    ci = t["called_fake_ci"]
    out += ["", f"`face_region` trained on the dev set (threshold chosen inside) called "
            f"{t['called_fake']:.3f} of the other-source real videos fake"
            + (f" [95% CI {ci[0]:.2f}-{ci[1]:.2f}]" if ci[0] is not None else "") + ": "
            + "; ".join(f"{name.removeprefix('other: ')} {r['called_fake']:.3f} (median p(fake) "
                        f"{r['median_p_fake']:.2f}, {r['n']} videos)" for name, r in t["by_source"].items())
            + f". Spearman correlation of p(fake) with face height {t['spearman_p_vs_face_px']:.2f}, with bits per "
            f"pixel {t['spearman_p_vs_bits_per_pixel']:.2f}. Dev real and other-source real videos are told apart "
            f"from their mean features with a grouped AUC of {results['source_separability_auc']:.3f}.",
            "", "Per-video normalisation of the frozen features (a scikit-learn logistic regression standing in for "
            "the head, grouped 5-fold):", "", "| normalisation | dev AUC | other-source real at p >= 0.5 |",
            "|---|---|---|"]
    for kind, r in results["normalisation"].items():
        out.append(f"| {kind} | {r['dev_auc']:.3f} | {r['other_real_called_fake']:.3f} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
