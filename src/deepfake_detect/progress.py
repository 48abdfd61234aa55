"""Progress bars for long loops, on standard error so results on standard output stay clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable


def progress(items: Iterable, verbose: int, what: str, total: int | None = None) -> Iterable:
    """`items`, wrapped in a tqdm bar labelled `what` when `verbose` (`total`: for generators)."""
    if not verbose:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, total=total, unit="input", file=sys.stderr)
