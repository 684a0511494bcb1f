"""``deepsalt version``."""

from __future__ import annotations

import platform

from rich.table import Table

from deepsalt import __version__
from deepsalt.cli.common import app, console


@app.command()
def version() -> None:
    """Print the DeepSalt version and the versions of the libraries that shape its results."""
    from importlib.metadata import version as dist_version

    table = Table(show_header=False, box=None)
    table.add_row("deepsalt", __version__)
    table.add_row("python", platform.python_version())
    for dist in ("torch", "ray", "xarray", "zarr", "rasterio", "rioxarray"):
        table.add_row(dist, dist_version(dist))
    console.print(table)
    print(__version__)
