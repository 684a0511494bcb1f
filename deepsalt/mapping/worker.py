"""Mapping one tile: read and composite its scenes, sample covariates, predict, write, record.

:class:`TileMapper` is the Ray Data actor: it loads the student once and then maps tiles one
after another. Work inside a tile goes block by block (``model.block`` pixels per side), so an
actor holds at most one block of imagery plus the tile's four output arrays, whatever the size
of the region. Only a small typed :class:`~deepsalt.mapping.records.TileResult` goes back to the
driver.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from deepsalt.errors import InputDataError
from deepsalt.io.cube import SpectralLayout
from deepsalt.io.scenes import spectral_layout
from deepsalt.io.stac import SceneRef
from deepsalt.logs import get_logger
from deepsalt.mapping import rows, store
from deepsalt.mapping.bands import BandMatcher
from deepsalt.mapping.composite import (
    CLASSES,
    OBSCURING,
    SceneReader,
    ToReflectance,
    composite_block,
    layer_name,
    rank_scenes,
)
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.identity import scenes_key
from deepsalt.mapping.predictor import load_predictor
from deepsalt.mapping.quality import NO_PREDICTION, Quality
from deepsalt.mapping.records import TileResult, TileStatus, read_record, write_record
from deepsalt.mapping.tiles import Tile
from deepsalt.mapping.warp import WarpedRaster, open_spectral

log = get_logger(__name__)

OUTPUTS = ("ece", "ece_std", "domain_score")
# Which process mapped a tile, kept in its record (to trace a bad node or a killed actor).
WORKER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class MappingJob:
    """What every actor needs, shipped once when the actor starts."""

    store_url: str
    grid: Grid
    scenes: Mapping[str, SceneRef]
    covariate_urls: Mapping[str, str]
    survey_url: str | None
    predictor: str
    student_url: str
    block: int
    batch_pixels: int
    retries: int


def blocks(tile: Tile, size: int) -> Iterator[Window]:
    """Windows of at most ``size`` pixels per side covering the tile (tile-relative offsets)."""
    for row in range(0, tile.height, size):
        for col in range(0, tile.width, size):
            yield Window(col, row, min(size, tile.width - col), min(size, tile.height - row))


def open_scene(
    stack: ExitStack, scene: SceneRef, grid: Grid, tile: Tile, layout: SpectralLayout, convert: ToReflectance
) -> SceneReader:
    """The scene's spectral image (with its band count checked) and quality layers, on the tile's grid."""
    transform = grid.window_transform(tile.y0, tile.x0)
    shape = (tile.height, tile.width)
    spectral = open_spectral(stack, scene, layout, grid.crs, transform, shape)
    quality = {
        layer_name(key): WarpedRaster(stack, href, grid.crs, transform, shape, 255)
        for key, href in scene.quality_hrefs.items()
        if layer_name(key) in (*OBSCURING, CLASSES)
    }
    return SceneReader(scene, spectral, quality, layout.nodata, convert)


class TileMapper:
    """Ray Data actor: batches of tiles in, batches of :class:`TileResult` out (see :mod:`rows`)."""

    def __init__(self, job: MappingJob):
        self.job = job
        self.predictor = load_predictor(job.predictor, job.student_url)
        self.target_wavelength = np.asarray(self.predictor.wavelength, dtype=np.float64)
        self.layouts: dict[str, SpectralLayout] = {}
        self.matchers: dict[str, BandMatcher] = {}
        self.survey = None  # deepsalt.io.ssurgo.Survey, loaded on the first block that needs it

    def __call__(self, batch: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        return rows.result_batch([self.run_tile(tile) for tile in rows.tiles_of(batch)])

    def run_tile(self, tile: Tile) -> TileResult:
        """Map a tile with retries; record the outcome in the store; never raise.

        Ray retries a task whose actor died, even when the tile was finished and recorded before
        the result reached the driver; such a tile is reported from its record, not redone.
        """
        key = scenes_key(self.job.scenes[s] for s in tile.scenes)
        record = read_record(self.job.store_url, tile)
        if record is not None and record.status is TileStatus.DONE and record.scenes_key == key:
            return record

        def outcome(status: TileStatus, attempts: int, **fields: object) -> TileResult:
            result = TileResult.model_validate(
                {
                    "tile": tile.id,
                    "status": status,
                    "scenes_key": key,
                    "pixels": tile.n_pixels,
                    "attempts": attempts,
                    "worker": WORKER,
                    **fields,
                }
            )
            write_record(self.job.store_url, result)
            return result

        error = ""
        attempts = 0
        for attempts in range(1, self.job.retries + 2):
            try:
                arrays, predicted, rejected = self.map_tile(tile)
                store.write_tile(self.job.store_url, tile, arrays)
                return outcome(TileStatus.DONE, attempts, predicted=predicted, rejected_scenes=rejected)
            except InputDataError as exc:  # the same file fails the same way: no retry
                error = str(exc)
                break
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "tile attempt failed", extra={"tile": tile.id, "attempt": attempts, "error": error}
                )
        log.error("tile failed", extra={"tile": tile.id, "attempts": attempts, "error": error})
        return outcome(TileStatus.FAILED, attempts, error=error)

    def map_tile(self, tile: Tile) -> tuple[dict[str, np.ndarray], int, tuple[str, ...]]:
        """The tile's output arrays, the number of predicted pixels and the scenes rejected on some block."""
        shape = (tile.height, tile.width)
        out = {name: np.full(shape, np.nan, dtype=np.float32) for name in OUTPUTS}
        out["quality"] = np.zeros(shape, dtype=np.uint8)
        predicted = 0
        rejected: set[str] = set()
        with ExitStack() as stack:
            scenes = rank_scenes([self.job.scenes[s] for s in tile.scenes])
            readers = [
                open_scene(stack, scene, self.job.grid, tile, self._layout(scene), self._converter(scene))
                for scene in scenes
            ]
            for window in blocks(tile, self.job.block):
                predicted += self.map_block(tile, window, readers, out, rejected)
        if rejected:
            log.warning("scenes not used", extra={"tile": tile.id, "scenes": sorted(rejected)})
        return out, predicted, tuple(sorted(rejected))

    def map_block(
        self,
        tile: Tile,
        window: Window,
        readers: Sequence[SceneReader],
        out: dict[str, np.ndarray],
        rejected: set[str],
    ) -> int:
        composite = composite_block(readers, window)
        rejected.update(composite.rejected)
        flags = composite.flags.reshape(-1)
        if composite.observations:
            positions = np.concatenate([obs.positions for obs in composite.observations])
            reflectance = np.concatenate([obs.reflectance for obs in composite.observations])
            flags[positions] |= np.concatenate([obs.flags for obs in composite.observations])
            covariates = self._covariates(tile, window)[positions]
            survey = self._survey(tile, window)[positions]
            flags[positions[~np.isfinite(covariates).all(axis=1)]] |= np.uint8(Quality.NO_SOIL)
            keep = (flags[positions] & np.uint8(NO_PREDICTION)) == 0
            positions, reflectance, covariates, survey = (
                positions[keep],
                reflectance[keep],
                covariates[keep],
                survey[keep],
            )
        else:
            positions = np.zeros(0, dtype=np.int64)
        ys = slice(int(window.row_off), int(window.row_off + window.height))
        xs = slice(int(window.col_off), int(window.col_off + window.width))
        out["quality"][ys, xs] = flags.reshape(composite.flags.shape)
        if positions.size:
            for name, values in self._predict(reflectance, covariates, survey).items():
                block = out[name][ys, xs].reshape(-1)
                block[positions] = values
                out[name][ys, xs] = block.reshape(composite.flags.shape)
        return int(positions.size)

    def _layout(self, scene: SceneRef) -> SpectralLayout:
        if scene.id not in self.layouts:
            self.layouts[scene.id] = spectral_layout(scene)
        return self.layouts[scene.id]

    def _matcher(self, scene: SceneRef) -> BandMatcher:
        if scene.id not in self.matchers:
            layout = self._layout(scene)
            self.matchers[scene.id] = BandMatcher.build(
                layout.table, self.target_wavelength, layout.nodata, scene.spectral_href
            )
        return self.matchers[scene.id]

    def _converter(self, scene: SceneRef) -> ToReflectance:
        """The scene's stored values → (reflectance on the student's axis, out of range, flags).

        The spectrum decides water only for a scene that ships no land/water classes.
        """
        matcher = self._matcher(scene)
        water_by_spectrum = not any(layer_name(key) == CLASSES for key in scene.quality_hrefs)

        def convert(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            reflectance, out_of_range = matcher.reflectance(raw)
            flags = np.zeros(len(reflectance), dtype=np.uint8)
            if water_by_spectrum:
                flags[matcher.water(reflectance)] |= np.uint8(Quality.WATER)
            if matcher.filled:
                flags |= np.uint8(Quality.BANDS_FILLED)
            return reflectance, out_of_range, flags

        return convert

    def _covariates(self, tile: Tile, window: Window) -> np.ndarray:
        """(pixels, 8) covariates of the block, bilinear on the grid."""
        from deepsalt.io.covariates import covariates_on_grid

        transform = self.job.grid.window_transform(
            tile.y0 + int(window.row_off), tile.x0 + int(window.col_off)
        )
        shape = (int(window.height), int(window.width))
        values = covariates_on_grid(dict(self.job.covariate_urls), self.job.grid.crs, transform, shape)
        return np.asarray(values, dtype=np.float32).reshape(values.shape[0], -1).T

    def _survey(self, tile: Tile, window: Window) -> np.ndarray:
        """(pixels,) the survey's map-unit ECe of the block (NaN without a survey or outside it)."""
        shape = (int(window.height), int(window.width))
        if self.job.survey_url is None:
            return np.full(shape[0] * shape[1], np.nan, np.float32)
        from deepsalt.io.ssurgo import load_survey, survey_on_grid

        if self.survey is None:
            self.survey = load_survey(self.job.survey_url)
        transform = self.job.grid.window_transform(
            tile.y0 + int(window.row_off), tile.x0 + int(window.col_off)
        )
        return survey_on_grid(self.survey, self.job.grid.crs, transform, shape).ece.reshape(-1)

    def _predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Predict in batches of ``batch_pixels``; the survey only reaches models mapped with one."""
        step = self.job.batch_pixels
        with_survey = self.job.survey_url is not None
        parts = [
            self.predictor.predict(reflectance[i : i + step], covariates[i : i + step], survey[i : i + step])
            if with_survey
            else self.predictor.predict(reflectance[i : i + step], covariates[i : i + step])
            for i in range(0, len(reflectance), step)
        ]
        return {name: np.concatenate([p[name] for p in parts]).astype(np.float32) for name in OUTPUTS}
