"""Masks of bands that carry no usable surface signal."""

from __future__ import annotations

import numpy as np

# Atmospheric water-vapour absorption windows (nm) where L2A reflectance is noise.
WATER_VAPOUR_WINDOWS: tuple[tuple[float, float], ...] = ((1340.0, 1460.0), (1790.0, 1960.0))


def water_vapour_mask(wavelength: np.ndarray) -> np.ndarray:
    """True where a band centre (nm) lies outside the water-vapour windows, i.e. is usable."""
    wavelength = np.asarray(wavelength, dtype=float)
    usable = np.ones(wavelength.shape, dtype=bool)
    for low, high in WATER_VAPOUR_WINDOWS:
        usable &= ~((wavelength >= low) & (wavelength <= high))
    return usable
