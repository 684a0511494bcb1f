"""``deepsalt demo``: the whole chain on the embedded demo region."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deepsalt.cli.common import ConfigOption, SetOption, app, console, error_boundary, say
from deepsalt.cli.view import view_command
from deepsalt.errors import ExitCode


@app.command()
@error_boundary
def demo(
    config: ConfigOption = None,
    set_: SetOption = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="A first look: small world, short training.")
    ] = False,
) -> None:
    """Generate the demo region, train, map; map the best baseline too and score both maps against the truth."""
    from deepsalt.config import load_config
    from deepsalt.demo import DemoConfig, run_demo

    overrides = [*(set_ or []), *(["quick=true"] if quick else [])]
    summary = run_demo(load_config(DemoConfig, config, overrides))
    table = Table(title="DeepSalt demo", show_header=False, box=None)
    table.add_row("map", Text(summary.map_url))
    table.add_row("best baseline's map", Text(summary.baseline_map_url))
    table.add_row("quicklooks", Text(summary.quicklook_dir))
    table.add_row("baselines report", Text(summary.report_url))
    table.add_row("stage times", ", ".join(f"{k} {v:.0f} s" for k, v in summary.seconds.items()))
    table.add_row("open with", Text(f'xr.open_zarr("{summary.map_url}", decode_coords="all")'))
    console.print(table)
    console.print(map_scores_table(summary.map_scores, summary.baseline))
    say("look at it:", view_command(summary.map_url), "bold")  # one line, to copy
    if not summary.map_ok:
        say("some map tiles failed:", "rerun the same command to retry them")
        raise typer.Exit(int(ExitCode.FAILURE))


def map_scores_table(scores: dict, baseline: str) -> Table:
    """DeepSalt's map and the best baseline's map against the truth, side by side."""
    from deepsalt.demo import BASELINE_MAP, DEEPSALT_MAP

    deep, base = scores[DEEPSALT_MAP], scores[BASELINE_MAP]
    table = Table(
        title=f"map vs truth on the same {deep['n']:,} pixels (predicted in both maps, not used in training)",
        box=None,
    )
    table.add_column("")
    table.add_column("DeepSalt", justify="right")
    table.add_column(f"best baseline: {baseline}", justify="right")
    rows = (("MAE (dS/m)", "mae", "{:.2f}"), ("R²", "r2", "{:.2f}"), ("R² of log1p", "r2_log", "{:.2f}"),
            ("95 % interval coverage", "coverage_95", "{:.0%}"))  # fmt: skip
    for label, key, fmt in rows:
        table.add_row(label, *(fmt.format(s[key]) if s[key] == s[key] else "—" for s in (deep, base)))
    return table
