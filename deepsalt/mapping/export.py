"""``deepsalt export``: the map as Cloud-Optimised GeoTIFFs, one per variable, for GIS users.

Sharded Zarr v3 is read by GDAL's Zarr driver only from GDAL 3.13; rasterio 1.4.4 bundles GDAL
3.10.3, which fails with "Unsupported codec: sharding_indexed". Exporting goes through xarray
(zarr-python), writes a tiled GeoTIFF window by window (bounded memory), then lets GDAL's COG
driver add overviews and reorder it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import fsspec
import numpy as np
import rasterio.shutil

from deepsalt.io.paths import url_for
from deepsalt.mapping.pyramid import open_level
from deepsalt.mapping.store import VARIABLES

DEFAULT_VARIABLES = tuple(v.name for v in VARIABLES)


def export_cog(
    store_url: str, out_dir: str, variables: Sequence[str] = DEFAULT_VARIABLES, level: int = 0
) -> dict[str, str]:
    """Write ``<out_dir>/<variable>.tif`` (COG, deflate, 512-px blocks); returns their URLs."""
    ds = open_level(store_url, level)
    fs, root = fsspec.core.url_to_fs(out_dir)
    fs.makedirs(root, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in variables:
            band = ds[name].copy()
            band.encoding = {}  # zarr encodings (fill value, shards) mean nothing to GeoTIFF
            band.attrs.pop("_FillValue", None)
            if band.dtype.kind == "f":
                band = band.rio.write_nodata(np.nan)
            striped = Path(tmp) / f"{name}.tiled.tif"
            band.rio.to_raster(
                striped, tiled=True, blockxsize=512, blockysize=512, windowed=True, compress="deflate"
            )
            cog = Path(tmp) / f"{name}.tif"
            rasterio.shutil.copy(
                striped, cog, driver="COG", compress="deflate", blocksize=512, overviews="auto"
            )
            target = f"{root.rstrip('/')}/{name}.tif"
            fs.put_file(str(cog), target)
            written[name] = url_for(fs, target)
    return written
