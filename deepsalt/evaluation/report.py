"""The markdown report: targets, every model with its seed spread, the claimed differences, grouped
tables and the figures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepsalt.evaluation.harness import SEEN, UNSEEN
from deepsalt.evaluation.tables import SPREAD_FACTOR, Difference, Summary, Target

FIGURES = {
    "pred_vs_obs.png": "Predicted vs observed ECe, full model (first seed)",
    "residuals_by_range.png": "Residuals by observed salinity range, full model, held-out blocks (first seed)",
    "ablation.png": "MAE of every model, mean over seeds ± sd",
    "coverage.png": "Coverage of the predictive intervals (all seeds)",
}
METRIC_NAMES = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "r2_log": "R² log1p", "coverage95": "cov95"}


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub markdown table; floats rounded, NaN shown as an em dash."""

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return "—" if not np.isfinite(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _formatted(value: float, goal: str) -> str:
    """A target value in the unit of its goal (a ratio, a share, or a plain number)."""
    if not np.isfinite(value):
        return "—"
    if "×" in goal:
        return f"{value:.2f} ×"
    return f"{100 * value:.1f} %" if goal.endswith("%") else f"{value:.3f}"


def _targets(targets: list[Target]) -> pd.DataFrame:
    rows = [
        {
            "target": t.name,
            "goal": t.goal,
            "result": "met" if t.met else "MISSED",
            "value ± seed sd": t.margin,
        }
        for t in targets
    ]
    if any(np.isfinite(t.ceiling) for t in targets):
        for row, t in zip(rows, targets, strict=True):
            row["true pixel ECe (ceiling)"] = _formatted(t.ceiling, t.goal)
    return pd.DataFrame(rows)


def _mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{mean:.{digits}f}"


def models_table(table: pd.DataFrame, split: str) -> pd.DataFrame:
    """One row per model on ``split``: n, seeds and every metric as mean ± sd over seeds."""
    part = table[table["split"] == split]
    out = pd.DataFrame({"model": part["model"], "kind": part["kind"], "n": part["n"], "seeds": part["seeds"]})
    for metric, name in METRIC_NAMES.items():
        out[name] = [_mean_sd(m, s) for m, s in zip(part[metric], part[f"{metric}_sd"], strict=True)]
    return out.reset_index(drop=True)


def _differences(items: list[Difference]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "difference": f"{d.model} − {d.other}",
                "split": d.split,
                "metric": METRIC_NAMES.get(d.metric, d.metric),
                "mean": d.mean,
                "seed sd": d.sd,
                "seeds": d.seeds,
                f"|mean| > {SPREAD_FACTOR:g} sd": "yes" if d.beyond_spread else "no",
            }
            for d in items
        ]
    )


def domain_section(table: pd.DataFrame | None, full_model: str) -> list[str]:
    """The report's lines on the domain score: does it flag the samples the model gets wrong, and do
    the intervals it widens still hold them (none without domain scores)."""
    if table is None or table.empty:
        return []
    shown = pd.DataFrame(
        {
            "split": table["split"],
            "domain score": table["domain score"],
            "share of samples": [
                _mean_sd(100 * m, 100 * s, 1) + " %"
                for m, s in zip(table["share"], table["share_sd"], strict=True)
            ],
            "MAE (dS/m)": [_mean_sd(m, s) for m, s in zip(table["mae"], table["mae_sd"], strict=True)],
            "cov95": [
                _mean_sd(100 * m, 100 * s, 1) + " %" if np.isfinite(m) else "—"
                for m, s in zip(table["coverage95"], table["coverage95_sd"], strict=True)
            ],
        }
    )
    return [
        f"## {full_model} inside and beyond its training domain (mean over seeds ± seed sd)",
        "",
        "The domain score is 1 at the 95th percentile of held-out training pixels; a sample whose "
        "covariates lie beyond the training range scores at least 1 + that excess in training sd. "
        "Beyond 1 the predictive variance grows in proportion to the score.",
        "",
        markdown_table(shown),
        "",
    ]


def render(
    title: str,
    context: dict[str, str],
    summary: Summary,
    groups: dict[str, pd.DataFrame],
    full_model: str,
    domain: pd.DataFrame | None = None,
) -> str:
    """The report's markdown text."""
    parts = [f"# {title}", ""]
    parts += [f"- **{key}**: {value}" for key, value in context.items()]
    parts += ["", "## Targets (full model)", ""]
    if summary.targets:
        parts += [
            "Each value is the mean over seeds ± the seed standard deviation; a target that compares "
            "two models uses the per-seed paired difference or ratio.",
            "",
            markdown_table(_targets(summary.targets)),
        ]
    else:
        parts.append("No DeepSalt variant was evaluated: no targets.")
    parts += [
        "",
        "## Every model, mean over seeds ± seed sd",
        "",
        "MAE and RMSE in dS/m; `R² log1p` = R² of log1p(ECe); `cov95` = share of samples inside the "
        "predicted 95 % interval (— = no predictive spread). `held-out blocks` = out-of-fold predictions "
        "on held-out spatial blocks of the seen region; `unseen region` = models fitted on all seen data "
        "predicting the unseen region. Every model is scored on the same samples (a measured ECe and a "
        "complete pairing). The reference row is not a model: it is the true ECe of each sample's 30 m "
        "pixel, the best any pixel-based model can do on these samples."
        + (
            f" Best baseline (lowest held-out-block MAE): **{summary.best_baseline}**."
            if summary.best_baseline
            else ""
        )
        + (
            f" On the unseen region (lowest MAE there, which its target compares with): "
            f"**{summary.best_unseen_baseline}**."
            if summary.best_unseen_baseline
            else ""
        ),
        "",
    ]
    for split in (SEEN, UNSEEN):
        if (summary.table["split"] == split).any():
            parts += [f"### {split}", "", markdown_table(models_table(summary.table, split)), ""]
    if summary.differences:
        parts += [
            "## Differences, paired by seed",
            "",
            f"`mean` and `seed sd` of metric(first) − metric(second) over seeds; a difference is claimed only "
            f"when |mean| > {SPREAD_FACTOR:g} sd. For MAE a negative difference favours the first model, "
            "for R² a positive one.",
            "",
            markdown_table(_differences(summary.differences)),
            "",
        ]
    names = {
        "salinity_range": "observed salinity range (dS/m)",
        "texture": "texture class",
        "climate": "climate class",
    }
    for column, frame in groups.items():
        if frame.empty:
            continue
        parts += [
            f"## {full_model} by {names[column]} (mean over seeds)",
            "",
            markdown_table(frame[["split", "group", "n", "mae", "rmse", "r2", "r2_log"]]),
            "",
        ]
    parts += domain_section(domain, full_model)
    parts += ["## Figures", ""]
    parts += [f"### {caption}\n\n![{caption}]({name})\n" for name, caption in FIGURES.items()]
    return "\n".join(parts)
