"""Mapping one tile: read and composite its scenes, sample covariates, predict, write, record.

:class:`TileMapper` is the Ray Data actor: it loads the student once and then maps tiles one
after another. Work inside a tile goes block by block (``model.block`` pixels per side), so an
actor holds at most one block of imagery plus the tile's four output arrays, whatever the size
of the region. Only a small status row goes back to the driver.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rasterio.windows import Window

from deepsalt.errors import InputDataError
from deepsalt.io.cube import SpectralLayout
from deepsalt.io.scenes import spectral_layout
from deepsalt.logs import get_logger
from deepsalt.mapping import store
from deepsalt.mapping.bands import BandMatcher
from deepsalt.mapping.composite import (
    CLASSES,
    OBSCURING,
    SceneReader,
    composite_block,
    layer_name,
    rank_scenes,
)
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.quality import NO_PREDICTION, Quality
from deepsalt.mapping.tiles import Tile
from deepsalt.mapping.warp import WarpedRaster, open_spectral

log = get_logger(__name__)

OUTPUTS = ("ece", "ece_std", "domain_score")
# Which process mapped a tile, kept in its record (to trace a bad node or a killed actor).
WORKER = f"{socket.gethostname()}:{os.getpid()}"
STATUS_FIELDS = ("tile", "status", "pixels", "predicted", "attempts", "error")


@dataclass(frozen=True)
class MappingJob:
    """What every actor needs, shipped once when the actor starts."""

    store_url: str
    grid: Grid
    scenes: Mapping[str, Any]  # scene id -> SceneRef
    covariate_urls: Mapping[str, str]
    predictor: str
    student_url: str
    block: int
    batch_pixels: int
    retries: int


def load_predictor(spec: str, url: str) -> Any:
    """Import ``module:Class`` and load the checkpoint (device chosen by the predictor)."""
    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls.load(url, device=None)


def blocks(tile: Tile, size: int) -> Iterator[Window]:
    """Windows of at most ``size`` pixels per side covering the tile (tile-relative offsets)."""
    for row in range(0, tile.height, size):
        for col in range(0, tile.width, size):
            yield Window(col, row, min(size, tile.width - col), min(size, tile.height - row))


def open_scene(stack: ExitStack, scene: Any, grid: Grid, tile: Tile, layout: SpectralLayout) -> SceneReader:
    """The scene's spectral image (with its band count checked) and quality layers, on the tile's grid."""
    transform = grid.window_transform(tile.y0, tile.x0)
    shape = (tile.height, tile.width)
    spectral = open_spectral(stack, scene, layout, grid.crs, transform, shape)
    quality = {
        layer_name(key): WarpedRaster(stack, href, grid.crs, transform, shape, 255)
        for key, href in scene.quality_hrefs.items()
        if layer_name(key) in (*OBSCURING, CLASSES)
    }
    return SceneReader(scene, spectral, quality, layout.nodata)


class TileMapper:
    """Ray Data actor: ``{"tile": [json, ...]}`` batches in, status rows out."""

    def __init__(self, job: MappingJob):
        self.job = job
        self.predictor = load_predictor(job.predictor, job.student_url)
        self.target_wavelength = np.asarray(self.predictor.wavelength, dtype=np.float64)
        self.layouts: dict[str, SpectralLayout] = {}
        self.matchers: dict[str, BandMatcher] = {}

    def __call__(self, batch: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        rows = [self.run_tile(tile_from_item(item)) for item in batch["tile"]]
        return {name: np.array([row[name] for row in rows]) for name in STATUS_FIELDS}

    def run_tile(self, tile: Tile) -> dict[str, Any]:
        """Map a tile with retries; record the outcome in the store; never raise.

        Ray retries a task whose actor died, even when the tile was finished and recorded before
        the result reached the driver; such a tile is reported from its record, not redone.
        """
        record = store.read_record(self.job.store_url, tile)
        if record is not None and record["status"] == "done":
            return self._row(tile, "done", int(record["predicted"]), int(record["attempts"]), "")
        error = ""
        attempts = 0
        for attempts in range(1, self.job.retries + 2):
            try:
                arrays, predicted = self.map_tile(tile)
                store.write_tile(self.job.store_url, tile, arrays)
                store.write_record(
                    self.job.store_url, tile, "done", predicted=predicted, attempts=attempts, worker=WORKER
                )
                return self._row(tile, "done", predicted, attempts, "")
            except InputDataError as exc:  # the same file fails the same way: no retry
                error = str(exc)
                break
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "tile attempt failed", extra={"tile": tile.id, "attempt": attempts, "error": error}
                )
        log.error("tile failed", extra={"tile": tile.id, "attempts": attempts, "error": error})
        store.write_record(self.job.store_url, tile, "failed", error=error, attempts=attempts, worker=WORKER)
        return self._row(tile, "failed", 0, attempts, error)

    @staticmethod
    def _row(tile: Tile, status: str, predicted: int, attempts: int, error: str) -> dict[str, Any]:
        return {
            "tile": tile.id,
            "status": status,
            "pixels": tile.n_pixels,
            "predicted": predicted,
            "attempts": attempts,
            "error": error,
        }

    def map_tile(self, tile: Tile) -> tuple[dict[str, np.ndarray], int]:
        """The tile's output arrays and the number of predicted pixels."""
        shape = (tile.height, tile.width)
        out = {name: np.full(shape, np.nan, dtype=np.float32) for name in OUTPUTS}
        out["quality"] = np.zeros(shape, dtype=np.uint8)
        predicted = 0
        with ExitStack() as stack:
            scenes = rank_scenes([self.job.scenes[s] for s in tile.scenes])
            readers = [open_scene(stack, scene, self.job.grid, tile, self._layout(scene)) for scene in scenes]
            for window in blocks(tile, self.job.block):
                predicted += self.map_block(tile, window, readers, out)
        return out, predicted

    def map_block(
        self, tile: Tile, window: Window, readers: Sequence[SceneReader], out: dict[str, np.ndarray]
    ) -> int:
        composite = composite_block(readers, window)
        flags = composite.flags.reshape(-1)
        if composite.observations:
            positions = np.concatenate([obs.positions for obs in composite.observations])
            observed = [self._observe(obs) for obs in composite.observations]
            reflectance = np.concatenate([values for values, _ in observed])
            flags[positions] |= np.concatenate([pixel_flags for _, pixel_flags in observed])
            flags[positions[~np.isfinite(reflectance).all(axis=1)]] |= np.uint8(Quality.NODATA)
            covariates = self._covariates(tile, window)[positions]
            flags[positions[~np.isfinite(covariates).all(axis=1)]] |= np.uint8(Quality.NO_SOIL)
            keep = (flags[positions] & np.uint8(NO_PREDICTION)) == 0
            positions, reflectance, covariates = positions[keep], reflectance[keep], covariates[keep]
        else:
            positions = np.zeros(0, dtype=np.int64)
        rows = slice(int(window.row_off), int(window.row_off + window.height))
        cols = slice(int(window.col_off), int(window.col_off + window.width))
        out["quality"][rows, cols] = flags.reshape(composite.flags.shape)
        if positions.size:
            for name, values in self._predict(reflectance, covariates).items():
                block = out[name][rows, cols].reshape(-1)
                block[positions] = values
                out[name][rows, cols] = block.reshape(composite.flags.shape)
        return int(positions.size)

    def _layout(self, scene: Any) -> SpectralLayout:
        if scene.id not in self.layouts:
            self.layouts[scene.id] = spectral_layout(scene)
        return self.layouts[scene.id]

    def _matcher(self, scene: Any) -> BandMatcher:
        if scene.id not in self.matchers:
            layout = self._layout(scene)
            self.matchers[scene.id] = BandMatcher.build(
                layout.table, self.target_wavelength, layout.nodata, scene.spectral_href
            )
        return self.matchers[scene.id]

    def _observe(self, obs: Any) -> tuple[np.ndarray, np.ndarray]:
        """(reflectance on the student's axis, quality flags) of one scene's pixels in a block.

        The spectrum decides water only for a scene that ships no land/water classes.
        """
        matcher = self._matcher(obs.scene)
        reflectance, out_of_range = matcher.reflectance(obs.raw)
        flags = np.where(out_of_range, np.uint8(Quality.OUT_OF_RANGE), np.uint8(0))
        if not any(layer_name(key) == CLASSES for key in obs.scene.quality_hrefs):
            flags[matcher.water(reflectance)] |= np.uint8(Quality.WATER)
        if matcher.filled:
            flags |= np.uint8(Quality.BANDS_FILLED)
        return reflectance, flags

    def _covariates(self, tile: Tile, window: Window) -> np.ndarray:
        """(pixels, 8) covariates of the block, bilinear on the grid."""
        from deepsalt.io.covariates import covariates_on_grid

        transform = self.job.grid.window_transform(
            tile.y0 + int(window.row_off), tile.x0 + int(window.col_off)
        )
        shape = (int(window.height), int(window.width))
        values = covariates_on_grid(dict(self.job.covariate_urls), self.job.grid.crs, transform, shape)
        return np.asarray(values, dtype=np.float32).reshape(values.shape[0], -1).T

    def _predict(self, reflectance: np.ndarray, covariates: np.ndarray) -> dict[str, np.ndarray]:
        """Predict in batches of ``batch_pixels``."""
        step = self.job.batch_pixels
        parts = [
            self.predictor.predict(reflectance[i : i + step], covariates[i : i + step])
            for i in range(0, len(reflectance), step)
        ]
        return {name: np.concatenate([p[name] for p in parts]).astype(np.float32) for name in OUTPUTS}


def tile_item(tile: Tile) -> dict[str, str]:
    """A tile descriptor as a Ray Data row (JSON keeps the row schema flat and small)."""
    return {"tile": json.dumps(asdict(tile))}


def tile_from_item(item: str) -> Tile:
    fields = json.loads(item)
    return Tile(**{**fields, "scenes": tuple(fields["scenes"])})
