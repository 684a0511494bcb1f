"""What became of a tile: :class:`TileStatus`, :class:`TileResult`, and its completion record.

The same typed result travels from the actor to the driver and is written into the store as the
tile's record (``_tiles/<id>.json``), after all of the tile's data. A run killed mid-tile leaves
no record and the tile is redone. A record also keeps the key of the scenes the tile was mapped
from, so a rerun after the catalogue changed maps exactly the tiles whose scenes changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum

import fsspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepsalt.mapping.tiles import Tile

RECORDS = "_tiles"


class TileStatus(StrEnum):
    """Outcome of a tile."""

    DONE = "done"  # mapped and written
    NO_IMAGERY = "no_imagery"  # no scene covers it: fill values, nothing to predict
    FAILED = "failed"  # its attempts were used up; the error says why

    @property
    def finished(self) -> bool:
        """A finished tile is kept by a rerun (unless its scenes changed)."""
        return self is not TileStatus.FAILED


class TileResult(BaseModel):
    """One tile's outcome: the actor's answer to the driver and the tile's record in the store."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tile: str
    status: TileStatus
    scenes_key: str = ""
    """Key of the scenes the tile was mapped from (:func:`deepsalt.mapping.identity.scenes_key`)."""
    pixels: int = 0
    predicted: int = 0
    attempts: int = 0
    error: str = ""
    rejected_scenes: tuple[str, ...] = ()
    """Scenes skipped on some block of the tile because their values were mostly unusable."""
    worker: str = ""
    """``host:pid`` of the process that mapped it (to trace a bad node or a killed actor)."""
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())

    def is_current(self, scenes_key: str) -> bool:
        """Finished, and from the scenes the tile has now: a rerun keeps it."""
        return self.status.finished and self.scenes_key == scenes_key


def _record_path(url: str, tile_id: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, f"{path}/{RECORDS}/{tile_id}.json"


def write_record(url: str, result: TileResult) -> None:
    """Record a tile's outcome; call only after its data is written."""
    fs, path = _record_path(url, result.tile)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, result.model_dump_json().encode())


def _parse(blob: bytes) -> TileResult | None:
    try:
        return TileResult.model_validate_json(blob)
    except (ValidationError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # half-written by a killed run: as good as absent


def read_record(url: str, tile: Tile) -> TileResult | None:
    """The tile's completion record, or None when absent or half-written."""
    fs, path = _record_path(url, tile.id)
    try:
        return _parse(fs.cat_file(path))
    except FileNotFoundError:
        return None


def read_records(url: str) -> dict[str, TileResult]:
    """Completion records by tile id; unreadable (half-written) records count as absent."""
    fs, path = fsspec.core.url_to_fs(url)
    files = fs.glob(f"{path}/{RECORDS}/*.json")
    if not files:
        return {}
    parsed = (_parse(blob) for blob in fs.cat(files, on_error="omit").values())
    return {record.tile: record for record in parsed if record is not None}
