"""``deepsalt synth``: write demo regions (truth, covariates, EnMAP scenes, lab samples, STAC)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deepsalt.cli.common import ConfigOption, SetOption, app, console, error_boundary

OutArg = Annotated[str, typer.Argument(help="Folder that receives <region>/ (local path or s3://...).")]
RegionOption = Annotated[
    list[str] | None,
    typer.Option("--region", "-r", help="Region(s) to write, e.g. demo, demo_unseen (default: config's)."),
]


@app.command()
@error_boundary
def synth(
    out: OutArg, config: ConfigOption = None, set_: SetOption = None, region: RegionOption = None
) -> None:
    """Generate synthetic demo regions in real product formats (same seed, same bytes)."""
    from deepsalt.config import load_config
    from deepsalt.synth import SynthConfig, generate_region

    overrides = list(set_ or [])
    base = load_config(SynthConfig, config, overrides)
    table = Table(title="synth", show_header=True, box=None)
    for column in ("region", "url", "scenes", "grid", "samples"):
        table.add_column(column)
    for name in region or [base.region]:
        settings = load_config(SynthConfig, config, [*overrides, f"region={name}"])
        manifest = generate_region(settings, out)
        table.add_row(
            manifest.name,
            Text(manifest.url),
            str(len(manifest.scene_ids)),
            f"{manifest.shape[0]}×{manifest.shape[1]} {manifest.crs}",
            str(settings.n_samples),
        )
    console.print(table)
