"""Tile planning: cut the grid into work units made of whole Zarr shards.

A tile is ``tile_shards x tile_shards`` shards, so two tiles never touch the same shard and
workers can write their regions without locks. Scene footprints are rasterised onto the coarse
tile grid (one cell per tile), so planning a continent costs a few small rasterisations and
reads no pixels.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from deepsalt.mapping.grid import Grid

LonLatBBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Tile:
    """One unit of work: a pixel window of the grid and the scenes that overlap it."""

    row: int
    col: int
    y0: int
    x0: int
    height: int
    width: int
    scenes: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"r{self.row:05d}_c{self.col:05d}"

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y0 + self.height), slice(self.x0, self.x0 + self.width)


@dataclass(frozen=True)
class TilePlan:
    """All tiles of a grid; ``empty`` tiles have no imagery and are recorded, not mapped."""

    grid: Grid
    tile_size: int
    tiles: tuple[Tile, ...]
    empty: tuple[Tile, ...]

    @property
    def n_tiles(self) -> int:
        return len(self.tiles) + len(self.empty)


def _bbox_polygon(bbox: LonLatBBox) -> dict:
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[(w, s), (e, s), (e, n), (w, n), (w, s)]]}


def _densify(geom: dict, steps: int = 16) -> dict:
    """Insert points along polygon edges so that reprojected edges follow curved meridians."""

    def ring(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for (x1, y1), (x2, y2) in itertools.pairwise(points):
            t = np.linspace(0.0, 1.0, steps, endpoint=False)
            out.extend(zip(x1 + t * (x2 - x1), y1 + t * (y2 - y1), strict=True))
        out.append(tuple(points[-1]))
        return out

    return {"type": "Polygon", "coordinates": [ring(r) for r in geom["coordinates"]]}


def plan_tiles(
    grid: Grid,
    shard: int,
    tile_shards: int,
    footprints: Mapping[str, LonLatBBox | dict],
) -> TilePlan:
    """Tiles of ``tile_shards`` shards per side over ``grid``, each with the scenes overlapping it.

    ``footprints`` maps scene id to a lon/lat bbox or GeoJSON polygon. A tile with no scene is
    put in ``empty``.
    """
    size = shard * tile_shards
    n_rows = -(-grid.height // size)
    n_cols = -(-grid.width // size)
    coarse = grid.transform @ Affine.scale(size)
    hits: dict[tuple[int, int], list[str]] = {}
    for scene_id, footprint in footprints.items():
        geom = _bbox_polygon(footprint) if isinstance(footprint, tuple | list) else footprint
        projected = transform_geom("EPSG:4326", grid.crs, _densify(geom))
        cover = rasterize(
            [(projected, 1)], out_shape=(n_rows, n_cols), transform=coarse, all_touched=True, dtype="uint8"
        )
        for r, c in zip(*np.nonzero(cover), strict=True):
            hits.setdefault((int(r), int(c)), []).append(scene_id)
    tiles, empty = [], []
    for r in range(n_rows):
        for c in range(n_cols):
            y0, x0 = r * size, c * size
            scenes = tuple(sorted(hits.get((r, c), ())))
            tile = Tile(r, c, y0, x0, min(size, grid.height - y0), min(size, grid.width - x0), scenes)
            (tiles if scenes else empty).append(tile)
    return TilePlan(grid, size, tuple(tiles), tuple(empty))
