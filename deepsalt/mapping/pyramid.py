"""Multiscale pyramid for viewers: levels of 2x downsampling in child groups ``1``, ``2``, ... of the
root, which holds the full-resolution map, all listed by the root's ``multiscales`` layout
(``conventions``). Level k's dimensions are ``y_k``/``x_k``.

Level k is computed from level k - 1 with dask, chunk by chunk, so memory stays bounded for a
continent and the full-resolution map is read once, not once per level. A map of at most
``IN_MEMORY_PIXELS`` is read whole and its levels computed with the same xarray operations on
in-memory arrays: there, dask's thousands of per-chunk tasks cost more than the arithmetic.

Floats are NaN-aware means of the full-resolution pixels a coarse pixel covers: each level
carries the sums and counts of the valid pixels below it, so the result does not depend on how
many of them each intermediate block held. Quality flags keep a bit only where all covered pixels
have it (a coarse pixel is "nodata" only when it has no data at all); bitwise AND is associative,
so it too passes level by level.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import fsspec
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor on the levels open_level returns)
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
from deepsalt.mapping.store import (
    VARIABLES,
    georeference,
    layout,
    set_encoding,
    update_attrs,
)

FLOAT_VARS = tuple(v.name for v in VARIABLES if v.dtype.startswith("float"))
ALL_FLAGS = np.uint8(0xFF)
"""Every quality bit set: what AND over a block ignores."""
IN_MEMORY_PIXELS = 1 << 22
"""Maps up to this many pixels (2048²) build their pyramid in memory: a few hundred MB at most
(the float layers' float64 sums and int32 counts), where a continent's would not fit."""
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


def block_and(blocks: Any, axis: tuple[int, int]) -> Any:
    """Bitwise AND over the 2 × 2 blocks of a coarsened 2-D array (``axis``: the block axes)."""
    if tuple(axis) != (1, 3) or blocks.shape[1] != 2 or blocks.shape[3] != 2:
        raise ValueError(f"expected 2 x 2 blocks on axes (1, 3), got shape {blocks.shape} and axes {axis}")
    return blocks[:, 0, :, 0] & blocks[:, 0, :, 1] & blocks[:, 1, :, 0] & blocks[:, 1, :, 1]


@dataclass(frozen=True)
class LevelState:
    """What a level passes to the next: per float variable the sum and count of the valid
    full-resolution pixels under each pixel, and the quality flags ANDed over them (dims y, x)."""

    sums: dict[str, xr.DataArray]
    counts: dict[str, xr.DataArray]
    quality: xr.DataArray

    @classmethod
    def full_resolution(cls, ds: xr.Dataset) -> LevelState:
        ds = ds.drop_vars(["x", "y", "spatial_ref"], errors="ignore")
        return cls(
            {name: ds[name].astype("float64").fillna(0.0) for name in FLOAT_VARS},
            {name: ds[name].notnull().astype("int32") for name in FLOAT_VARS},
            ds["quality"],
        )

    def halved(self, chunks: tuple[int, int]) -> LevelState:
        """The next level: 2 × 2 blocks, rechunked (when dask holds the arrays) to ``chunks`` so the
        blocks stay whole as the levels shrink. An odd far edge is padded with what changes
        nothing: no sum, no count, and every flag set (the identity of AND)."""
        height, width = self.quality.shape
        pad = {"y": (0, height % 2), "x": (0, width % 2)}

        def blocks(a: xr.DataArray, identity: float | int) -> Any:
            padded = a.pad(pad, constant_values=identity) if any(p for _, p in pad.values()) else a
            if padded.chunks is not None:
                padded = padded.chunk(dict(zip(("y", "x"), chunks, strict=True)))
            return padded.coarsen(y=2, x=2, boundary="exact")

        return LevelState(
            {name: blocks(a, 0.0).reduce(np.sum) for name, a in self.sums.items()},
            {name: blocks(a, 0).reduce(np.sum) for name, a in self.counts.items()},
            blocks(self.quality, ALL_FLAGS).reduce(block_and),
        )

    def dataset(self, grid: Grid, level: int, attrs: dict[str, dict]) -> xr.Dataset:
        """The level as stored: means of the valid pixels (NaN where there are none), its flags."""
        out = xr.Dataset(
            {
                name: (self.sums[name] / self.counts[name].where(self.counts[name] > 0)).astype("float32")
                for name in FLOAT_VARS
            }
        )
        out["quality"] = self.quality
        for name in out.data_vars:
            out[name].attrs = dict(attrs[name])
        out["quality"].attrs["comment"] = QUALITY_RESAMPLING
        return georeference(out.rename(dict(zip(("y", "x"), level_dims(level), strict=True))), grid, level)


def downsampled(ds: xr.Dataset, grids: Sequence[Grid], chunk: int, shard: int) -> Iterator[xr.Dataset]:
    """The levels below the full-resolution map ``ds`` on ``grids`` (lazy), each from the one above."""
    attrs = {name: dict(ds[name].attrs) for name in (*FLOAT_VARS, "quality")}
    state = LevelState.full_resolution(ds)
    for level, grid in enumerate(grids, start=1):
        # the level above's shards, so every 2 x 2 block lies inside one dask chunk
        above = grids[level - 2].shape if level > 1 else tuple(ds.sizes[d] for d in ("y", "x"))
        _, shards = layout(above, chunk, shard)  # type: ignore[arg-type]
        state = state.halved(shards)
        yield state.dataset(grid, level, attrs)


def remove_group(url: str, group: str) -> None:
    """Delete a group's objects with fsspec (zarr's own overwrite stalls against some S3 servers)."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(f"{path}/{group}"):
        fs.rm(f"{path}/{group}", recursive=True)


def build_pyramid(url: str, grid: Grid, chunk: int, shard: int, min_size: int) -> list[tuple[int, int]]:
    """Write every level below the full-resolution map and the root's ``multiscales`` layout.

    All levels are computed in one dask graph (or in memory, for a small map), so each is derived
    once from the one above and the full-resolution map is read once. Returns the shapes of the
    levels below full resolution.
    """
    grids = level_grids(grid, min_size)
    in_memory = grid.height * grid.width <= IN_MEMORY_PIXELS
    source = xr.open_zarr(url, consolidated=False, decode_coords="all")
    if in_memory:
        source = source.load()
    writes = []
    for level, ds in enumerate(downsampled(source, grids, chunk, shard), start=1):
        _, shards = layout(grids[level - 1].shape, chunk, shard)
        if not in_memory:
            ds = ds.chunk(dict(zip(level_dims(level), shards, strict=True)))
        ds = set_encoding(ds, chunk, shard)
        remove_group(url, level_asset(level))  # a rerun rebuilds the level from the updated map
        writes.append(
            ds.to_zarr(
                url, group=level_asset(level), mode="w-", zarr_format=3, consolidated=False, compute=False
            )
        )
    dask.compute(*writes)
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
