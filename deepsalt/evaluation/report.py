"""The markdown report: targets, the ablation table, grouped tables and the figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepsalt.evaluation.harness import SEEN, UNSEEN
from deepsalt.evaluation.tables import Target

FIGURES = {
    "pred_vs_obs.png": "Predicted vs observed ECe, full model",
    "residuals_by_range.png": "Residuals by observed salinity range, full model, held-out blocks",
    "ablation.png": "Ablation: MAE of every model",
    "coverage.png": "Coverage of the predictive intervals",
}


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub markdown table; floats rounded, NaN shown as an em dash."""

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "—" if not np.isfinite(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _targets(targets: list[Target]) -> pd.DataFrame:
    rows = [
        {"target": t.name, "goal": t.goal, "result": "met" if t.met else "MISSED", "value": t.margin}
        for t in targets
    ]
    if any(np.isfinite(t.ceiling) for t in targets):
        for row, t in zip(rows, targets, strict=True):
            row["true pixel ECe (ceiling)"] = _formatted(t.ceiling, t.goal)
    return pd.DataFrame(rows)


def _formatted(value: float, goal: str) -> str:
    """A target value in the unit of its goal (a ratio, a share, or a plain number)."""
    if not np.isfinite(value):
        return "—"
    if goal.endswith("×"):
        return f"{value:.2f} ×"
    return f"{100 * value:.1f} %" if goal.endswith("%") else f"{value:.3f}"


def _ablation(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["n", "mae", "rmse", "r2", "r2_log", "coverage68", "coverage95"]
    wide = table.pivot(index="model", columns="split", values=cols)
    order = list(dict.fromkeys(table["model"]))
    out = pd.DataFrame({"model": order})
    for split in (SEEN, UNSEEN):
        if split not in table["split"].values:
            continue
        tag = "blocks" if split == SEEN else "unseen"
        for col in cols:
            values = wide[(col, split)].reindex(order)
            out[f"{col} ({tag})"] = values.astype(int).to_numpy() if col == "n" else values.to_numpy()
    return out


def render(
    title: str,
    context: dict[str, str],
    table: pd.DataFrame,
    targets: list[Target],
    groups: dict[str, pd.DataFrame],
    full_model: str,
) -> str:
    """The report's markdown text."""
    parts = [f"# {title}", ""]
    parts += [f"- **{key}**: {value}" for key, value in context.items()]
    parts += [
        "",
        "## Targets (full model)",
        "",
        markdown_table(_targets(targets)),
        "",
        "## Ablation (Table III style)",
        "",
        "MAE and RMSE in dS/m; coverage = share of samples inside the predicted ±z·σ interval "
        "(— = the model predicts no spread). `blocks` = out-of-fold predictions on held-out spatial "
        "blocks of the seen region; `unseen` = models fitted on all seen samples predicting the unseen region. "
        "`r2_log` = R² of log1p(ECe). The reference row, where present, is not a model: it is the true "
        "ECe of each sample's 30 m pixel, the best any pixel-based model can do on these samples.",
        "",
        markdown_table(_ablation(table)),
        "",
    ]
    names = {
        "salinity_range": "observed salinity range (dS/m)",
        "texture": "texture class",
        "climate": "climate class",
    }
    for column, frame in groups.items():
        parts += [
            f"## {full_model} by {names[column]}",
            "",
            markdown_table(frame[["split", "group", "n", "mae", "rmse", "r2", "r2_log"]]),
            "",
        ]
    parts += ["## Figures", ""]
    parts += [f"### {caption}\n\n![{caption}]({name})\n" for name, caption in FIGURES.items()]
    return "\n".join(parts)
