"""Compositing several scenes into one observation per pixel.

Rule (documented in configs/map.yaml): scenes are ranked by scene cloud cover (least first),
then acquisition time (most recent first). Each pixel takes its first *clear, usable*
observation in that order: data present, not background, not cloud, cloud shadow, haze, cirrus
or snow, and every band finite and inside the physical reflectance range. Pixels seen only under
cloud are flagged ``CLOUD``; pixels never seen, or seen only with bands missing, are ``NODATA``;
pixels seen only outside the physical range are ``OUT_OF_RANGE``; a clear observation of water is
kept as the pixel's observation but flagged ``WATER`` and not predicted. Later scenes are only
read while some pixel of the block still needs an observation.

A scene is evidence only if its values are: when most of the pixels a scene would give a block
are unusable (a product written with the wrong scale, a corrupt or all-NaN file), none of its
pixels is trusted there. The scene is skipped on that block (it sets neither values nor flags)
and reported, and the block's pixels go to the next scene in the ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from deepsalt.io.stac import SceneRef
from deepsalt.mapping.quality import Quality
from deepsalt.mapping.warp import TileRaster

# DLR quality layer names (after the QL_QUALITY_ prefix) that hide the ground.
OBSCURING = ("CLOUD", "CLOUDSHADOW", "HAZE", "CIRRUS", "SNOW")
CLASSES = "CLASSES"
CLASS_BACKGROUND, CLASS_WATER = 0, 2
QUALITY_NODATA = 255
MAX_UNUSABLE = 0.5
"""A scene whose share of unusable pixels on a block exceeds this is not used on the block."""
KEEP_ROWS_CHUNK = 8192
"""Rows :func:`keep_rows` moves at a time: the only extra memory it needs."""

# Stored values (n, scene bands) → (reflectance (n, model bands) with NaN = nodata, out-of-range
# mask (n,), quality flags the scene's converter adds per pixel (n,): water by spectrum, bands filled).
ToReflectance = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def layer_name(key: str) -> str:
    """``QL_QUALITY_CLOUD`` / ``quality_cloud`` / ``cloud`` → ``CLOUD``."""
    return key.upper().removeprefix("QL_").removeprefix("QUALITY_").replace("_", "")


def rank_scenes(scenes: Sequence[SceneRef]) -> list[SceneRef]:
    """Least cloud first, then most recent first (ties broken by id for determinism)."""
    by_id = sorted(scenes, key=lambda s: s.id)
    by_time = sorted(by_id, key=lambda s: str(s.datetime or ""), reverse=True)
    return sorted(by_time, key=lambda s: float("inf") if s.cloud_cover is None else s.cloud_cover)


@dataclass
class Observation:
    """Land pixels of one block taken from one scene: flat positions in the tile, reflectance on
    the model's bands (n, bands), every value finite and inside the physical range, and the flags
    the scene's converter set on them (water by spectrum, bands filled)."""

    scene: SceneRef
    positions: np.ndarray
    reflectance: np.ndarray
    flags: np.ndarray


class SceneReader:
    """The spectral and quality rasters of one scene on one tile, and its band conversion.

    The quality layers are read for the whole tile at the first block that asks (they are one
    byte per pixel), so every later block only slices its masks; the spectral image is read per
    block, only at the pixels the compositor takes from this scene.
    """

    def __init__(
        self,
        scene: SceneRef,
        spectral: TileRaster,
        quality: Mapping[str, TileRaster],
        nodata: float,
        to_reflectance: ToReflectance,
        shape: tuple[int, int],
    ):
        self.scene = scene
        self.spectral = spectral
        self.quality = quality
        self.nodata = nodata
        self.to_reflectance = to_reflectance
        self.shape = shape
        self._masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def tile_masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(has data, obscured, water) over the whole tile from the quality layers."""
        if self._masks is None:
            valid = np.ones(self.shape, dtype=bool)
            obscured = np.zeros(self.shape, dtype=bool)
            water = np.zeros(self.shape, dtype=bool)
            for name, raster in self.quality.items():
                layer = raster.plane()
                valid &= layer != QUALITY_NODATA
                if name == CLASSES:
                    valid &= layer != CLASS_BACKGROUND
                    water |= layer == CLASS_WATER
                elif name in OBSCURING:
                    obscured |= (layer != 0) & (layer != QUALITY_NODATA)
            self._masks = (valid, obscured, water)
        return self._masks

    def masks(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(has data, obscured, water) for the window."""
        rows, cols = window.toslices()
        valid, obscured, water = self.tile_masks()
        return valid[rows, cols], obscured[rows, cols], water[rows, cols]

    def pixels(self, positions: np.ndarray) -> np.ndarray:
        """(n, bands) stored values of the spectral image at flat tile ``positions``."""
        return self.spectral.pixels(positions)


