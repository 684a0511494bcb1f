"""The Zarr conventions the store follows, so viewers, GDAL and ``xr.open_datatree`` find its pyramid.

The store's root group is a ``multiscales`` group holding the full-resolution map itself (its layout
entry's asset is ``"."``, the group the layout lives in), so ``xr.open_zarr(url)`` opens full
resolution. Each coarser level is a child group (``1`` half, ``2`` a quarter, ...) holding the same
variables on its own grid, and the root's ``layout`` lists every level with its scale, resampling
method and grid. Every level carries the ``spatial:`` (affine transform, shape, bbox) and ``proj:``
(CRS) conventions beside the CF ``spatial_ref`` that rioxarray and GDAL read. The attribute
dictionaries come from ``zarr-cm`` (the conventions' own Python implementation), which validates them
and writes the ``zarr_conventions`` declarations; this module only says which values the map has.

A coarser level names its dimensions ``y_<level>``/``x_<level>``, not ``y``/``x``: ``xr.open_datatree``
requires a child's dimensions to align with the same-named dimensions of its parents, and the root's
``y``/``x`` are the full-resolution ones. The level's own ``y_<level>``/``x_<level>`` coordinates carry
the CF ``axis`` and ``standard_name`` by which rioxarray finds the spatial dimensions of a level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import zarr_cm
from zarr_cm import multiscales, proj, spatial

from deepsalt.mapping.grid import Grid

# every float variable is the NaN-aware mean of the full-resolution pixels a coarse pixel covers
RESAMPLING = "average"
# the layout's asset for the full-resolution level: the multiscales group itself
FULL_RESOLUTION_ASSET = "."


def level_asset(level: int) -> str:
    """The layout's path of resolution level ``level`` (0 = full resolution) relative to the root."""
    return FULL_RESOLUTION_ASSET if level == 0 else str(level)


def asset_group(asset: str) -> str | None:
    """The ``group`` argument of ``xr.open_zarr``/``zarr.open_group`` for a layout asset (None = root)."""
    return None if asset == FULL_RESOLUTION_ASSET else asset


def level_dims(level: int) -> tuple[str, str]:
    """A level's (row, column) dimension names: ``y``/``x`` at full resolution, ``y_<level>``/``x_<level>``
    below it (see the module docstring for why they differ)."""
    return ("y", "x") if level == 0 else (f"y_{level}", f"x_{level}")


def _proj(grid: Grid) -> dict[str, Any]:
    authority = grid.crs.to_authority()
    code = ":".join(authority) if authority else None
    return dict(proj.create(code=code, wkt2=grid.crs.to_wkt()))


def _spatial(grid: Grid, dims: tuple[str, str]) -> dict[str, Any]:
    return dict(
        spatial.create(
            dimensions=list(dims),
            transform=list(grid.transform)[:6],
            shape=list(grid.shape),
            bbox=list(grid.bounds),
            registration="pixel",
        )
    )


def level_attrs(grid: Grid, level: int) -> dict[str, Any]:
    """``spatial:`` and ``proj:`` attributes (with their declarations) of one level group."""
    return dict(zarr_cm.create_many({"spatial": _spatial(grid, level_dims(level)), "proj": _proj(grid)}))


def root_attrs(grids: Sequence[Grid]) -> dict[str, Any]:
    """The root's ``multiscales`` layout over ``grids`` (level 0 first) plus its ``spatial:``/``proj:``.

    Each layout entry gives the level's scale relative to level 0 and its own ``spatial:shape`` and
    ``spatial:transform``: a level's shape is rounded up, so its extent can exceed level 0's by
    less than one of its pixels, and a reader needs the exact transform, not one derived from it.
    """
    base = grids[0]
    layout = []
    for level, grid in enumerate(grids):
        scale = grid.resolution / base.resolution
        entry: dict[str, Any] = {
            "asset": level_asset(level),
            "transform": {"scale": [scale, scale], "translation": [0.0, 0.0]},
            "spatial:shape": list(grid.shape),
            "spatial:transform": list(grid.transform)[:6],
        }
        if level > 0:
            entry |= {"derived_from": level_asset(0), "resampling_method": RESAMPLING}
        layout.append(entry)
    data = multiscales.create(layout=tuple(layout), resampling_method=RESAMPLING)  # type: ignore[arg-type]
    return dict(
        zarr_cm.create_many(
            {"multiscales": dict(data), "spatial": _spatial(base, level_dims(0)), "proj": _proj(base)}
        )
    )


def layout_assets(attrs: dict[str, Any]) -> list[str]:
    """Level assets listed by a root's ``multiscales`` layout, finest first; [] when absent."""
    _, data = multiscales.extract(attrs) if "multiscales" in attrs else ({}, {"layout": []})
    entries = sorted(data["layout"], key=lambda e: max(e.get("transform", {}).get("scale", [1.0])))
    return [entry["asset"] for entry in entries]
