"""Rebuild the pretrained detector shipped in the package (``src/deepfake_detect/pretrained/default.dfd``), bit for bit.

    python tools/build_pretrained.py --data ../shared/data/ffpp_c23_dev
    python tools/build_pretrained.py --data ../shared/data/ffpp_c23_dev --preset face_region_temporal
    python tools/build_pretrained.py --data ../shared/data/ffpp_c23_dev --check    # rebuild, compare sha256

The recipe: preset `--preset` (default ``face_region_calibrated``) with the bundled backbone weights
(``weights="bundled"``: the MobileNet V1 0.5 file shipped in the package, so the model works
offline), trained with the preset's training method on ALL videos of `--data`
(``validation_split=0``: every video trains the head; the numbers measured for the recipe come
from grouped cross-validation, see the model card). Deterministic: Keras' and NumPy's seeds are
set, the head's initialisation and batches are seeded, and the model file has fixed zip dates,
so the same data, code and library versions give the same bytes. The script prints the file's
sha256; ``--check`` builds into a temporary file and compares it with `--out`'s (exit 1 if they
differ). ``--cache none`` recomputes every feature; the default is a fresh cache in a temporary
folder, so a rebuild never reads features computed by other code.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

OUT = ROOT / "src" / "deepfake_detect" / "pretrained" / "default.dfd"


def build(data: str, preset: str, out: Path, cache: str | None, seed: int = 0, verbose: int = 1) -> str:
    """Train `preset` on all of `data` and save it to `out`; returns the file's sha256."""
    from deepfake_detect import DeepfakeDetector  # first: it sets Keras' backend (JAX)

    import keras

    keras.utils.set_random_seed(seed)
    detector = DeepfakeDetector.from_preset(preset, weights="bundled", cache=cache)
    if detector.preset_.train == "fine_tune":
        detector.fine_tune(data, validation_split=0, seed=seed, verbose=verbose)
    else:
        detector.fit(data, validation_split=0, seed=seed, verbose=verbose)
    detector.save(out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ffpp_c23_dev"),
                        help="The training videos (real/ and fake/, or a labels.csv).")
    parser.add_argument("--preset", default="face_region_calibrated", help="The recipe (see `deepfake-detect list presets`).")
    parser.add_argument("--out", default=str(OUT), help="Where to write the model file.")
    parser.add_argument("--cache", default=None,
                        help="Feature cache: a path, or 'none' (default: a fresh one in a temporary folder).")
    parser.add_argument("--check", action="store_true", help="Build into a temporary file and compare with --out.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = None if args.cache == "none" else args.cache or str(Path(tmp) / "features.sqlite")
        target = Path(tmp) / "rebuilt.dfd" if args.check else Path(args.out)
        digest = build(args.data, args.preset, target, cache)
        print(f"{target}: {target.stat().st_size} bytes, sha256 {digest}")
        if args.check:
            shipped = hashlib.sha256(Path(args.out).read_bytes()).hexdigest()
            same = shipped == digest
            print(f"{args.out}: sha256 {shipped}: {'identical' if same else 'DIFFERENT'}")
            return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
