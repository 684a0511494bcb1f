"""A small map written without Ray: the real store code, deterministic values per pixel.

ECe of pixel (row, col) is ``row + col / 1000`` (so a value read back names its pixel), its spread a
tenth of that, the domain score 1; every 50th column is water (no prediction). One shard-sized tile
is left unwritten (NaN, flagged nodata), as a failed tile would be.
"""

from __future__ import annotations

import numpy as np
from pyproj import CRS

from deepsalt.mapping import store
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.quality import Quality
from deepsalt.mapping.records import TileResult, TileStatus, write_record
from deepsalt.mapping.run import finish_store
from deepsalt.mapping.tiles import Tile, plan_tiles

GRID = Grid(CRS.from_epsg(5070), -1_000_020.0, 2_000_010.0, 30.0, 150, 200)
CHUNK, SHARD = 32, 64
IDENTITY = {"grid.crs": "EPSG:5070", "model.student_url (checkpoint content)": "a" * 16}
ATTRS = store.base_attrs(IDENTITY, "c" * 16, {"checkpoint_id": "student-1"})


def tile_values(tile: Tile) -> dict[str, np.ndarray]:
    """Deterministic values per tile: ECe = row + col/1000 of the global pixel; a water stripe."""
    rows, cols = np.mgrid[tile.y0 : tile.y0 + tile.height, tile.x0 : tile.x0 + tile.width]
    quality = np.where(cols % 50 == 0, Quality.WATER, 0).astype(np.uint8)
    ece = np.where(quality == 0, rows + cols / 1000.0, np.nan).astype(np.float32)
    return {"ece": ece, "ece_std": ece / 10, "domain_score": np.ones_like(ece), "quality": quality}


def write_small_map(url: str, grid: Grid = GRID, finish: bool = False, pyramid_min_size: int = 40) -> str:
    """Create the store at ``url`` and fill every tile but the last; ``finish`` adds the pyramid."""
    assert store.create_or_check(url, grid, CHUNK, SHARD, ATTRS) is False
    plan = plan_tiles(grid, SHARD, 1, {})
    for tile in plan.empty[:-1]:  # the last tile stays unwritten
        store.write_tile(url, tile, tile_values(tile))
        write_record(url, TileResult(tile=tile.id, status=TileStatus.DONE, predicted=tile.n_pixels))
    if finish:
        finish_store(url, grid, CHUNK, SHARD, pyramid_min_size)
    return url
