"""The Zarr conventions the store follows, so viewers, GDAL and ``xr.open_datatree`` find its pyramid.

The store's root group is a ``multiscales`` group: each resolution level is a sibling child group
(``0`` full resolution, ``1`` half, ...) holding the same variables on its own grid, and the root's
``layout`` lists them with their scale, resampling method and grid. Every level group carries the
``spatial:`` (affine transform, shape, bbox) and ``proj:`` (CRS) conventions beside the CF
``spatial_ref`` that rioxarray and GDAL read. The attribute dictionaries come from ``zarr-cm`` (the
conventions' own Python implementation), which validates them and writes the ``zarr_conventions``
declarations; this module only says which values the map has.

The full-resolution data sits in a child group, not at the root, because ``xr.open_datatree``
requires every child's ``x``/``y`` to align with its parents': a root holding the full-resolution
grid could not have coarser children.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import zarr_cm
from zarr_cm import multiscales, proj, spatial

from deepsalt.mapping.grid import Grid

SPATIAL_DIMENSIONS = ("y", "x")
# every float variable is the NaN-aware mean of the full-resolution pixels a coarse pixel covers
RESAMPLING = "average"


def level_path(level: int) -> str:
    """The group holding resolution level ``level`` (0 = full resolution), relative to the root."""
    return str(level)


def _proj(grid: Grid) -> dict[str, Any]:
    authority = grid.crs.to_authority()
    code = ":".join(authority) if authority else None
    return dict(proj.create(code=code, wkt2=grid.crs.to_wkt()))


def _spatial(grid: Grid) -> dict[str, Any]:
    return dict(
        spatial.create(
            dimensions=list(SPATIAL_DIMENSIONS),
            transform=list(grid.transform)[:6],
            shape=list(grid.shape),
            bbox=list(grid.bounds),
            registration="pixel",
        )
    )


def level_attrs(grid: Grid) -> dict[str, Any]:
    """``spatial:`` and ``proj:`` attributes (with their declarations) of one level group."""
    return dict(zarr_cm.create_many({"spatial": _spatial(grid), "proj": _proj(grid)}))


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
            "asset": level_path(level),
            "transform": {"scale": [scale, scale], "translation": [0.0, 0.0]},
            "spatial:shape": list(grid.shape),
            "spatial:transform": list(grid.transform)[:6],
        }
        if level > 0:
            entry |= {"derived_from": level_path(0), "resampling_method": RESAMPLING}
        layout.append(entry)
    data = multiscales.create(layout=tuple(layout), resampling_method=RESAMPLING)  # type: ignore[arg-type]
    return dict(
        zarr_cm.create_many({"multiscales": dict(data), "spatial": _spatial(base), "proj": _proj(base)})
    )


def layout_paths(attrs: dict[str, Any]) -> list[str]:
    """Level group paths listed by a root's ``multiscales`` layout, finest first; [] when absent."""
    _, data = multiscales.extract(attrs) if "multiscales" in attrs else ({}, {"layout": []})
    entries = sorted(data["layout"], key=lambda e: max(e.get("transform", {}).get("scale", [1.0])))
    return [entry["asset"] for entry in entries]
