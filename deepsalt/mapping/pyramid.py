"""Multiscale pyramid for viewers: levels of 2x downsampling in child groups ``1``, ``2``, ... of the
root, which holds the full-resolution map, all listed by the root's ``multiscales`` layout
(``conventions``). Level k's dimensions are ``y_k``/``x_k``.

Level k is computed from the full-resolution map with dask, chunk by chunk, so memory stays bounded for a
continent. Floats are NaN-aware means; quality flags keep a bit only where all covered
pixels have it (a coarse pixel is "nodata" only when it has no data at all).
"""

from __future__ import annotations

import math

import fsspec
import xarray as xr
import zarr

from deepsalt.errors import InputDataError
from deepsalt.mapping.conventions import (
    FULL_RESOLUTION_ASSET,
    asset_group,
    layout_assets,
    level_asset,
    level_dims,
    root_attrs,
)
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.quality import Quality
from deepsalt.mapping.store import (
    VARIABLES,
    georeference,
    layout,
    set_encoding,
    update_attrs,
)

FLOAT_VARS = tuple(v.name for v in VARIABLES if v.dtype.startswith("float"))
QUALITY_RESAMPLING = (
    "on overview levels a flag is set only where every full-resolution pixel of the block has it "
    "(bitwise AND per flag)"
)


def level_grids(grid: Grid, min_size: int) -> list[Grid]:
    """Grids of levels 1, 2, ... until a level fits in ``min_size`` pixels per side."""
    levels = []
    current = grid
    while max(current.shape) > min_size:
        current = Grid(
            current.crs,
            current.x0,
            current.y0,
            current.resolution * 2,
            math.ceil(current.height / 2),
            math.ceil(current.width / 2),
        )
        levels.append(current)
    return levels


def downsample(ds: xr.Dataset, grid: Grid, level: int) -> xr.Dataset:
    """Coarsen the full-resolution map ``ds`` by ``2**level`` onto ``grid``, on the level's dimensions.

    Every level is computed from level 0 (not from the level above), so a coarse ECe is the mean
    of the valid full-resolution pixels it covers, whatever their number per intermediate block.
    """
    factor = 2**level
    ds = ds.drop_vars(["x", "y", "spatial_ref"], errors="ignore")
    blocks = ds.coarsen(y=factor, x=factor, boundary="pad")
    out = xr.Dataset({name: blocks.mean()[name].astype("float32") for name in FLOAT_VARS})
    flags = ds["quality"]
    bits = [int(flag) for flag in Quality]
    # a bit survives when every pixel of the block has it: the block minimum of that bit plane
    planes = [((flags // bit) % 2).coarsen(y=factor, x=factor, boundary="pad").min() * bit for bit in bits]
    out["quality"] = sum(planes[1:], planes[0]).fillna(int(Quality.NODATA)).astype("uint8")
    for name in out.data_vars:
        out[name].attrs = dict(ds[name].attrs)
    out["quality"].attrs["comment"] = QUALITY_RESAMPLING
    return georeference(out.rename(dict(zip(("y", "x"), level_dims(level), strict=True))), grid, level)


def remove_group(url: str, group: str) -> None:
    """Delete a group's objects with fsspec (zarr's own overwrite stalls against some S3 servers)."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(f"{path}/{group}"):
        fs.rm(f"{path}/{group}", recursive=True)


def build_pyramid(url: str, grid: Grid, chunk: int, shard: int, min_size: int) -> list[tuple[int, int]]:
    """Write every level below the full-resolution map and the root's ``multiscales`` layout.

    Returns the shapes of the levels below full resolution.
    """
    grids = level_grids(grid, min_size)
    source = xr.open_zarr(url, consolidated=False, decode_coords="all")
    for level, level_grid in enumerate(grids, start=1):
        ds = downsample(source, level_grid, level)
        _, shards = layout(level_grid.shape, chunk, shard)
        ds = set_encoding(ds.chunk(dict(zip(level_dims(level), shards, strict=True))), chunk, shard)
        remove_group(url, level_asset(level))  # a rerun rebuilds the level from the updated map
        ds.to_zarr(url, group=level_asset(level), mode="w-", zarr_format=3, consolidated=False)
    update_attrs(url, root_attrs([grid, *grids]))
    return [g.shape for g in grids]


def level_assets(url: str) -> list[str]:
    """The store's levels, finest first, as its ``multiscales`` layout lists them (``"."`` = the root).

    A store whose pyramid is not built yet (a run still mapping) has only the full-resolution level.
    """
    assets = layout_assets(dict(zarr.open_group(url, mode="r").attrs))
    return assets or [FULL_RESOLUTION_ASSET]


def open_level(url: str, level: int = 0) -> xr.Dataset:
    """One resolution level of a map as a dataset (0 = full resolution), CRS and transform decoded.

    A coarser level keeps its own dimension names (``y_1``/``x_1``, ...); rioxarray finds them.
    """
    assets = level_assets(url)
    if not 0 <= level < len(assets):
        raise InputDataError(url, f"the map has pyramid levels 0 to {len(assets) - 1}, not {level}")
    return xr.open_zarr(url, group=asset_group(assets[level]), decode_coords="all")
