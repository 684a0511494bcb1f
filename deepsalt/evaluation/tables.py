"""Every table of the report, computed from the per-sample predictions alone (``predictions.csv``).

Metrics are computed per (model, split, seed); a model's number is the mean over seeds and its
spread the sample standard deviation over seeds (ddof = 1; undefined for one seed). A difference
between two models is paired by seed: ``d_s = metric(A, s) − metric(B, s)``, reported as the mean
and sd of ``d_s``; it *exceeds the spread* when ``|mean| > 2 · sd``. The folds and the data are the
same for every seed, so the spread is what retraining alone changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from deepsalt.evaluation.classes import CLIMATE_ORDER, TEXTURE_ORDER
from deepsalt.evaluation.config import FULL_MODEL, PARTS
from deepsalt.evaluation.harness import SEEN, UNSEEN
from deepsalt.evaluation.metrics import (
    SALINITY_LABELS,
    grouped_metrics,
    interval_coverage,
    regression_metrics,
)
from deepsalt.evaluation.reference import REFERENCE_MODEL

GROUPINGS = {"salinity_range": SALINITY_LABELS, "texture": TEXTURE_ORDER, "climate": CLIMATE_ORDER}
METRICS = ("mae", "rmse", "r2", "r2_log", "coverage68", "coverage95")
SPREAD_FACTOR = 2.0
"""A difference is claimed only when it exceeds this many seed standard deviations."""

# The goals (docs: results/demo/NOTES.md).
MAE_RATIO_BLOCKS = 0.85
MAE_RATIO_UNSEEN = 0.90
R2_LOG_BLOCKS = 0.80
COVERAGE_95 = (0.90, 0.98)
MAP_R2_LOG = 0.75


def _scored(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite prediction (a model that could not predict a sample is not scored on it)."""
    return rows[np.isfinite(rows["predicted"].to_numpy(dtype=float))]


def spread(values) -> float:
    """Sample standard deviation over seeds (NaN for fewer than two)."""
    values = np.asarray(values, dtype=float)
    return float(np.std(values, ddof=1)) if values.size >= 2 else np.nan


def seed_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, split, seed): n, MAE, RMSE, R², R² of log1p and 68 %/95 % coverage."""
    out = []
    for (model, split, seed), rows in predictions.groupby(["model", "split", "seed"], sort=False):
        scored = _scored(rows)
        row = {"model": model, "kind": rows["kind"].iloc[0], "split": split, "seed": int(seed)}
        row |= regression_metrics(scored["observed"], scored["predicted"])
        row["missing"] = len(rows) - len(scored)
        has_std = len(scored) and np.isfinite(scored["std"].to_numpy(dtype=float)).all()
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


def summary_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, split): n, the number of seeds, and per metric its mean and ``<metric>_sd``."""
    out = []
    for (model, split), rows in per_seed.groupby(["model", "split"], sort=False):
        row = {"model": model, "kind": rows["kind"].iloc[0], "split": split}
        row |= {"n": int(rows["n"].max()), "seeds": len(rows)}
        for metric in METRICS:
            row[metric] = float(rows[metric].mean())
            row[f"{metric}_sd"] = spread(rows[metric])
        out.append(row)
    return pd.DataFrame(out)


def _per_seed(per_seed: pd.DataFrame, model: str, split: str, metric: str) -> pd.Series:
    rows = per_seed[(per_seed["model"] == model) & (per_seed["split"] == split)]
    return rows.set_index("seed")[metric].astype(float)


@dataclass(frozen=True)
class Difference:
    """``model − other`` in ``metric`` on ``split``, paired by seed."""

    model: str
    other: str
    split: str
    metric: str
    mean: float
    sd: float
    seeds: int

    @property
    def beyond_spread(self) -> bool:
        """|mean| > 2 sd (False when the spread is undefined: one seed)."""
        return bool(np.isfinite(self.sd) and abs(self.mean) > SPREAD_FACTOR * self.sd)

    def record(self) -> dict:
        return {**asdict(self), "beyond_spread": self.beyond_spread}


def paired(
    per_seed: pd.DataFrame, model: str, other: str, split: str, metric: str
) -> tuple[pd.Series, pd.Series]:
    """``metric`` of both models on ``split``, on the seeds both were run with."""
    a = _per_seed(per_seed, model, split, metric)
    b = _per_seed(per_seed, other, split, metric)
    both = a.index.intersection(b.index)
    return a.loc[both], b.loc[both]


