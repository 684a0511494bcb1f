"""Per-pixel quality flags of the map (``quality`` variable, uint8 bit field).

A pixel with any flag set has no prediction (``ece`` is NaN); several flags may be set at once.
"""

from __future__ import annotations

from enum import IntFlag


class Quality(IntFlag):
    """Why a pixel has no prediction."""

    NODATA = 1
    CLOUD = 2
    WATER = 4
    NO_SOIL = 8
    OUT_OF_RANGE = 16


FLAG_DESCRIPTIONS = {
    Quality.NODATA: "no scene covers the pixel, or every covering scene has nodata or background there",
    Quality.CLOUD: "every scene with data there is cloud, shadow, haze, cirrus or snow",
    Quality.WATER: "the chosen clear observation is water",
    Quality.NO_SOIL: "soil or climate covariates are missing there",
    Quality.OUT_OF_RANGE: "reflectance outside [0, 1] on a usable band",
}
FLAG_MEANINGS = " ".join(f.name.lower() for f in Quality)  # type: ignore[union-attr]
FLAG_MASKS = [int(f) for f in Quality]
