"""Reflectance ⇄ single-scattering albedo (Hapke's isotropic approximation), for intimate mixtures.

Its own module because both the spectral library (which caches its endmembers' albedo) and the
mixing model (which mixes in albedo) need it, and neither should import the other for it.
"""

from __future__ import annotations

import numpy as np


def to_albedo(r: np.ndarray) -> np.ndarray:
    """Single-scattering albedo w of a reflectance r (Hapke, isotropic scatterers)."""
    r = np.clip(r, 1e-4, 0.999)
    gamma = (1 - r) / (1 + r)
    return (1 - gamma * gamma).astype(np.float32)


def from_albedo(w: np.ndarray) -> np.ndarray:
    """Reflectance of a particulate surface of single-scattering albedo w (inverse of to_albedo)."""
    gamma = np.sqrt(np.clip(1 - w, 0, 1, out=w), out=w)
    return np.divide(1 - gamma, 1 + gamma, out=gamma)