def difference(per_seed: pd.DataFrame, model: str, other: str, split: str, metric: str) -> Difference:
    a, b = paired(per_seed, model, other, split, metric)
    d = (a - b).to_numpy()
    return Difference(model, other, split, metric, float(np.mean(d)) if d.size else np.nan, spread(d), d.size)


def best_baseline(summary: pd.DataFrame, split: str = SEEN) -> str | None:
    """The baseline with the lowest MAE (mean over seeds) on ``split``.

    Each split is compared with its own best: the baseline that wins the seen region's blocks can
    collapse on another region (PLSR does on the demo's unseen region), and beating it there says
    nothing about beating what a user of that region would pick.
    """
    rows = summary[(summary["kind"] == "baseline") & (summary["split"] == split)].dropna(subset=["mae"])
    return None if rows.empty else str(rows.loc[rows["mae"].idxmin(), "model"])


def differences(
    per_seed: pd.DataFrame, full: str, best: Mapping[str, str | None], ablations: Sequence[str]
) -> list[Difference]:
    """The differences the report claims: the full model against each split's best baseline (MAE,
    R² of log1p), and every ablation against the full model."""
    splits = [s for s in (SEEN, UNSEEN) if (per_seed["split"] == s).any()]
    out = []
    for s in splits:
        if best.get(s) is not None:
            out += [difference(per_seed, full, best[s], s, m) for m in ("mae", "r2_log")]
    for name in ablations:
        out += [difference(per_seed, name, full, s, m) for s in splits for m in ("mae", "r2_log")]
    return [d for d in out if d.seeds]


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    value: float
    """Mean over seeds of the quantity in the goal."""
    spread: float
    """Its standard deviation over seeds."""
    met: bool
    margin: str
    ceiling: float = np.nan
    """What the true-pixel reference reaches on the same quantity (NaN when it does not apply)."""


def _ratio_target(name: str, goal: float, ratios: np.ndarray, need_spread: bool, ceiling: float) -> Target:
    """``ratios`` (one per seed) must stay ≤ ``goal`` on average, and by more than 2 sd when ``need_spread``."""
    mean, sd = float(np.mean(ratios)), spread(ratios)
    gap = goal - mean
    met = gap >= 0 and (not need_spread or (np.isfinite(sd) and gap > SPREAD_FACTOR * sd))
    side = f"{abs(gap):.2f} {'below' if gap >= 0 else 'above'} {goal:.2f}"
    margin = f"{mean:.2f} ± {_sd(sd)} × ({'met' if met else 'missed'}: {side}"
    margin += f", {_in_sd(gap, sd)})" if need_spread else ")"
    goal_text = f"≤ {goal:.2f} ×" + (", by > 2 sd" if need_spread else "")
    return Target(name, goal_text, mean, sd, bool(met), margin, ceiling)


def _gain_target(name: str, gains: np.ndarray, unit: str, ceiling: float = np.nan) -> Target:
    """``gains`` (one per seed) must be positive by more than 2 sd."""
    mean, sd = float(np.mean(gains)), spread(gains)
    met = bool(mean > 0 and np.isfinite(sd) and mean > SPREAD_FACTOR * sd)
    margin = f"{mean:+.3f} ± {_sd(sd, 3)}{unit} ({'met' if met else 'missed'}: {_in_sd(mean, sd)})"
    return Target(name, "> 0, by > 2 sd", mean, sd, met, margin, ceiling)


def _level_target(
    name: str, values: np.ndarray, low: float, high: float, percent: bool, ceiling=np.nan
) -> Target:
    """The mean over seeds must lie in [low, high]."""
    mean, sd = float(np.mean(values)), spread(values)
    inside = bool(low <= mean <= high)
    scale, unit, digits = (100, " %", 1) if percent else (1, "", 3)
    goal = f"{scale * low:g}–{scale * high:g}{unit}" if np.isfinite(high) else f"≥ {scale * low:g}{unit}"
    gap = 0.0 if inside else min(abs(mean - low), abs(mean - high))
    margin = f"{scale * mean:.{digits}f} ± {_sd(scale * sd, digits)}{unit} ("
    margin += "met" if inside else f"missed by {scale * gap:.{digits}f}{unit}"
    return Target(name, goal, mean, sd, inside, margin + ")", ceiling)


def _sd(sd: float, digits: int = 2) -> str:
    return f"{sd:.{digits}f}" if np.isfinite(sd) else "—"


def _in_sd(gap: float, sd: float) -> str:
    if not np.isfinite(sd):
        return "one seed: no spread"
    return "seeds identical" if sd == 0 else f"{gap / sd:+.1f} sd"


