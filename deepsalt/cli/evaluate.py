"""``deepsalt evaluate``: spatial-block cross-validation over seeds, unseen region, baselines and the report."""

from __future__ import annotations

from rich.table import Table

from deepsalt.cli.common import ConfigOption, SetOption, app, console, error_boundary


@app.command()
@error_boundary
def evaluate(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Evaluate DeepSalt, its ablations and the baselines on held-out spatial blocks and an unseen
    region, over several training seeds; write the report."""
    from deepsalt.config import load_config
    from deepsalt.evaluation import run_evaluation
    from deepsalt.evaluation.config import EvaluateConfig
    from deepsalt.evaluation.report import METRIC_NAMES, models_table

    settings = load_config(EvaluateConfig, config, list(set_ or []))
    summary = run_evaluation(settings)
    title = (
        f"evaluation ({summary.n_seen} seen, {summary.n_unseen} unseen samples; "
        f"mean ± sd over seeds {settings.seeds})"
    )
    table = Table(title=title, box=None)
    for column in ("model", "split", "n", *METRIC_NAMES.values()):
        table.add_column(column)
    for split in dict.fromkeys(summary.table["split"]):
        for row in models_table(summary.table, split).itertuples(index=False):
            table.add_row(row.model, split, str(row.n), *(str(v) for v in row[4:]))
    for target in summary.targets:
        table.add_row(
            f"target: {target.name}", target.goal, "", "met" if target.met else "MISSED", target.margin
        )
    console.print(table)
    print(summary.report_url)
