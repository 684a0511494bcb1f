"""Multiscale pyramid for viewers: levels of 2x downsampling written as groups ``pyramid/<k>``.

Level k is computed from level k-1 with dask, chunk by chunk, so memory stays bounded for a
continent. Floats are NaN-aware means; quality flags keep a bit only where all four source
pixels have it (a coarse pixel is "nodata" only when it has no data at all).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from deepsalt.mapping.grid import Grid
from deepsalt.mapping.store import VARIABLES, georeference, layout, set_encoding

FLOAT_VARS = tuple(v.name for v in VARIABLES if v.dtype.startswith("float"))


def level_path(level: int) -> str:
    return f"pyramid/{level}"


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


def downsample(ds: xr.Dataset, grid: Grid) -> xr.Dataset:
    """Halve ``ds`` onto ``grid`` (the next level's grid)."""
    ds = ds.drop_vars(["x", "y", "spatial_ref"], errors="ignore")
    blocks = ds.coarsen(y=2, x=2, boundary="pad")
    out = xr.Dataset({name: blocks.mean()[name].astype("float32") for name in FLOAT_VARS})
    flags = (
        ds["quality"]
        .pad(y=(0, ds.sizes["y"] % 2), x=(0, ds.sizes["x"] % 2), constant_values=np.uint8(0xFF))
        .data
    )
    out["quality"] = (
        ("y", "x"),
        flags[0::2, 0::2] & flags[1::2, 0::2] & flags[0::2, 1::2] & flags[1::2, 1::2],
    )
    for name in out.data_vars:
        out[name].attrs = dict(ds[name].attrs)
    return georeference(out, grid)


def build_pyramid(url: str, grid: Grid, chunk: int, shard: int, min_size: int) -> list[tuple[int, int]]:
    """Write every level below the full-resolution map; returns the level shapes."""
    shapes = []
    source = xr.open_zarr(url, consolidated=False, decode_coords="all")
    for level, level_grid in enumerate(level_grids(grid, min_size), start=1):
        ds = downsample(source, level_grid)
        _, (shard_y, shard_x) = layout(level_grid.shape, chunk, shard)
        ds = set_encoding(ds.chunk({"y": shard_y, "x": shard_x}), chunk, shard)
        ds.to_zarr(url, group=level_path(level), mode="w", zarr_format=3, consolidated=False)
        source = xr.open_zarr(url, group=level_path(level), consolidated=False, decode_coords="all")
        shapes.append(level_grid.shape)
    return shapes


def multiscales_attr(n_levels: int) -> list[dict]:
    """Root attribute listing the levels (path, downsampling factor, resampling per variable)."""
    datasets = [{"path": ".", "level": 0, "factor": 1}]
    datasets += [{"path": level_path(k), "level": k, "factor": 2**k} for k in range(1, n_levels + 1)]
    resampling = dict.fromkeys(FLOAT_VARS, "mean") | {"quality": "bitwise_and"}
    return [{"datasets": datasets, "resampling": resampling}]
