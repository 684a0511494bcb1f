"""``deepsalt demo``: the whole chain on the embedded demo region."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from deepsalt.cli.common import EXIT_FAILURE, ConfigOption, SetOption, app, console, error_boundary
from deepsalt.cli.view import view_command


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
    table.add_row("map", summary.map_url)
    table.add_row("quicklooks", summary.quicklook_dir)
    table.add_row("evaluation report", summary.report_url or "skipped (--quick); run without --quick")
    table.add_row(
        "map vs truth",
        f"MAE {scores['mae']:.2f} dS/m, R² {scores['r2']:.2f}, 95 % interval coverage "
        f"{scores['coverage_95']:.0%} on {scores['n']:,} pixels not used in training",
    )
    table.add_row("stage times", ", ".join(f"{k} {v:.0f} s" for k, v in summary.seconds.items()))
    table.add_row("open with", f'xr.open_zarr("{summary.map_url}", group="0", decode_coords="all")')
    console.print(table)
    console.print(f"look at it: {view_command(summary.map_url)}", soft_wrap=True)  # one line, to copy
    if not summary.map_ok:
        console.print("[bold red]some map tiles failed[/]: rerun the same command to retry them")
        raise typer.Exit(EXIT_FAILURE)
