"""``deepsalt evaluate``: spatial-block cross-validation, unseen region, baselines and the report."""

from __future__ import annotations

from rich.table import Table

from deepsalt.cli.common import ConfigOption, SetOption, app, console, error_boundary


@app.command()
@error_boundary
def evaluate(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Evaluate DeepSalt and its baselines on held-out spatial blocks and an unseen region; write the report."""
    from deepsalt.config import load_config
    from deepsalt.evaluation import run_evaluation
    from deepsalt.evaluation.config import EvaluateConfig

    settings = load_config(EvaluateConfig, config, list(set_ or []))
    summary = run_evaluation(settings)
    table = Table(title=f"evaluation ({summary.n_seen} seen, {summary.n_unseen} unseen samples)", box=None)
    for column in ("model", "split", "n", "MAE", "RMSE", "R²", "cov95"):
        table.add_column(column)
    for row in summary.table.itertuples(index=False):
        table.add_row(
            row.model,
            row.split,
            str(row.n),
            f"{row.mae:.3f}",
            f"{row.rmse:.3f}",
            f"{row.r2:.3f}",
            f"{row.coverage95:.2f}",
        )
    for target in summary.targets:
        table.add_row(f"target: {target.name}", target.goal, "", "", "", "", target.margin)
    console.print(table)
    print(summary.report_url)
