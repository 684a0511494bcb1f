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
    """Generate the demo region, train, map, score the map against the truth and evaluate."""
    from deepsalt.config import load_config
    from deepsalt.demo import DemoConfig, run_demo

    overrides = [*(set_ or []), *(["quick=true"] if quick else [])]
    summary = run_demo(load_config(DemoConfig, config, overrides))
    scores = summary.map_scores
    table = Table(title="DeepSalt demo", show_header=False, box=None)
    table.add_row("map", Text(summary.map_url))
    table.add_row("quicklooks", Text(summary.quicklook_dir))
    table.add_row("evaluation report", Text(summary.report_url or "skipped (--quick); run without --quick"))
    table.add_row(
        "map vs truth",
        f"MAE {scores['mae']:.2f} dS/m, R² {scores['r2']:.2f}, 95 % interval coverage "
        f"{scores['coverage_95']:.0%} on {scores['n']:,} pixels not used in training",
    )
    table.add_row("stage times", ", ".join(f"{k} {v:.0f} s" for k, v in summary.seconds.items()))
    table.add_row("open with", Text(f'xr.open_zarr("{summary.map_url}", group="0", decode_coords="all")'))
    console.print(table)
    say("look at it:", view_command(summary.map_url), "bold")  # one line, to copy
    if not summary.map_ok:
        say("some map tiles failed:", "rerun the same command to retry them")
        raise typer.Exit(int(ExitCode.FAILURE))
