"""Compositing several scenes into one observation per pixel.

Rule (documented in configs/map.yaml): scenes are ranked by scene cloud cover (least first),
then acquisition time (most recent first). Each pixel takes its first *clear* observation in
that order: data present, not background, and not cloud, cloud shadow, haze, cirrus or snow.
Pixels seen only under cloud are flagged ``CLOUD``; pixels never seen are ``NODATA``; a clear
observation of water is kept as the pixel's observation but flagged ``WATER`` and not predicted.
Later scenes are only read while some pixel of the block still needs an observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.windows import Window

from deepsalt.mapping.quality import Quality

# DLR quality layer names (after the QL_QUALITY_ prefix) that hide the ground.
OBSCURING = ("CLOUD", "CLOUDSHADOW", "HAZE", "CIRRUS", "SNOW")
CLASSES = "CLASSES"
CLASS_BACKGROUND, CLASS_WATER = 0, 2
QUALITY_NODATA = 255


def layer_name(key: str) -> str:
    """``QL_QUALITY_CLOUD`` / ``quality_cloud`` / ``cloud`` → ``CLOUD``."""
    return key.upper().removeprefix("QL_").removeprefix("QUALITY_").replace("_", "")


def rank_scenes(scenes: Sequence[Any]) -> list[Any]:
    """Least cloud first, then most recent first (ties broken by id for determinism)."""
    by_id = sorted(scenes, key=lambda s: s.id)
    by_time = sorted(by_id, key=lambda s: str(s.datetime or ""), reverse=True)
    return sorted(by_time, key=lambda s: float("inf") if s.cloud_cover is None else s.cloud_cover)


@dataclass
class Observation:
    """Pixels of one block taken from one scene: flat positions and stored values (n, bands)."""

    scene: Any
    positions: np.ndarray
    raw: np.ndarray


@dataclass
class CompositeBlock:
    """A block's composite: observations per scene and the quality flags of every pixel."""

    flags: np.ndarray
    observations: list[Observation] = field(default_factory=list)


class SceneReader:
    """The warped spectral and quality rasters of one scene over one tile."""

    def __init__(self, scene: Any, spectral: Any, quality: dict[str, Any], nodata: float):
        self.scene = scene
        self.spectral = spectral
        self.quality = quality
        self.nodata = nodata

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
    seen = np.zeros(shape, dtype=bool)
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
        take &= ~np.all(raw == reader.nodata, axis=0)
        need &= ~take
        flags[take & water] |= np.uint8(Quality.WATER)
        use = take & ~water
        if use.any():
            positions = np.flatnonzero(use)
            block.observations.append(
                Observation(reader.scene, positions, raw.reshape(raw.shape[0], -1)[:, positions].T)
            )
    flags[need & seen] |= np.uint8(Quality.CLOUD)
    flags[need & ~seen] |= np.uint8(Quality.NODATA)
    return block