def _not_computed(name: str, goal: str, why: str) -> Target:
    return Target(name, goal, np.nan, np.nan, False, f"not computed ({why})")


def targets(
    per_seed: pd.DataFrame,
    best_by_split: Mapping[str, str | None],
    ablations: Sequence[str],
    map_scores: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Target]:
    """The issue's targets for the full model, each met or missed and by how much, with the
    true-pixel reference's value beside those it applies to. The MAE ratios compare with the best
    baseline of their own split (``best_by_split``)."""
    best = best_by_split.get(SEEN)

    def values(model: str, split: str, metric: str) -> np.ndarray:
        return _per_seed(per_seed, model, split, metric).to_numpy()

    def ceiling(split: str, metric: str, against: str | None = None, ratio: bool = False) -> float:
        ref = values(REFERENCE_MODEL, split, metric)
        if not ref.size:
            return np.nan
        if against is None:
            return float(np.mean(ref))
        base = float(np.mean(values(against, split, metric)))
        return float(np.mean(ref)) / base if ratio else float(np.mean(ref)) - base

    def mae_ratio(split: str, goal: float, need_spread: bool) -> Target:
        against = best_by_split[split]
        a, b = paired(per_seed, FULL_MODEL, against, split, "mae")
        name = f"MAE vs the best baseline, {split}"
        return _ratio_target(
            name, goal, (a / b).to_numpy(), need_spread, ceiling(split, "mae", against, ratio=True)
        )

    out: list[Target] = []
    has_unseen = (per_seed["split"] == UNSEEN).any()
    if best is None:
        out.append(_not_computed("better than the best baseline", "—", "no baseline evaluated"))
    else:
        out.append(mae_ratio(SEEN, MAE_RATIO_BLOCKS, need_spread=True))
        a, b = paired(per_seed, FULL_MODEL, best, SEEN, "r2_log")
        gain = (a - b).to_numpy()
        out.append(
            _gain_target(
                f"R² of log1p above the best baseline's, {SEEN}", gain, "", ceiling(SEEN, "r2_log", best)
            )
        )
        if has_unseen and best_by_split.get(UNSEEN) is not None:
            out.append(mae_ratio(UNSEEN, MAE_RATIO_UNSEEN, need_spread=False))
    out.append(
        _level_target(
            "R² of log1p, held-out blocks",
            values(FULL_MODEL, SEEN, "r2_log"),
            R2_LOG_BLOCKS,
            np.inf,
            False,
            ceiling(SEEN, "r2_log"),
        )
    )
    for name in PARTS:
        if name in ablations:
            a, b = paired(per_seed, name, FULL_MODEL, SEEN, "mae")
            part = name.removeprefix("without ")
            out.append(
                _gain_target(f"removing {part} costs MAE, held-out blocks", (a - b).to_numpy(), " dS/m")
            )
    for split in (SEEN, UNSEEN) if has_unseen else (SEEN,):
        cover = values(FULL_MODEL, split, "coverage95")
        out.append(
            _level_target(f"95 % interval coverage, {split}", cover, *COVERAGE_95, True)
            if np.isfinite(cover).all() and cover.size
            else _not_computed(f"95 % interval coverage, {split}", "90–98 %", "no predictive spread")
        )
    if map_scores is not None:
        out += map_targets(map_scores)
    return out


def map_targets(scores: Mapping[str, Mapping[str, float]]) -> list[Target]:
    """The map against the truth (``deepsalt demo``'s ``map_vs_truth.json``): R² of log1p ≥ 0.75 and
    above the best baseline's map on the same pixels."""
    deep = float(scores["deepsalt"]["r2_log"])
    baseline_key = next((key for key in scores if "baseline" in key), None)
    out = [_level_target("map R² of log1p against the truth", np.array([deep]), MAP_R2_LOG, np.inf, False)]
    if baseline_key is None:
        out.append(
            _not_computed("map R² of log1p above the best baseline's map", "> baseline", "no baseline map")
        )
    else:
        base = float(scores[baseline_key]["r2_log"])
        gain = deep - base
        out.append(
            Target(
                "map R² of log1p above the best baseline's map",
                "> baseline",
                gain,
                np.nan,
                bool(gain > 0),
                f"{deep:.3f} vs {base:.3f} ({'met' if gain > 0 else 'missed'}: {gain:+.3f})",
            )
        )
    return out


