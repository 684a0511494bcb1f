"""Tables from the per-sample predictions: the ablation, grouped metrics, coverage and the targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepsalt.evaluation.classes import CLIMATE_ORDER, TEXTURE_ORDER
from deepsalt.evaluation.config import FULL_MODEL, SATELLITE_ONLY
from deepsalt.evaluation.harness import SEEN, UNSEEN
from deepsalt.evaluation.metrics import (
    SALINITY_LABELS,
    grouped_metrics,
    interval_coverage,
    regression_metrics,
)
from deepsalt.evaluation.reference import REFERENCE_MODEL

GROUPINGS = {"salinity_range": SALINITY_LABELS, "texture": TEXTURE_ORDER, "climate": CLIMATE_ORDER}


def _scored(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite prediction (a model that could not predict a sample is not scored on it)."""
    return rows[np.isfinite(rows["predicted"].to_numpy(dtype=float))]


def ablation_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, split): n, MAE, RMSE, R², and 68 %/95 % coverage where a spread exists."""
    out = []
    for (model, split), rows in predictions.groupby(["model", "split"], sort=False):
        scored = _scored(rows)
        row = {"model": model, "kind": rows["kind"].iloc[0], "split": split}
        row |= regression_metrics(scored["observed"], scored["predicted"])
        row["missing"] = len(rows) - len(scored)
        has_std = np.isfinite(scored["std"].to_numpy(dtype=float)).all() and len(scored)
        cover = (
            interval_coverage(
                scored["observed"], scored["predicted"], scored["std"], transform=rows["transform"].iloc[0]
            )
            if has_std
            else {}
        )
        row["coverage68"] = cover.get(0.68, np.nan)
        row["coverage95"] = cover.get(0.95, np.nan)
        out.append(row)
    return pd.DataFrame(out)


def group_tables(predictions: pd.DataFrame, model: str) -> dict[str, pd.DataFrame]:
    """Per-range, per-texture and per-climate metrics of ``model``, seen and unseen side by side."""
    tables = {}
    for column, order in GROUPINGS.items():
        frames = []
        for split, rows in _scored(predictions[predictions["model"] == model]).groupby("split", sort=False):
            table = grouped_metrics(rows["observed"], rows["predicted"], rows[column], order=order)
            frames.append(table.assign(split=split))
        tables[column] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return tables


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    value: float
    met: bool
    margin: str
    ceiling: float = np.nan
    """What the true-pixel reference reaches on the same metric (NaN when it was not scored)."""


def _metric(table: pd.DataFrame, model: str, split: str, column: str) -> float:
    hit = table[(table["model"] == model) & (table["split"] == split)]
    return float(hit[column].iloc[0]) if len(hit) else np.nan


def _target_values(table: pd.DataFrame, model: str) -> dict[str, float]:
    """The four target metrics of ``model``; the MAE ratio is always against the satellite-only student."""
    mae = _metric(table, model, SEEN, "mae")
    return {
        "mae_ratio": mae / _metric(table, SATELLITE_ONLY, SEEN, "mae"),
        "r2": _metric(table, model, SEEN, "r2"),
        "unseen_ratio": _metric(table, model, UNSEEN, "mae") / mae,
        "coverage95": _metric(table, model, SEEN, "coverage95"),
    }


def targets(table: pd.DataFrame) -> list[Target]:
    """The issue's targets for the full model, each met or missed and by how much (NaN = not computed),
    with the true-pixel reference's value beside each where that row was scored."""
    full = _target_values(table, FULL_MODEL)
    ceiling = _target_values(table, REFERENCE_MODEL)
    ratio, r2, unseen_ratio, cov95 = full.values()
    out = [
        Target(
            "MAE vs satellite-only student (held-out blocks)",
            "≤ 0.50 ×",
            ratio,
            bool(ratio <= 0.5),
            f"{ratio:.2f} × ({'met' if ratio <= 0.5 else 'missed'} by {abs(ratio - 0.5):.2f})",
            ceiling["mae_ratio"],
        ),
        Target(
            "R² (held-out blocks)",
            "≥ 0.85",
            r2,
            bool(r2 >= 0.85),
            f"{r2:.3f} ({'+' if r2 >= 0.85 else '−'}{abs(r2 - 0.85):.3f})",
            ceiling["r2"],
        ),
        Target(
            "unseen-region MAE vs seen MAE",
            "≤ 2.0 ×",
            unseen_ratio,
            bool(unseen_ratio <= 2.0),
            f"{unseen_ratio:.2f} × ({'met' if unseen_ratio <= 2 else 'missed'} by {abs(unseen_ratio - 2):.2f})",
            ceiling["unseen_ratio"],
        ),
    ]
    inside = bool(0.90 <= cov95 <= 0.98)
    gap = 0.0 if inside else min(abs(cov95 - 0.90), abs(cov95 - 0.98))
    out.append(
        Target(
            "95 % interval coverage (held-out blocks)",
            "90–98 %",
            cov95,
            bool(inside),
            f"{100 * cov95:.1f} % ({'inside' if inside else f'outside by {100 * gap:.1f} points'})",
            ceiling["coverage95"],
        )
    )
    return [
        t if np.isfinite(t.value) else Target(t.name, t.goal, t.value, False, "not computed", t.ceiling)
        for t in out
    ]
