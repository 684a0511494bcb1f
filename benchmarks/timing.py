"""Timing primitives: warm-up then repeated runs, medians, and the ratios the targets are stated in.

Kept free of any DeepSalt import so the arithmetic is unit-tested on its own.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Wall seconds of repeated runs of one workload (warm-up runs excluded)."""

    seconds: tuple[float, ...]
    work: float
    """Units of work per run (pixels, samples): throughput = work / median seconds."""

    def __post_init__(self) -> None:
        if not self.seconds:
            raise ValueError("a Timing needs at least one measured run")
        if any(s <= 0 for s in self.seconds):
            raise ValueError(f"run times must be positive, got {self.seconds}")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def throughput(self) -> float:
        """Work per second at the median run time."""
        return self.work / self.median

    @property
    def per_unit(self) -> float:
        """Seconds per unit of work at the median run time."""
        return self.median / self.work

    @property
    def spread(self) -> float:
        """(max − min) / median: how noisy the runs were."""
        return (max(self.seconds) - min(self.seconds)) / self.median

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "median_s": self.median,
            "throughput_per_s": self.throughput,
            "spread": self.spread,
        }


def measure(run: Callable[[], Any], work: float, *, warmup: int, repeats: int) -> Timing:
    """Call ``run`` ``warmup`` times unmeasured, then ``repeats`` times measured."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats ≥ 1 and warmup ≥ 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return Timing(tuple(seconds), work)


def interleaved(
    runs: dict[str, Callable[[], Any]], work: dict[str, float], *, warmup: int, repeats: int
) -> dict[str, Timing]:
    """Measure several workloads round-robin, so load changes on a shared machine hit them alike."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats ≥ 1 and warmup ≥ 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        for run in runs.values():
            run()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: Timing(tuple(seconds[name]), work[name]) for name in runs}


def floor_ratio(end_to_end: float, read: float, model: float) -> float:
    """Per-pixel cost of the whole pipeline over the sum of its two floors (target ≤ 1.25)."""
    return end_to_end / (read + model)


@dataclass(frozen=True)
class LinearCost:
    """``seconds = fixed + per_unit × units``, fitted by least squares over runs of different sizes."""

    fixed: float
    per_unit: float


def fit_linear_cost(units: Sequence[float], seconds: Sequence[float]) -> LinearCost:
    """Separate a fixed start-up cost from the marginal cost per unit (needs two or more sizes)."""
    if len(units) != len(seconds):
        raise ValueError(f"{len(units)} sizes but {len(seconds)} times")
    if len(set(units)) < 2:
        raise ValueError("a marginal cost needs runs of at least two different sizes")
    slope, intercept = statistics.linear_regression(units, seconds)
    return LinearCost(fixed=intercept, per_unit=slope)
