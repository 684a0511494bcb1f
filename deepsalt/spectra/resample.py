"""Resampling spectra onto a sensor's bands with Gaussian spectral response functions.

Each source sample stands for the interval halfway to its neighbours (capped at the median
spacing, so a gap such as removed water bands is not bridged). A target band's value is the
SRF-weighted mean of the source samples, with weights equal to the Gaussian's mass over each
interval. That makes the operation linear and maps a constant spectrum to the same constant, for
any source spacing (1 nm lab VNIR, 10 nm AVIRIS, irregular EMIT/PRISMA).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from deepsalt.spectra.bands import BandTable

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
# A target band needs at least this share of its response inside measured, finite source samples.
MIN_COVERAGE = 0.5


def srf_weights(src_wavelength: np.ndarray, target: BandTable) -> np.ndarray:
    """(n_target, n_src) Gaussian SRF mass of each source interval (not normalised)."""
    src = np.asarray(src_wavelength, dtype=np.float64)
    if src.ndim != 1 or src.size < 2:
        raise ValueError("source wavelength axis must be 1-D with at least two samples")
    if np.any(np.diff(src) <= 0):
        raise ValueError("source wavelengths must be strictly increasing")
    gaps = np.diff(src)
    cap = np.median(gaps)
    half = np.minimum(gaps / 2.0, cap)
    lower = src - np.concatenate([[min(gaps[0] / 2.0, cap)], half])
    upper = src + np.concatenate([half, [min(gaps[-1] / 2.0, cap)]])
    sigma = (target.fwhm * _FWHM_TO_SIGMA)[:, None]
    centre = target.wavelength[:, None]
    return ndtr((upper[None, :] - centre) / sigma) - ndtr((lower[None, :] - centre) / sigma)


def resample_to_bands(values: np.ndarray, src_wavelength: np.ndarray, target: BandTable) -> np.ndarray:
    """Resample spectra ``[..., n_src]`` sampled at ``src_wavelength`` (nm) onto ``target`` bands.

    NaN source samples are left out of the weighted mean; a target band whose response lies
    mostly (> 1 - MIN_COVERAGE) outside the finite source samples is NaN rather than a guess.
    """
    values = np.asarray(values, dtype=np.float64)
    src = np.asarray(src_wavelength, dtype=np.float64)
    if values.shape[-1] != src.size:
        raise ValueError(f"spectra have {values.shape[-1]} samples but the wavelength axis has {src.size}")
    order = np.argsort(src)
    weights = srf_weights(src[order], target).T  # (n_src, n_target)
    values = values[..., order]
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0) @ weights
    coverage = finite.astype(np.float64) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / coverage
    return np.where(coverage >= MIN_COVERAGE, out, np.nan)
