"""``deepsalt survey``: per-pixel survey ECe, sand and clay COGs from an SSURGO export."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from deepsalt.cli.common import app, console, error_boundary

SsurgoArg = Annotated[
    str,
    typer.Argument(
        help="SSURGO export folder: a map-unit key GeoTIFF (gSSURGO/gNATSGO MapunitRaster) and the "
        "mapunit/component/chorizon tables (tabular/*.txt of a Web Soil Survey download, or *.csv with headers)."
    ),
]
OutArg = Annotated[
    str, typer.Argument(help="Folder that receives ece.tif, sand.tif, clay.tif (local or s3://...).")
]
TopOption = Annotated[float, typer.Option("--top-cm", help="Top of the depth interval averaged over (cm).")]
BottomOption = Annotated[float, typer.Option("--bottom-cm", help="Bottom of the depth interval (cm).")]


@app.command()
@error_boundary
def survey(ssurgo: SsurgoArg, out: OutArg, top_cm: TopOption = 0.0, bottom_cm: BottomOption = 30.0) -> None:
    """Write survey ECe (dS/m), sand and clay (%) COGs on the key raster's grid (component-weighted depth means)."""
    from deepsalt.io.ssurgo import load_survey, write_survey_cogs

    if not 0.0 <= top_cm < bottom_cm:
        raise typer.BadParameter(f"need 0 <= --top-cm < --bottom-cm, got {top_cm} and {bottom_cm}")
    loaded = load_survey(ssurgo, top_cm, bottom_cm)
    written = write_survey_cogs(loaded, out)
    table = Table(title=f"survey {top_cm:g}-{bottom_cm:g} cm", show_header=True, box=None)
    for column in ("layer", "map units with a value", "url"):
        table.add_column(column)
    for name, url in written.items():
        counted = int(loaded.properties[name].notna().sum())
        table.add_row(name, f"{counted} of {len(loaded.properties)}", url)
    console.print(table)