class TileCompositor:
    """The compositing rule over one tile: scene by scene in rank order, block by block.

    Taking the scenes in the outer loop means one scene's source tiles are decoded while its
    blocks are visited in order, so neighbouring blocks reuse them before the next scene's
    replace them; the rule itself is per block, as before (:data:`MAX_UNUSABLE` judges a scene
    on each block). :meth:`observations` yields each block's observation from each scene as soon
    as it is made, so the caller can predict it and let it go; :attr:`flags` holds the quality
    flags as they are set, and :meth:`finish` adds those of the pixels no scene gave.
    """

    def __init__(self, readers: Sequence[SceneReader], shape: tuple[int, int]):
        self.readers = readers
        self.shape = shape
        self.need = np.ones(shape, dtype=bool)
        self.seen = np.zeros(shape, dtype=bool)  # under cloud in some scene
        self.out_of_range = np.zeros(shape, dtype=bool)  # outside the physical range in some scene
        self.incomplete = np.zeros(shape, dtype=bool)  # with a band missing in some scene
        self.flags = np.zeros(shape, dtype=np.uint8)
        self.rejected: set[str] = set()
        """Ids of scenes skipped on some block because their values there were mostly unusable."""

    def observations(self, windows: Sequence[Window]) -> Iterator[Observation]:
        need, flags = self.need.reshape(-1), self.flags.reshape(-1)
        for reader in self.readers:
            if not need.any():
                break
            for window in windows:
                rows, cols = window.toslices()
                if not self.need[rows, cols].any():
                    continue
                valid, obscured, _ = reader.masks(window)
                candidates = self.need[rows, cols] & valid
                self.seen[rows, cols] |= candidates & obscured
                take = candidates & ~obscured
                if not take.any():
                    continue
                positions = tile_positions(window, np.flatnonzero(take), self.shape[1])
                raw = reader.pixels(positions)
                has_data = ~np.all(raw == reader.nodata, axis=1)
                if not has_data.all():
                    positions, raw = positions[has_data], keep_rows(raw, has_data)
                if not positions.size:
                    continue
                reflectance, beyond, pixel_flags = reader.to_reflectance(raw)
                del raw
                missing = ~np.isfinite(reflectance).all(axis=1)
                usable = ~(beyond | missing)
                if 1.0 - usable.mean() > MAX_UNUSABLE:  # not evidence: neither values nor flags
                    self.rejected.add(reader.scene.id)
                    continue
                self.out_of_range.reshape(-1)[positions[beyond]] = True
                self.incomplete.reshape(-1)[positions[missing]] = True
                if not usable.all():
                    positions, reflectance, pixel_flags = (
                        positions[usable],
                        keep_rows(reflectance, usable),
                        pixel_flags[usable],
                    )
                need[positions] = False
                is_water = reader.tile_masks()[2].reshape(-1)[positions]
                flags[positions[is_water]] |= np.uint8(Quality.WATER)
                if is_water.any():
                    land = ~is_water
                    positions, reflectance, pixel_flags = (
                        positions[land],
                        keep_rows(reflectance, land),
                        pixel_flags[land],
                    )
                if positions.size:
                    yield Observation(reader.scene, positions, reflectance, pixel_flags)

    def finish(self) -> np.ndarray:
        """The tile's quality flags, with those of the pixels no scene gave added."""
        need, flags = self.need, self.flags
        flags[need & self.out_of_range] |= np.uint8(Quality.OUT_OF_RANGE)
        flags[need & ~self.out_of_range & (self.incomplete | ~self.seen)] |= np.uint8(Quality.NODATA)
        flags[need & ~self.out_of_range & ~self.incomplete & self.seen] |= np.uint8(Quality.CLOUD)
        return flags


def keep_rows(values: np.ndarray, keep: np.ndarray, chunk: int = KEEP_ROWS_CHUNK) -> np.ndarray:
    """``values[keep]`` (``keep`` boolean over the rows), made in place: the kept rows move to the
    front ``chunk`` at a time, and the result is a view of ``values``'s first rows, whose other rows
    are then garbage.

    A block's stored values and reflectance are 100–200 MB; ``values[keep]`` would hold a second copy
    beside the first until the first is let go, and on a block with water or unusable pixels that
    copy set the actor's peak. Moving in place is safe because the i-th kept row comes from row i or
    later, and each chunk is gathered before it is written.
    """
    if not values.flags.writeable:  # a reader's read-only buffer: copy as before
        return values[keep]
    index = np.flatnonzero(keep)
    for start in range(0, len(index), chunk):
        rows = index[start : start + chunk]
        values[start : start + len(rows)] = values[rows]
    return values[: len(index)]


def tile_positions(window: Window, positions: np.ndarray, tile_width: int) -> np.ndarray:
    """Flat positions in a block → flat positions in its tile."""
    rows, cols = np.divmod(positions, int(window.width))
    return (rows + int(window.row_off)) * tile_width + cols + int(window.col_off)
