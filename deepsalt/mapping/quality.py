"""Per-pixel quality flags of the map (``quality`` variable, uint8 bit field).

A pixel with any flag set has no prediction (``ece`` is NaN); several flags may be set at once.
"""

from __future__ import annotations

from enum import IntFlag


class Quality(IntFlag):
    """Why a pixel has no prediction."""

    NODATA = 1  # no scene covers it, or every covering scene has nodata / background there
    CLOUD = 2  # every scene with data there is cloud, shadow, haze, cirrus or snow
    WATER = 4  # the chosen clear observation is water
    NO_SOIL = 8  # covariates missing there (e.g. outside the soil/climate rasters)
    OUT_OF_RANGE = 16  # reflectance outside [0, 1] on a usable band


FLAG_MEANINGS = " ".join(f.name.lower() for f in Quality)  # type: ignore[union-attr]
FLAG_MASKS = [int(f) for f in Quality]
