"""Nested evaluation of the presets and the new candidates, every protocol, in one run.

    python benchmarks/selection.py --data ../shared/data/ffpp_c23_dev --other-real ../shared/data/real_other \
        --weights-dir ../shared/weights --json benchmarks/results/selection.json [--recipes paper,face_region,...]

For each recipe (a preset or a list of candidates to choose among, trained by the cross-fitting
`fit`: calibration, threshold and inconclusive band chosen on out-of-fold scores, final head on
every training video), with every choice made inside inner grouped folds of the outer training
part only (`deepfake_detect.evaluation`):

- nested grouped cross-validation on the dev set: pooled video AUC of the calibrated scores with a
  bootstrap 95% interval over groups, ECE and Brier score before and after calibration, the
  false-positive rate of the dev set's real videos at the chosen threshold, refit-on-all vs the
  bagged fold heads, every threshold rule;
- leave-one-method-out: for each manipulation method, trained without its fakes, AUC on its
  fakes against held-out real videos;
- cross-source false positives: the rate of `--other-real` videos (all real, other sources) called
  fake; for a recipe that trains on other-source real videos too, grouped folds over their groups
  (trained on some, tested on the others).

Features are extracted once per configuration (through the feature cache) and reused by every
fold of every protocol. Rows are written to `--json` after each recipe, so a partial run is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ffpp_experiments import CANDIDATES, candidate_config  # noqa: E402

#: recipe name -> (candidate names of ffpp_experiments with head overrides, trains on other-source reals, about)
RECIPES: dict[str, dict] = {
    "paper": {"candidates": ["paper"], "other": False, "about": "the seed paper's preset"},
    "face_region": {"candidates": ["face_region"], "other": False, "about": "the face_region preset"},
    "face_region_temporal": {"candidates": ["face_region_temporal"], "other": False,
                             "about": "the face_region_temporal preset"},
    "face_region+other": {"candidates": ["face_region"], "other": True,
                          "about": "face_region, other-source real videos added to training"},
    "face_region_temporal+other": {"candidates": ["face_region_temporal"], "other": True,
                                   "about": "face_region_temporal, other-source real videos added to training"},
    "select+other": {"candidates": ["face_region", "face_region_temporal"], "other": True,
                     "about": "face_region or face_region_temporal chosen inside (temporal weight 0 or 0.5), "
                              "other-source real videos added to training"},
}


def build_recipe(name: str, spec: dict, weights_dir: str, cache, threshold: str, max_abstain: float):
    from deepfake_detect.evaluation import Candidate, Recipe

    candidates = tuple(Candidate(c, candidate_config(CANDIDATES[c], weights_dir, cache)[0]) for c in spec["candidates"])
    return Recipe(name, candidates, calibration="platt", threshold=threshold, max_abstain=max_abstain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ffpp_c23_dev")
    parser.add_argument("--other-real", default="../shared/data/real_other")
    parser.add_argument("--weights-dir", default="../shared/weights")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated: {', '.join(RECIPES)}")
    parser.add_argument("--outer-folds", type=int, default=5)
    parser.add_argument("--lomo-folds", type=int, default=3, help="outer folds of leave-one-method-out")
    parser.add_argument("--threshold", default="balanced", help="threshold rule the recipes use (all are measured)")
    parser.add_argument("--max-abstain", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--cache", default="default")
    parser.add_argument("--json", default=None)
    parser.add_argument("--render", default=None, metavar="JSON",
                        help="print the Markdown tables of docs/how-to/presets.md from this results file, and stop")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return

    from deepfake_detect.evaluation import (cross_source_false_positives, feature_bank, leave_one_method_out,
                                            nested_cross_validate)

    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; known: {', '.join(RECIPES)}")
    cache = None if args.cache == "none" else args.cache
    command = shlex.join(["python", *sys.argv])
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "load_at_start": os.getloadavg()}
    print(command, flush=True)
    began = time.perf_counter()
    recipes = {n: build_recipe(n, RECIPES[n], args.weights_dir, cache, args.threshold, args.max_abstain) for n in names}
    bank = feature_bank([c for r in recipes.values() for c in r.candidates], args.data, args.other_real, verbose=1)
    print(f"features: {len(bank.kept)} videos with a face ({bank.without_face} without), "
          f"{time.perf_counter() - began:.0f} s", flush=True)
    rows = []
    for name in names:
        recipe, spec = recipes[name], RECIPES[name]
        t = time.perf_counter()
        extra = True if spec["other"] else None
        print(f"\n== {name}: {spec['about']}", flush=True)
        nested = nested_cross_validate(recipe, bank, args.outer_folds, args.seed, extra_real=extra,
                                       bootstrap=args.bootstrap, verbose=1)
        print(nested.summary(), flush=True)
        lomo = leave_one_method_out(recipe, bank, args.lomo_folds, args.seed, extra_real=extra,
                                    bootstrap=args.bootstrap, verbose=0)
        for method, r in lomo.items():
            print(f"  leave {method} out: AUC {r.report.video['roc_auc']:.3f} {_ci(r.report.video_auc_ci)}", flush=True)
        source = cross_source_false_positives(recipe, bank, True, args.outer_folds, args.seed,
                                              train_on_other=spec["other"], bootstrap=args.bootstrap)
        print(f"  other-source real called fake: {source.report.video['called_fake_rate']:.3f} "
              f"{_ci(source.report.called_fake_rate_ci)}", flush=True)
        rows.append(_row(name, spec, nested, lomo, source, time.perf_counter() - t))
        _write(args.json, command, machine, rows, began)
    print(f"\n{command}\nmachine: {os.cpu_count()} CPU cores (shared; load at start "
          f"{', '.join(f'{x:.1f}' for x in machine['load_at_start'])}, at end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print(table(rows))


def _ci(ci) -> str:
    low, high = ci if ci is not None else (None, None)
    return "[n/a]" if low is None or low != low else f"[{low:.3f}-{high:.3f}]"


def _row(name, spec, nested, lomo, source, seconds) -> dict:
    v = nested.report.video
    variants = nested.variants
    return {
        "recipe": name, "about": spec["about"], "candidates": spec["candidates"], "trains_on_other_real": spec["other"],
        "nested_auc": v["roc_auc"], "nested_auc_ci": list(nested.report.video_auc_ci),
        "nested_auc_uncalibrated": variants["uncalibrated"]["roc_auc"],
        "ece_uncalibrated": variants["uncalibrated"]["ece"], "ece": v["ece"],
        "brier_uncalibrated": variants["uncalibrated"]["brier"], "brier": v["brier"],
        "dev_false_positive_rate": v["false_positive_rate"], "dev_true_positive_rate": v["true_positive_rate"],
        "inconclusive_rate": v["inconclusive_rate"], "decided_accuracy": v["decided_accuracy"],
        "refit_auc": variants["refit"]["roc_auc"], "bag_auc": variants["bag"]["roc_auc"],
        "refit_ece": variants["refit"]["ece"], "bag_ece": variants["bag"]["ece"],
        "threshold_rules": {k[len("threshold "):]: {m: variants[k][m] for m in ("accuracy", "false_positive_rate",
                                                                              "true_positive_rate")}
                            for k in variants if k.startswith("threshold ")},
        "lomo_auc": {m: r.report.video["roc_auc"] for m, r in lomo.items()},
        "lomo_auc_ci": {m: list(r.report.video_auc_ci) for m, r in lomo.items()},
        "other_real_called_fake": source.report.video["called_fake_rate"],
        "other_real_called_fake_ci": list(source.report.called_fake_rate_ci),
        "other_real_n": source.report.n_videos, "other_real_protocol": source.protocol,
        "choices": nested.choices, "seconds": seconds,
        "nested": nested.to_dict(), "lomo": {m: r.to_dict() for m, r in lomo.items()}, "cross_source": source.to_dict(),
    }


def table(rows) -> str:
    methods = sorted({m for r in rows for m in r["lomo_auc"]})
    head = (f"{'recipe':22} {'nested AUC [95% CI]':>22} {'ECE raw→cal':>12} {'dev FPR':>8} "
            + " ".join(f"{'LOMO ' + m:>16}" for m in methods)
            + f" {'other real called fake':>24} {'refit/bag AUC':>14}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ci = _ci(r["nested_auc_ci"])
        lines.append(f"{r['recipe']:22} {r['nested_auc']:.3f} {ci:>16} {r['ece_uncalibrated']:.3f}→{r['ece']:.3f} "
                     f"{r['dev_false_positive_rate']:>8.3f} "
                     + " ".join(f"{r['lomo_auc'].get(m, float('nan')):>16.3f}" for m in methods)
                     + f" {r['other_real_called_fake']:>8.3f} {_ci(r['other_real_called_fake_ci']):>15}"
                     + f" {r['refit_auc']:.3f}/{r['bag_auc']:.3f}")
    return "\n".join(lines)


def render(results: dict) -> str:
    """The Markdown tables of docs/how-to/presets.md, every number from `results` (selection.json)."""
    def num(x, ci=None):
        if x is None:
            return "n/a"
        text = f"{x:.3f}"
        if ci is not None:
            text += " [n/a]" if ci[0] is None else f" [{ci[0]:.2f}-{ci[1]:.2f}]"
        return text

    rows = results["rows"]
    methods = sorted({m for r in rows for m in r["lomo_auc"]})
    out = [f"`{results['command']}` ({results['minutes']:.0f} min on {results['machine']['cpus']} shared cores)", "",
           "| recipe | nested AUC [95% CI] | " + " | ".join(f"leave out {m}: AUC [95% CI]" for m in methods)
           + " | other-source real called fake [95% CI] | dev real called fake | inconclusive (accuracy of the rest) |",
           "|---|---|" + "---|" * len(methods) + "---|---|---|"]
    for r in rows:
        out.append(f"| `{r['recipe']}` | {num(r['nested_auc'], r['nested_auc_ci'])} | "
                   + " | ".join(num(r["lomo_auc"].get(m), r["lomo_auc_ci"].get(m)) for m in methods)
                   + f" | {num(r['other_real_called_fake'], r['other_real_called_fake_ci'])} | "
                   f"{num(r['dev_false_positive_rate'])} | {num(r['inconclusive_rate'])} "
                   f"({num(r['decided_accuracy'])}) |")
    out += ["", "| recipe | ECE before → after calibration | Brier before → after | AUC refit on all | AUC bagged "
            "fold heads | chosen per outer fold |", "|---|---|---|---|---|---|"]
    for r in rows:
        chosen = ", ".join(sorted({c["candidate"] for c in r["choices"]}))
        out.append(f"| `{r['recipe']}` | {num(r['ece_uncalibrated'])} → {num(r['ece'])} | "
                   f"{num(r['brier_uncalibrated'])} → {num(r['brier'])} | {num(r['refit_auc'])} | "
                   f"{num(r['bag_auc'])} "
                   f"| {chosen} |")
    rules = list(rows[0]["threshold_rules"]) if rows else []
    out += ["", "Share called fake at each threshold rule (chosen inside, on out-of-fold scores): dev real / dev fake "
            "(nested) / other-source real:", "",
            "| recipe | " + " | ".join(f"`{k}`" for k in rules) + " |", "|---|" + "---|" * len(rules)]
    for r in rows:
        other = r["cross_source"]["variants"]
        out.append(f"| `{r['recipe']}` | " + " | ".join(
            f"{num(r['threshold_rules'][k]['false_positive_rate'])} / "
            f"{num(r['threshold_rules'][k]['true_positive_rate'])}"
            f" / {num(other[f'threshold {k}']['false_positive_rate'])}" for k in rules) + " |")
    return "\n".join(out)


def _write(path, command, machine, rows, began) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    from deepfake_detect.evaluation import json_ready

    Path(path).write_text(json.dumps(json_ready({"command": command, "machine": machine, "rows": rows,
                                             "minutes": (time.perf_counter() - began) / 60}), indent=1, default=_json))


def _json(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    main()
