"""The only shape in which tiles and their results cross the Ray Data boundary.

Ray Data moves rows as columns of Arrow arrays. A tile and a :class:`TileResult` each travel as
one JSON string column, so the row schema stays flat and small, and both ends hand typed objects
to the code around them: nothing reads a row by key outside this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict

import numpy as np

from deepsalt.mapping.records import TileResult
from deepsalt.mapping.tiles import Tile

TILE = "tile"
RESULT = "result"


def tile_rows(tiles: Iterable[Tile]) -> list[dict[str, str]]:
    """Tiles as the input rows of the pipeline."""
    return [{TILE: json.dumps(asdict(tile))} for tile in tiles]


def tiles_of(batch: Mapping[str, Sequence[str]]) -> list[Tile]:
    """The tiles of an input batch."""
    tiles = []
    for item in batch[TILE]:
        fields = json.loads(item)
        tiles.append(Tile(**{**fields, "scenes": tuple(fields["scenes"])}))
    return tiles


def result_batch(results: Sequence[TileResult]) -> dict[str, np.ndarray]:
    """An output batch holding ``results``."""
    return {RESULT: np.array([result.model_dump_json() for result in results])}


def result_of(row: Mapping[str, str]) -> TileResult:
    """The result carried by an output row."""
    return TileResult.model_validate_json(row[RESULT])
