"""Resampling spectra onto a sensor's bands with Gaussian spectral response functions.

Each source sample stands for the interval halfway to its neighbours (capped at the median
spacing, so a gap such as removed water bands is not bridged). A target band's value is the
SRF-weighted mean of the source samples, with weights equal to the Gaussian's mass over each
interval. That makes the operation linear and maps a constant spectrum to the same constant, for
any source spacing (1 nm lab VNIR, 10 nm AVIRIS, irregular EMIT/PRISMA). Source bands may come in
any order (EnMAP products list the VNIR detector's bands, then the SWIR detector's, which overlap
at 900-1000 nm); weights always follow the caller's band order.

:func:`match_bands` states what happens when a source lacks a band the target needs (see there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from deepsalt.spectra.bands import BandTable

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
# A target band needs at least this share of its response inside measured, finite source samples.
MIN_COVERAGE = 0.5
# A target band the source does not cover is filled across a hole in the source of at most this
# width (nm, between the usable bands on either side): three adjacent bad EnMAP SWIR bands.
FILL_GAP_NM = 50.0


def srf_weights(src_wavelength: np.ndarray, target: BandTable) -> np.ndarray:
    """(n_target, n_src) Gaussian SRF mass of each source interval (not normalised).

    ``src_wavelength`` may be in any order; column ``j`` belongs to ``src_wavelength[j]``.
    """
    src = np.asarray(src_wavelength, dtype=np.float64)
    if src.ndim != 1 or src.size < 2:
        raise ValueError("source wavelength axis must be 1-D with at least two samples")
    if not np.all(np.isfinite(src)):
        raise ValueError("source wavelengths must be finite")
    order = np.argsort(src, kind="stable")
    ordered = src[order]
    gaps = np.diff(ordered)
    cap = np.median(gaps)
    half = np.minimum(gaps / 2.0, cap)
    lower = ordered - np.concatenate([[min(gaps[0] / 2.0, cap)], half])
    upper = ordered + np.concatenate([half, [min(gaps[-1] / 2.0, cap)]])
    sigma = (target.fwhm * _FWHM_TO_SIGMA)[:, None]
    centre = target.wavelength[:, None]
    mass = ndtr((upper[None, :] - centre) / sigma) - ndtr((lower[None, :] - centre) / sigma)
    weights = np.empty_like(mass)
    weights[:, order] = mass
    return weights


@dataclass(frozen=True)
class BandMatch:
    """How each target band is made from the source bands: ``weights`` rows sum to 1 (or 0 where
    ``missing``); ``filled`` bands were interpolated from neighbours instead of resampled."""

    weights: np.ndarray  # (n_target, n_src)
    filled: np.ndarray  # (n_target,) bool
    missing: np.ndarray  # (n_target,) bool


def match_bands(src_wavelength: np.ndarray, target: BandTable) -> BandMatch:
    """The rule that makes every target band from a source's (usable) bands.

    1. *Resampled*: when at least ``MIN_COVERAGE`` of the target band's Gaussian response falls on
       source bands, its value is the SRF-weighted mean of those bands.
    2. *Filled*: otherwise, when the nearest source bands below and above its centre are at most
       ``FILL_GAP_NM`` apart, its value is interpolated linearly between them (a band at the centre
       itself is taken as is). Callers flag what they make from filled bands.
    3. *Missing*: otherwise the source cannot give that band (``missing``); callers refuse the
       source, naming it and the band.
    """
    src = np.asarray(src_wavelength, dtype=np.float64)
    mass = srf_weights(src, target)
    coverage = mass.sum(axis=1)
    covered = coverage >= MIN_COVERAGE
    weights = np.zeros_like(mass)
    weights[covered] = mass[covered] / coverage[covered, None]
    filled = np.zeros(target.n_bands, dtype=bool)
    missing = np.zeros(target.n_bands, dtype=bool)
    for i in np.flatnonzero(~covered):
        centre = target.wavelength[i]
        below = np.flatnonzero(src <= centre)
        above = np.flatnonzero(src >= centre)
        if not (below.size and above.size):
            missing[i] = True
            continue
        lo = below[np.argmax(src[below])]
        hi = above[np.argmin(src[above])]
        if src[hi] - src[lo] > FILL_GAP_NM:
            missing[i] = True
            continue
        filled[i] = True
        if src[hi] == src[lo]:
            weights[i, lo] = 1.0
        else:
            share = (centre - src[lo]) / (src[hi] - src[lo])
            weights[i, lo], weights[i, hi] = 1.0 - share, share
    return BandMatch(weights, filled, missing)


def resample_to_bands(values: np.ndarray, src_wavelength: np.ndarray, target: BandTable) -> np.ndarray:
    """Resample spectra ``[..., n_src]`` sampled at ``src_wavelength`` (nm) onto ``target`` bands.

    NaN source samples are left out of the weighted mean; a target band whose response lies
    mostly (> 1 - MIN_COVERAGE) outside the finite source samples is NaN rather than a guess.
    """
    values = np.asarray(values, dtype=np.float64)
    src = np.asarray(src_wavelength, dtype=np.float64)
    if values.shape[-1] != src.size:
        raise ValueError(f"spectra have {values.shape[-1]} samples but the wavelength axis has {src.size}")
    weights = srf_weights(src, target).T  # (n_src, n_target)
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0) @ weights
    coverage = finite.astype(np.float64) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / coverage
    return np.where(coverage >= MIN_COVERAGE, out, np.nan)
