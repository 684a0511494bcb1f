"""The report's figures (PNG bytes, written by the caller to any fsspec URL)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepsalt.evaluation.harness import SEEN, UNSEEN
from deepsalt.evaluation.metrics import SALINITY_LABELS, interval_coverage


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _first_seed(predictions: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = predictions[predictions["model"] == model]
    return rows[rows["seed"] == rows["seed"].min()]


def predicted_vs_observed(predictions: pd.DataFrame, model: str) -> bytes:
    """Scatter of predicted against observed ECe (first seed), one panel per split, with the 1:1 line."""
    rows = _first_seed(predictions, model)
    splits = [s for s in (SEEN, UNSEEN) if (rows["split"] == s).any()]
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4.6), squeeze=False)
    top = float(np.nanmax(rows[["observed", "predicted"]].to_numpy())) * 1.05
    for ax, split in zip(axes[0], splits, strict=True):
        part = rows[rows["split"] == split]
        ax.scatter(part["observed"], part["predicted"], s=9, alpha=0.6)
        ax.plot([0, top], [0, top], color="k", lw=1)
        ax.set(xlim=(0, top), ylim=(0, top), xlabel="observed ECe (dS/m)", ylabel="predicted ECe (dS/m)")
        ax.set_xscale("symlog", linthresh=1.0)  # ECe is heavy-tailed: linear below 1 dS/m, log above
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(f"{model}: {split} (n={len(part)})")
    return _png(fig)


def residuals_by_range(predictions: pd.DataFrame, model: str) -> bytes:
    """Box plots of residuals (predicted − observed) per observed salinity range (first seed)."""
    rows = _first_seed(predictions, model)
    rows = rows[rows["split"] == SEEN]
    data = [
        (rows["predicted"] - rows["observed"])[rows["salinity_range"] == r].dropna() for r in SALINITY_LABELS
    ]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.boxplot(data, tick_labels=[f"{r}\n(n={len(d)})" for r, d in zip(SALINITY_LABELS, data, strict=True)])
    ax.axhline(0, color="k", lw=1)
    ax.set(xlabel="observed salinity range (dS/m)", ylabel="residual (dS/m)", title=f"{model}: {SEEN}")
    return _png(fig)


def ablation_bars(table: pd.DataFrame) -> bytes:
    """MAE of every model on held-out blocks and on the unseen region: mean over seeds, ± sd."""
    models = list(dict.fromkeys(table["model"]))
    splits = [s for s in (SEEN, UNSEEN) if (table["split"] == s).any()]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(models) + 1.5))
    height = 0.8 / len(splits)
    for i, split in enumerate(splits):
        part = table[table["split"] == split].set_index("model").reindex(models)
        ax.barh(
            np.arange(len(models)) + i * height,
            part["mae"],
            xerr=part["mae_sd"].fillna(0.0),
            height=height,
            label=split,
            capsize=2,
        )
    ax.set_yticks(np.arange(len(models)) + height * (len(splits) - 1) / 2, models)
    ax.invert_yaxis()
    ax.set(xlabel="MAE (dS/m)", title="MAE by model (mean over seeds ± sd)")
    ax.legend()
    return _png(fig)


def coverage_curve(predictions: pd.DataFrame, models: list[str]) -> bytes:
    """Empirical against nominal coverage of the central Gaussian intervals (diagonal = calibrated)."""
    levels = np.linspace(0.05, 0.99, 30)
    fig, ax = plt.subplots(figsize=(5, 4.6))
    for model in models:
        for split, style in ((SEEN, "-"), (UNSEEN, "--")):
            rows = predictions[(predictions["model"] == model) & (predictions["split"] == split)].dropna(
                subset=["predicted", "std"]
            )
            if len(rows):
                cover = interval_coverage(
                    rows["observed"], rows["predicted"], rows["std"], levels, rows["transform"].iloc[0]
                )
                ax.plot(levels, list(cover.values()), style, label=f"{model}, {split}")
    ax.plot([0, 1], [0, 1], color="k", lw=1)
    for level in (0.68, 0.95):
        ax.axvline(level, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="nominal coverage", ylabel="empirical coverage", title="Predictive interval coverage")
    ax.legend(fontsize=7)
    return _png(fig)
