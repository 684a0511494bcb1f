"""``deepsalt map``, ``deepsalt export`` and ``deepsalt quicklook``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from deepsalt.cli.common import EXIT_FAILURE, ConfigOption, SetOption, app, console, error_boundary
from deepsalt.cli.view import view_command

StoreArg = Annotated[str, typer.Argument(help="The map's Zarr store (local path or s3://...).")]
OutArg = Annotated[str, typer.Argument(help="Output folder (local path or s3://...).")]


@app.command("map")
@error_boundary
def map_command(config: ConfigOption = None, set_: SetOption = None) -> None:
    """Map a region with a trained student into a sharded Zarr store (resumes an interrupted run)."""
    from deepsalt.config import load_config
    from deepsalt.mapping import MapConfig, run_map

    summary = run_map(load_config(MapConfig, config, set_ or []))
    table = Table(title="map", show_header=False, box=None)
    table.add_row("store", summary.store_url)
    table.add_row("STAC item", summary.stac_item_url)
    table.add_row(
        "tiles",
        f"{summary.tiles_done} mapped, {summary.tiles_skipped} already done, "
        f"{summary.tiles_empty} without imagery, {len(summary.failures)} failed, {summary.tiles_total} total",
    )
    table.add_row(
        "speed", f"{summary.pixels:,} px in {summary.seconds:.1f} s = {summary.pixels_per_s:,.0f} px/s"
    )
    table.add_row("open with", f'xr.open_zarr("{summary.store_url}", group="0", decode_coords="all")')
    console.print(table)
    console.print(f"look at it: {view_command(summary.store_url)}", soft_wrap=True)  # one line, to copy
    for tile, reason in summary.failures.items():
        console.print(f"[bold red]failed[/] {tile}: {reason}")
    if not summary.ok:
        console.print(
            f"[bold red]{len(summary.failures)} tile(s) failed[/]; rerun the same command to retry them"
        )
        raise typer.Exit(EXIT_FAILURE)


@app.command()
@error_boundary
def export(
    store: StoreArg,
    out: OutArg,
    variable: Annotated[
        list[str] | None, typer.Option("--var", help="Variable(s) to export (default all).")
    ] = None,
    level: Annotated[int, typer.Option(help="Pyramid level (0 = full resolution).")] = 0,
) -> None:
    """Export a map to Cloud-Optimised GeoTIFFs (one per variable) for GIS software."""
    from deepsalt.mapping.export import DEFAULT_VARIABLES, export_cog

    for name, url in export_cog(store, out, variable or DEFAULT_VARIABLES, level).items():
        console.print(f"{name}: {url}")


@app.command()
@error_boundary
def quicklook(store: StoreArg, out: OutArg) -> None:
    """Write PNG quicklooks of ECe (salinity classes), its uncertainty and the domain score."""
    from deepsalt.mapping.quicklook import write_quicklooks

    for name, url in write_quicklooks(store, out).items():
        console.print(f"{name}: {url}")
