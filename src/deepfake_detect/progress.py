"""Progress bars for long loops, on standard error so results on standard output stay clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable


def progress(items: Iterable, verbose: int, what: str) -> Iterable:
    """`items`, wrapped in a tqdm bar labelled `what` when `verbose`."""
    if not verbose:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, unit="input", file=sys.stderr)
