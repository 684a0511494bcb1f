"""Cloud-optimised GeoTIFF writing, fast and byte-for-byte deterministic.

GDAL's COG driver writes no timestamps, and its multithreaded compression writes tiles in a
fixed order, so the same array gives the same bytes. The hyperspectral reflectance cube is written
without overviews (they would cost more than the image itself and no reader needs them); the
small single-band layers get them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

_COMMON = {"compress": "ZSTD", "num_threads": 2, "blocksize": 256, "bigtiff": "IF_SAFER"}


def write_cog(
    path: Path,
    data: np.ndarray,
    crs: str,
    transform: Affine,
    nodata: float | None,
    *,
    overviews: bool = True,
    tags: dict[str, str] | None = None,
) -> None:
    """Write ``data`` ([bands,] rows, cols) as a COG at ``path`` (a local file)."""
    cube = data[None] if data.ndim == 2 else data
    options = dict(_COMMON, level=1 if cube.dtype == np.int16 else 9)
    if not overviews:
        options["overviews"] = "NONE"
    else:
        options["overview_resampling"] = "nearest" if cube.dtype.kind in "iu" else "average"
    if cube.dtype.kind == "f":
        options["predictor"] = "YES"
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=cube.shape[2],
        height=cube.shape[1],
        count=cube.shape[0],
        dtype=cube.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        **options,
    ) as dst:
        dst.write(cube)
        if tags:
            dst.update_tags(**tags)
