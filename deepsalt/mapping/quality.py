"""Per-pixel quality flags of the map (``quality`` variable, uint8 bit field).

A pixel with any of the ``NO_PREDICTION`` flags has no prediction (``ece`` is NaN); several flags
may be set at once. ``BANDS_FILLED`` only annotates a prediction: the pixel's scene lacked some of
the model's bands and they were interpolated from neighbouring bands
(:func:`deepsalt.spectra.resample.match_bands`).
"""

from __future__ import annotations

from enum import IntFlag


class Quality(IntFlag):
    """Why a pixel has no prediction, or what to know about the one it has."""

    NODATA = 1
    CLOUD = 2
    WATER = 4
    NO_SOIL = 8
    OUT_OF_RANGE = 16
    BANDS_FILLED = 32


FLAG_DESCRIPTIONS = {
    Quality.NODATA: "no scene covers the pixel, or every covering scene has nodata or background there",
    Quality.CLOUD: "every scene with data there is cloud, shadow, haze, cirrus or snow",
    Quality.WATER: "the chosen clear observation is water (the scene's classes, else its spectrum)",
    Quality.NO_SOIL: "soil or climate covariates are missing there",
    Quality.OUT_OF_RANGE: "reflectance outside [0, 1] on a usable band",
    Quality.BANDS_FILLED: "predicted, but some model bands were interpolated from the scene's neighbouring bands",
}
NO_PREDICTION = Quality.NODATA | Quality.CLOUD | Quality.WATER | Quality.NO_SOIL | Quality.OUT_OF_RANGE
FLAG_MEANINGS = " ".join(f.name.lower() for f in Quality)  # type: ignore[union-attr]
FLAG_MASKS = [int(f) for f in Quality]
