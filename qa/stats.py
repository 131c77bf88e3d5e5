"""Summary statistics the benchmarks and the replay report print."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of the values at or below it.

    Unlike an interpolated percentile, the result is always one of the measured values: ``percentile([1, 2, 3, 4],
    0.95) == 4``.

    Raises:
        ValueError: `values` is empty, or `fraction` is not in [0, 1].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float:
    """The median (the mean of the two middle values for an even count)."""
    return statistics.median(values)
