"""Small statistics shared by recordings and the benches (lowat, rcvbuf)."""

from __future__ import annotations

import math
import statistics
from typing import Optional, Sequence


def percentile(values: Sequence[float], fraction: float) -> Optional[float]:
    """The nearest-rank percentile (fraction 0.5 is the median); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median_or_none(values: Sequence[Optional[float]]) -> Optional[float]:
    """The median of the values that are not None; None when there are none."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def slope(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """The least-squares slope of ys against xs; None with fewer than two distinct xs.

    Goodput is the slope of bytes read against time: under loss, in-order
    data arrives in bursts when a retransmission fills a hole, and the
    difference between a window's two ends would swing with where those
    bursts fall; the fitted slope weighs every read.
    """
    count = len(xs)
    if count < 2:
        return None
    mean_x = sum(xs) / count
    mean_y = sum(ys) / count
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread
