"""``deepsalt map``, ``deepsalt export`` and ``deepsalt quicklook``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deepsalt.cli.common import ConfigOption, InputsOption, SetOption, app, console, error_boundary, say
from deepsalt.cli.view import view_command
from deepsalt.errors import ConfigError, ExitCode, InputDataError

StoreArg = Annotated[str, typer.Argument(help="The map's Zarr store (local path or s3://...).")]
OutArg = Annotated[str, typer.Argument(help="Output folder (local path or s3://...).")]
RestartOption = Annotated[
    bool,
    typer.Option(
        "--restart",
        help="Discard an existing store made with other inputs (another model, other covariates) and map again.",
    ),
]


@app.command("map")
@error_boundary
def map_command(
    config: ConfigOption = None,
    set_: SetOption = None,
    restart: RestartOption = False,
    inputs: InputsOption = None,
) -> None:
    """Map a region with a trained student into a sharded Zarr store (resumes an interrupted run)."""
    from deepsalt.config import load_config, read_yaml
    from deepsalt.inputs import ImageryInputs
    from deepsalt.mapping import MapConfig, run_map
    from deepsalt.mapping.records import TileStatus

    sections = None
    if inputs:  # the imagery, covariates and survey of a training inputs file; its lab tables stay out
        given = read_yaml(inputs)
        sections = {"inputs": {k: v for k, v in given.items() if k in ImageryInputs.model_fields}}
    summary = run_map(load_config(MapConfig, config, set_ or [], sections), restart=restart)
    table = Table(title="map", show_header=False, box=None)
    table.add_row("store", Text(summary.store_url))
    table.add_row("STAC item", Text(summary.stac_item_url))
    table.add_row(
        "tiles",
        f"{summary.tiles_done} mapped, {summary.tiles_skipped} already done, "
        f"{summary.tiles_empty} without imagery, {len(summary.failures)} failed, {summary.tiles_total} total",
    )
    table.add_row(
        "speed", f"{summary.pixels:,} px in {summary.seconds:.1f} s = {summary.pixels_per_s:,.0f} px/s"
    )
    table.add_row("open with", Text(f'xr.open_zarr("{summary.store_url}", decode_coords="all")'))
    console.print(table)
    say("look at it:", view_command(summary.store_url), "bold")  # one line, to copy
    for tile, scenes in summary.rejected_scenes.items():
        say(
            "scene not used",
            f"{tile}: {', '.join(scenes)} (mostly no data or outside 0-1 reflectance)",
            "yellow",
        )
    for tile, reason in summary.failures.items():
        say(TileStatus.FAILED.value, f"{tile}: {reason}")
    if not summary.ok:
        say(f"{len(summary.failures)} tile(s) failed;", "rerun the same command to retry them")
        raise typer.Exit(int(ExitCode.FAILURE))


def _require_store(url: str) -> None:
    from deepsalt.mapping.store import store_exists

    if not store_exists(url):
        raise InputDataError(url, "no DeepSalt map here (no Zarr store found)")


@app.command()
@error_boundary
def export(
    store: StoreArg,
    out: OutArg,
    variable: Annotated[
        list[str] | None, typer.Option("--var", help="Variable(s) to export (default all).")
    ] = None,
    level: Annotated[int, typer.Option(help="Pyramid level (0 = full resolution).", min=0)] = 0,
) -> None:
    """Export a map to Cloud-Optimised GeoTIFFs (one per variable) for GIS software."""
    from deepsalt.mapping.export import DEFAULT_VARIABLES, export_cog

    unknown = [name for name in variable or () if name not in DEFAULT_VARIABLES]
    if unknown:
        raise ConfigError(
            "<command line>",
            "--var",
            f"unknown variable '{unknown[0]}' (one of {', '.join(DEFAULT_VARIABLES)})",
        )
    _require_store(store)
    for name, url in export_cog(store, out, variable or DEFAULT_VARIABLES, level).items():
        say(f"{name}:", url, "bold")


@app.command()
@error_boundary
def quicklook(store: StoreArg, out: OutArg) -> None:
    """Write PNG quicklooks of ECe (salinity classes), its uncertainty and the domain score."""
    from deepsalt.mapping.quicklook import write_quicklooks

    _require_store(store)
    for name, url in write_quicklooks(store, out).items():
        say(f"{name}:", url, "bold")