def group_tables(predictions: pd.DataFrame, model: str) -> dict[str, pd.DataFrame]:
    """Per-range, per-texture and per-climate metrics of ``model`` (mean over seeds), both splits."""
    tables = {}
    for column, order in GROUPINGS.items():
        frames = []
        for (split, seed), rows in _scored(predictions[predictions["model"] == model]).groupby(
            ["split", "seed"], sort=False
        ):
            table = grouped_metrics(rows["observed"], rows["predicted"], rows[column], order=order)
            frames.append(table.assign(split=split, seed=seed))
        if not frames:
            tables[column] = pd.DataFrame()
            continue
        stacked = pd.concat(frames, ignore_index=True)
        tables[column] = (
            stacked.groupby(["split", "group"], sort=False)[["n", "mae", "rmse", "r2", "r2_log"]]
            .mean()
            .reset_index()
            .astype({"n": int})
        )
    return tables


DOMAIN_GROUPS = ("inside (≤ 1)", "flagged (> 1)")


def domain_table(predictions: pd.DataFrame, model: str) -> pd.DataFrame:
    """``model``'s samples inside and beyond its training domain (domain score ≤ 1 / > 1), per split:
    their share, MAE and 95 % coverage, mean ± sd over seeds.

    Whether the score and the spread do their job: flagged samples should be the worse predicted
    ones, and their intervals (widened with the score) should still hold the truth. Empty without
    domain scores (the baselines, or predictions written before they were recorded).
    """
    if "domain_score" not in predictions:
        return pd.DataFrame()
    rows = _scored(predictions[predictions["model"] == model])
    rows = rows[np.isfinite(rows["domain_score"].to_numpy(dtype=float))]
    per_seed = []
    for (split, seed), part in rows.groupby(["split", "seed"], sort=False):
        flagged = part["domain_score"].to_numpy(dtype=float) > 1.0
        for group, members in zip(DOMAIN_GROUPS, (part[~flagged], part[flagged]), strict=True):
            coverage = (
                interval_coverage(
                    members["observed"],
                    members["predicted"],
                    members["std"],
                    (0.95,),
                    members["transform"].iloc[0],
                )[0.95]
                if len(members)
                else np.nan
            )
            per_seed.append(
                {
                    "split": split,
                    "domain score": group,
                    "seed": seed,
                    "share": len(members) / len(part),
                    "n": len(members),
                    "mae": regression_metrics(members["observed"], members["predicted"])["mae"],
                    "coverage95": coverage,
                }
            )
    if not per_seed:
        return pd.DataFrame()
    stacked = pd.DataFrame(per_seed)
    grouped = stacked.groupby(["split", "domain score"], sort=False)
    table = grouped[["share", "n", "mae", "coverage95"]].mean()
    spreads = grouped[["share", "mae", "coverage95"]].agg(spread).add_suffix("_sd")
    return table.join(spreads).reset_index()


@dataclass(frozen=True)
class Summary:
    """Everything the report states, recomputable from ``predictions.csv`` by :func:`summarise`."""

    per_seed: pd.DataFrame
    table: pd.DataFrame
    best_baseline: str | None
    """Lowest held-out-block MAE: the baseline users of the seen region would pick (and the one mapped)."""
    differences: list[Difference] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    best_unseen_baseline: str | None = None
    """Lowest MAE on the unseen region: the unseen-region target compares with it."""

    def record(self) -> dict:
        """The JSON form written to ``metrics.json``."""
        return {
            "seeds": sorted(int(s) for s in self.per_seed["seed"].unique()),
            "best_baseline": self.best_baseline,
            "best_unseen_baseline": self.best_unseen_baseline,
            "summary": self.table.to_dict(orient="records"),
            "per_seed": self.per_seed.to_dict(orient="records"),
            "differences": [d.record() for d in self.differences],
            "targets": [asdict(t) for t in self.targets],
        }


def summarise(
    predictions: pd.DataFrame,
    ablations: Sequence[str] = (),
    map_scores: Mapping[str, Mapping[str, float]] | None = None,
) -> Summary:
    """Per-seed metrics, their means and spreads, the claimed differences and the targets."""
    per_seed = seed_table(predictions)
    table = summary_table(per_seed)
    best = {split: best_baseline(table, split) for split in (SEEN, UNSEEN)}
    present = set(per_seed["model"])
    if FULL_MODEL not in present:
        return Summary(per_seed, table, best[SEEN], best_unseen_baseline=best[UNSEEN])
    ablations = [a for a in ablations if a in present]
    return Summary(
        per_seed,
        table,
        best[SEEN],
        differences(per_seed, FULL_MODEL, best, ablations),
        targets(per_seed, best, ablations, map_scores),
        best[UNSEEN],
    )
