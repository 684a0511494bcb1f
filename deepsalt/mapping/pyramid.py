"""Multiscale pyramid for viewers: levels of 2x downsampling written as groups ``pyramid/<k>``.

Level k is computed from the full-resolution map with dask, chunk by chunk, so memory stays bounded for a
continent. Floats are NaN-aware means; quality flags keep a bit only where all covered
pixels have it (a coarse pixel is "nodata" only when it has no data at all).
"""

from __future__ import annotations

import math

import fsspec
import xarray as xr

from deepsalt.mapping.grid import Grid
from deepsalt.mapping.quality import Quality
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


def downsample(ds: xr.Dataset, grid: Grid, factor: int) -> xr.Dataset:
    """Coarsen the full-resolution map ``ds`` by ``factor`` onto ``grid``.

    Every level is computed from level 0 (not from the level above), so a coarse ECe is the mean
    of the valid full-resolution pixels it covers, whatever their number per intermediate block.
    """
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
    return georeference(out, grid)


def remove_group(url: str, group: str) -> None:
    """Delete a group's objects with fsspec (zarr's own overwrite stalls against some S3 servers)."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(f"{path}/{group}"):
        fs.rm(f"{path}/{group}", recursive=True)


def build_pyramid(url: str, grid: Grid, chunk: int, shard: int, min_size: int) -> list[tuple[int, int]]:
    """Write every level below the full-resolution map; returns the level shapes."""
    shapes = []
    source = xr.open_zarr(url, consolidated=False, decode_coords="all")
    for level, level_grid in enumerate(level_grids(grid, min_size), start=1):
        ds = downsample(source, level_grid, 2**level)
        _, (shard_y, shard_x) = layout(level_grid.shape, chunk, shard)
        ds = set_encoding(ds.chunk({"y": shard_y, "x": shard_x}), chunk, shard)
        remove_group(url, level_path(level))  # a rerun rebuilds the level from the updated map
        ds.to_zarr(url, group=level_path(level), mode="w-", zarr_format=3, consolidated=False)
        shapes.append(level_grid.shape)
    return shapes


def multiscales_attr(n_levels: int) -> list[dict]:
    """Root attribute listing the levels (path, downsampling factor, resampling per variable)."""
    datasets = [{"path": ".", "level": 0, "factor": 1}]
    datasets += [{"path": level_path(k), "level": k, "factor": 2**k} for k in range(1, n_levels + 1)]
    resampling = dict.fromkeys(FLOAT_VARS, "mean") | {"quality": "bitwise_and"}
    return [{"datasets": datasets, "resampling": resampling}]
