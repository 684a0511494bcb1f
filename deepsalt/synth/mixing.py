"""Pixel reflectance from the surface state: real endmember spectra, mixed the way light mixes.

- Salt crystals sit among the soil grains: an *intimate* mixture, mixed in single-scattering
  albedo (Hapke's isotropic approximation, ``r = (1 - γ) / (1 + γ)``, ``γ = √(1 - w)``).
- Moisture darkens the soil exponentially, more strongly in the SWIR water bands
  (Lobell & Asner 2002, ``R = R_dry · exp(-c(λ) θ)``).
- Green vegetation, dry vegetation and bare ground share the pixel *areally*: a linear mixture.
- Illumination, residual aerosol and water vapour from the atmospheric correction, and
  band-dependent sensor noise at EnMAP-like SNR come on top (see ``deepsalt.synth.scenes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deepsalt.synth.hapke import from_albedo

if TYPE_CHECKING:
    from deepsalt.synth.library import SurfaceLibrary

GREEN_CROP, GREEN_HALOPHYTE = "lawn_grass", "saltbush"
GREEN_NATIVE = ("sagebrush", "cheatgrass")
REFERENCE_REFLECTANCE = 0.3


def _gauss(wavelength: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((wavelength - centre) / width) ** 2)


def moisture_coefficient(wavelength: np.ndarray) -> np.ndarray:
    """c(λ) of the exponential soil-moisture darkening: broad, plus liquid-water bands."""
    bands = (
        0.15 * _gauss(wavelength, 970, 30)
        + 0.3 * _gauss(wavelength, 1200, 40)
        + 1.0 * _gauss(wavelength, 1450, 60)
        + 1.6 * _gauss(wavelength, 1940, 70)
        + 0.4 / (1 + np.exp(-(wavelength - 1500) / 150))
    )
    return (2.5 + 6.0 * bands).astype(np.float32)


def atmospheric_absorption(wavelength: np.ndarray) -> np.ndarray:
    """0..1 share of the signal lost to gas absorption (H2O, O2): where L2A is noisy and biased."""
    windows = 1 / (1 + np.exp(-(wavelength - 1345) / 8)) - 1 / (1 + np.exp(-(wavelength - 1455) / 8))
    windows += 1 / (1 + np.exp(-(wavelength - 1800) / 8)) - 1 / (1 + np.exp(-(wavelength - 1955) / 8))
    lines = np.maximum.reduce(
        [
            0.55 * _gauss(wavelength, 940, 22),
            0.4 * _gauss(wavelength, 1135, 25),
            0.35 * _gauss(wavelength, 762, 4),
        ]
    )
    return np.clip(np.maximum(windows, lines), 0, 1).astype(np.float32)


def snr(wavelength: np.ndarray, snr_vnir: float, snr_swir: float, snr_absorbed: float) -> np.ndarray:
    """EnMAP-like SNR at reference reflectance: best in the visible red, falling through the SWIR."""
    vnir = snr_vnir * (0.55 + 0.45 * _gauss(wavelength, 620, 260))
    swir = snr_swir * (1.0 - 0.4 * np.clip((wavelength - 1000) / 1450, 0, 1))
    base = np.where(wavelength < 1000, vnir, swir)
    absorbed = atmospheric_absorption(wavelength)
    return (base * (1 - absorbed) + snr_absorbed * absorbed).astype(np.float32)


def surface_reflectance(
    lib: SurfaceLibrary,
    *,
    soil_a: np.ndarray,
    soil_b: np.ndarray,
    soil_mix: np.ndarray,
    salt: np.ndarray,
    salt_composition: np.ndarray,
    moisture: np.ndarray,
    green: np.ndarray,
    npv: np.ndarray,
    saltbush_share: np.ndarray,
    cropped: np.ndarray,
    npv_kind: np.ndarray,
) -> np.ndarray:
    """Top-of-canopy reflectance [n, n_bands] (float32) of n pixels given their surface state.

    Soil grains of two soils and salt crystals mix intimately (in albedo); moisture darkens the
    ground; canopy, litter and ground mix areally.
    """
    f = salt[:, None]
    albedo = np.take(lib.soils_albedo, soil_a, axis=0)
    albedo *= soil_mix[:, None] * (1 - f)
    other = np.take(lib.soils_albedo, soil_b, axis=0)
    other *= (1 - soil_mix[:, None]) * (1 - f)
    albedo += other
    albedo += (salt_composition * f) @ lib.salts_albedo
    ground = from_albedo(albedo)
    np.multiply(moisture[:, None], -moisture_coefficient(lib.bands.wavelength)[None, :], out=other)
    ground *= np.exp(other, out=other)
    ground *= (1 - green - npv)[:, None]
    # Canopy and litter cover: one product of per-pixel cover weights and the cover spectra.
    names = lib.green_names
    native = np.mean([lib.green[names.index(n)] for n in GREEN_NATIVE], axis=0)
    spectra = np.vstack(
        [
            native,
            lib.green[names.index(GREEN_HALOPHYTE)] - native,
            lib.green[names.index(GREEN_CROP)] - native,  # crops replace the native canopy
            lib.npv,
        ]
    ).astype(np.float32)
    weights = np.zeros((green.size, spectra.shape[0]), np.float32)
    weights[:, 0] = green
    weights[:, 1] = green * saltbush_share
    weights[:, 2] = green * cropped
    weights[np.arange(green.size), 3 + npv_kind] = npv
    ground += weights @ spectra
    return ground
