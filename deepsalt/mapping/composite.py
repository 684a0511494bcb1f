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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from rasterio.windows import Window

from deepsalt.io.stac import SceneRef
from deepsalt.mapping.quality import Quality
from deepsalt.mapping.warp import WarpedCube, WarpedRaster

# DLR quality layer names (after the QL_QUALITY_ prefix) that hide the ground.
OBSCURING = ("CLOUD", "CLOUDSHADOW", "HAZE", "CIRRUS", "SNOW")
CLASSES = "CLASSES"
CLASS_BACKGROUND, CLASS_WATER = 0, 2
QUALITY_NODATA = 255
MAX_UNUSABLE = 0.5
"""A scene whose share of unusable pixels on a block exceeds this is not used on the block."""

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
    """Land pixels of one block taken from one scene: flat positions, reflectance on the model's
    bands (n, bands), every value finite and inside the physical range, and the flags the
    scene's converter set on them (water by spectrum, bands filled)."""

    scene: SceneRef
    positions: np.ndarray
    reflectance: np.ndarray
    flags: np.ndarray


@dataclass
class CompositeBlock:
    """A block's composite: observations per scene, the quality flags of every pixel, and the
    ids of scenes skipped on the block because their values were mostly unusable."""

    flags: np.ndarray
    observations: list[Observation] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


class SceneReader:
    """The warped spectral and quality rasters of one scene over one tile, and its band conversion."""

    def __init__(
        self,
        scene: SceneRef,
        spectral: WarpedRaster | WarpedCube,
        quality: Mapping[str, WarpedRaster],
        nodata: float,
        to_reflectance: ToReflectance,
    ):
        self.scene = scene
        self.spectral = spectral
        self.quality = quality
        self.nodata = nodata
        self.to_reflectance = to_reflectance

    def masks(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(has data, obscured, water) for the window from the quality layers."""
        shape = (int(window.height), int(window.width))
        valid = np.ones(shape, dtype=bool)
        obscured = np.zeros(shape, dtype=bool)
        water = np.zeros(shape, dtype=bool)
        for name, raster in self.quality.items():
            layer = raster.read(window, [1])[0]
            valid &= layer != QUALITY_NODATA
            if name == CLASSES:
                valid &= layer != CLASS_BACKGROUND
                water |= layer == CLASS_WATER
            elif name in OBSCURING:
                obscured |= (layer != 0) & (layer != QUALITY_NODATA)
        return valid, obscured, water


def composite_block(readers: Sequence[SceneReader], window: Window) -> CompositeBlock:
    """Apply the compositing rule over ``readers`` (already ranked) for one window."""
    shape = (int(window.height), int(window.width))
    need = np.ones(shape, dtype=bool)
    seen = np.zeros(shape, dtype=bool)  # under cloud in some scene
    out_of_range = np.zeros(shape, dtype=bool)  # outside the physical range in some scene
    incomplete = np.zeros(shape, dtype=bool)  # with a band missing in some scene
    flags = np.zeros(shape, dtype=np.uint8)
    block = CompositeBlock(flags)
    for reader in readers:
        if not need.any():
            break
        valid, obscured, water = reader.masks(window)
        candidates = need & valid
        seen |= candidates & obscured
        take = candidates & ~obscured
        if not take.any():
            continue
        raw = reader.spectral.read(window)
        positions = np.flatnonzero(take & ~np.all(raw == reader.nodata, axis=0))
        if not positions.size:
            continue
        reflectance, beyond, pixel_flags = reader.to_reflectance(
            raw.reshape(raw.shape[0], -1)[:, positions].T
        )
        missing = ~np.isfinite(reflectance).all(axis=1)
        usable = ~(beyond | missing)
        if 1.0 - usable.mean() > MAX_UNUSABLE:  # not evidence: neither values nor flags
            block.rejected.append(reader.scene.id)
            continue
        out_of_range.flat[positions[beyond]] = True
        incomplete.flat[positions[missing]] = True
        positions, reflectance, pixel_flags = positions[usable], reflectance[usable], pixel_flags[usable]
        need.flat[positions] = False
        is_water = water.reshape(-1)[positions]
        flags.flat[positions[is_water]] |= np.uint8(Quality.WATER)
        if not is_water.all():
            land = ~is_water
            block.observations.append(
                Observation(reader.scene, positions[land], reflectance[land], pixel_flags[land])
            )
    flags[need & out_of_range] |= np.uint8(Quality.OUT_OF_RANGE)
    flags[need & ~out_of_range & (incomplete | ~seen)] |= np.uint8(Quality.NODATA)
    flags[need & ~out_of_range & ~incomplete & seen] |= np.uint8(Quality.CLOUD)
    return block
