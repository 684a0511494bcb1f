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
from deepsalt.mapping.bands import BandMatcher, BandMatchers
from deepsalt.mapping.composite import (
    CLASSES,
    OBSCURING,
    QUALITY_NODATA,
    Observation,
    SceneReader,
    TileCompositor,
    ToReflectance,
    keep_rows,
    layer_name,
    rank_scenes,
)
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.identity import scenes_key
from deepsalt.mapping.predictor import InferenceSettings, load_predictor
from deepsalt.mapping.quality import NO_PREDICTION, Quality
from deepsalt.mapping.recent import Recent
from deepsalt.mapping.records import TileResult, TileStatus, read_record, write_record
from deepsalt.mapping.tiff_blocks import BlockCache
from deepsalt.mapping.tiles import Tile
from deepsalt.mapping.warp import IndexMaps, TileGrid, TileRaster, open_spectral

log = get_logger(__name__)

OUTPUTS = ("ece", "ece_std", "domain_score")
# Scenes whose band layout an actor keeps (its recent tiles' scenes; an older one is read again).
LAYOUTS_KEPT = 64
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
    inference: InferenceSettings
    retries: int


def blocks(tile: Tile, size: int) -> Iterator[Window]:
    """Windows of at most ``size`` pixels per side covering the tile (tile-relative offsets)."""
    for row in range(0, tile.height, size):
        for col in range(0, tile.width, size):
            yield Window(col, row, min(size, tile.width - col), min(size, tile.height - row))


def open_scene(
    stack: ExitStack,
    scene: SceneRef,
    target: TileGrid,
    layout: SpectralLayout,
    convert: ToReflectance,
    cache: BlockCache,
) -> SceneReader:
    """The scene's spectral image (with its band count checked) and quality layers, on the tile's grid.

    Nothing is read yet; the layers of one scene share their index map when they share a grid.
    """
    maps = IndexMaps(target)
    spectral = open_spectral(stack, scene, layout, maps, cache)
    quality = {
        layer_name(key): TileRaster(stack, href, maps, QUALITY_NODATA, cache)
        for key, href in scene.quality_hrefs.items()
        if layer_name(key) in (*OBSCURING, CLASSES)
    }
    return SceneReader(scene, spectral, quality, layout.nodata, convert, target.shape)


class TileInputs:
    """A tile's covariates and survey ECe on the grid, made on first use and kept for its blocks."""

    def __init__(self, mapper: TileMapper, tile: Tile):
        self._mapper, self._tile = mapper, tile
        self._covariates: np.ndarray | None = None
        self._survey: np.ndarray | None = None

    def covariates(self) -> np.ndarray:
        """(pixels, 8) covariates of the tile, bilinear on the grid, row-major pixels."""
        if self._covariates is None:
            from deepsalt.io.covariates import covariates_on_grid

            job, tile = self._mapper.job, self._tile
            transform = job.grid.window_transform(tile.y0, tile.x0)
            values = covariates_on_grid(
                dict(job.covariate_urls), job.grid.crs, transform, (tile.height, tile.width)
            )
            self._covariates = np.ascontiguousarray(
                np.asarray(values, dtype=np.float32).reshape(values.shape[0], -1).T
            )
        return self._covariates

    def survey(self) -> np.ndarray:
        """(pixels,) the survey's map-unit ECe of the tile (NaN without a survey or outside it)."""
        if self._survey is None:
            self._survey = self._mapper.survey_on_tile(self._tile)
        return self._survey


class TileMapper:
    """Ray Data actor: batches of tiles in, batches of :class:`TileResult` out (see :mod:`rows`)."""

    def __init__(self, job: MappingJob):
        self.job = job
        self.predictor = load_predictor(job.predictor, job.student_url, job.inference)
        self.cache = BlockCache()
        self.layouts: Recent[str, SpectralLayout] = Recent(LAYOUTS_KEPT)
        self.matchers = BandMatchers(self.predictor.wavelength)
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
        predicted = 0
        inputs = TileInputs(self, tile)
        with ExitStack() as stack:
            compositor = self.compositor(stack, tile)
            for observation in compositor.observations(list(blocks(tile, self.job.block))):
                predicted += self._predict_into(observation, inputs, compositor.flags, out)
            out["quality"] = compositor.finish()
        if compositor.rejected:
            log.warning("scenes not used", extra={"tile": tile.id, "scenes": sorted(compositor.rejected)})
        return out, predicted, tuple(sorted(compositor.rejected))

    def compositor(self, stack: ExitStack, tile: Tile) -> TileCompositor:
        """The tile's scenes, ranked and placed on its grid (files open on ``stack`` as they are read)."""
        shape = (tile.height, tile.width)
        target = TileGrid(self.job.grid.crs, self.job.grid.window_transform(tile.y0, tile.x0), shape)
        scenes = rank_scenes([self.job.scenes[s] for s in tile.scenes])
        readers = [
            open_scene(stack, scene, target, self._layout(scene), self._converter(scene), self.cache)
            for scene in scenes
        ]
        return TileCompositor(readers, shape)

    def _predict_into(
        self, observation: Observation, inputs: TileInputs, flags: np.ndarray, out: dict[str, np.ndarray]
    ) -> int:
        """Predict an observation's pixels that carry no no-prediction flag into ``out``; returns how many."""
        flat_flags = flags.reshape(-1)
        positions, reflectance = observation.positions, observation.reflectance
        flat_flags[positions] |= observation.flags
        covariates = inputs.covariates()[positions]
        flat_flags[positions[~np.isfinite(covariates).all(axis=1)]] |= np.uint8(Quality.NO_SOIL)
        keep = (flat_flags[positions] & np.uint8(NO_PREDICTION)) == 0
        if not keep.all():
            positions, reflectance, covariates = (
                positions[keep],
                keep_rows(reflectance, keep),
                covariates[keep],
            )
        if not positions.size:
            return 0
        for name, values in self._predict(reflectance, covariates, inputs.survey()[positions]).items():
            out[name].reshape(-1)[positions] = values
        return int(positions.size)

    def _layout(self, scene: SceneRef) -> SpectralLayout:
        return self.layouts.get(scene.id, lambda: spectral_layout(scene))

    def _matcher(self, scene: SceneRef) -> BandMatcher:
        layout = self._layout(scene)
        return self.matchers.get(layout.table, layout.nodata, scene.spectral_href)

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

    def survey_on_tile(self, tile: Tile) -> np.ndarray:
        """(pixels,) the survey's map-unit ECe on the tile (NaN without a survey or outside it)."""
        shape = (tile.height, tile.width)
        if self.job.survey_url is None:
            return np.full(shape[0] * shape[1], np.nan, np.float32)
        from deepsalt.io.ssurgo import load_survey, survey_on_grid

        if self.survey is None:
            self.survey = load_survey(self.job.survey_url)
        transform = self.job.grid.window_transform(tile.y0, tile.x0)
        return survey_on_grid(self.survey, self.job.grid.crs, transform, shape).ece.reshape(-1)

    def _predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Predict in calls of ``batch_pixels`` (None: the whole block, batched by the predictor);
        the survey only reaches models mapped with one."""
        step = self.job.inference.batch_pixels or max(len(reflectance), 1)
        with_survey = self.job.survey_url is not None
        parts = [
            self.predictor.predict(reflectance[i : i + step], covariates[i : i + step], survey[i : i + step])
            if with_survey
            else self.predictor.predict(reflectance[i : i + step], covariates[i : i + step])
            for i in range(0, len(reflectance), step)
        ]
        return {name: np.concatenate([p[name] for p in parts]).astype(np.float32) for name in OUTPUTS}
