"""Spatially correlated random fields and blocky unit maps: the texture of the synthetic world."""

from __future__ import annotations

import numpy as np
import scipy.fft


def gaussian_field(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ``scale_px`` pixels.

    White noise filtered by a Gaussian kernel in the Fourier domain, on a grid padded by three
    correlation lengths so that the FFT's wrap-around does not join opposite edges.
    """
    pad = int(min(3 * scale_px, max(shape)))
    full = (shape[0] + pad, shape[1] + pad)
    noise = rng.standard_normal(full, dtype=np.float32)
    ky = scipy.fft.fftfreq(full[0])[:, None]
    kx = scipy.fft.rfftfreq(full[1])[None, :]
    kernel = np.exp(-2.0 * (np.pi * scale_px) ** 2 * (kx**2 + ky**2)).astype(np.float32)
    field = scipy.fft.irfft2(scipy.fft.rfft2(noise, workers=2) * kernel, s=full, workers=2)
    field = field[: shape[0], : shape[1]]
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def unit_map(
    rng: np.random.Generator, shape: tuple[int, int], block_px: int, n_values: int | None = None
) -> np.ndarray:
    """Blocky map of map units (e.g. fields, soil units) of ``block_px`` pixels, randomly offset.

    Returns the unit index of every pixel, from 0 to the number of units - 1 (or, with
    ``n_values``, a random value in [0, n_values) per unit).
    """
    oy, ox = rng.integers(0, block_px, size=2)
    rows = (np.arange(shape[0]) + oy) // block_px
    cols = (np.arange(shape[1]) + ox) // block_px
    n_cols = int(cols[-1]) + 1
    units = rows[:, None] * n_cols + cols[None, :]
    if n_values is None:
        return units
    values = rng.integers(0, n_values, size=int(units.max()) + 1)
    return values[units]


def per_unit_uniform(rng: np.random.Generator, units: np.ndarray) -> np.ndarray:
    """One uniform [0, 1) draw per map unit, spread over its pixels (float32)."""
    return rng.random(int(units.max()) + 1, dtype=np.float32)[units]
