"""Soil texture and climate classes of each sample, from its covariates.

Texture: the USDA texture triangle from sand and clay (silt = 100 − sand − clay), coarsened into
four classes, because twelve classes leave most cells with too few samples to score. Climate: the
De Martonne aridity index ``P / (T + 10)`` (P annual precipitation in mm, T mean annual
temperature in °C), which needs only the covariates we carry (Thornthwaite/Penman PET would need
day length or radiation).
"""

from __future__ import annotations

import numpy as np

from deepsalt.io.covariates import COVARIATE_NAMES

TEXTURE_GROUPS = {
    "coarse": ("sand", "loamy sand", "sandy loam"),
    "medium": ("loam", "silt loam", "silt"),
    "moderately fine": ("sandy clay loam", "clay loam", "silty clay loam"),
    "fine": ("sandy clay", "silty clay", "clay"),
}
TEXTURE_ORDER = tuple(TEXTURE_GROUPS)
CLIMATE_EDGES = (10.0, 20.0, 30.0)
CLIMATE_ORDER = ("arid", "semi-arid", "sub-humid", "humid")


def usda_texture(sand, clay) -> np.ndarray:
    """USDA texture class names (percent by mass; silt is the remainder)."""
    sand = np.asarray(sand, dtype=float)
    clay = np.asarray(clay, dtype=float)
    if np.any(~np.isfinite(sand) | ~np.isfinite(clay)):
        raise ValueError("sand and clay must be finite")
    if np.any((sand < 0) | (clay < 0) | (sand + clay > 100 + 1e-6)):
        raise ValueError("sand and clay must be percentages with sand + clay ≤ 100")
    silt = 100.0 - sand - clay
    rules = [  # checked in order; the first match wins (boundaries follow the USDA Soil Survey Manual)
        ("clay", (clay >= 40) & (silt < 40) & (sand <= 45)),
        ("silty clay", (clay >= 40) & (silt >= 40)),
        ("sandy clay", (clay >= 35) & (sand > 45)),
        ("silty clay loam", (clay >= 27) & (clay < 40) & (sand <= 20)),
        ("clay loam", (clay >= 27) & (clay < 40) & (sand > 20) & (sand <= 45)),
        ("sandy clay loam", (clay >= 20) & (clay < 35) & (silt < 28) & (sand > 45)),
        ("silt", (silt >= 80) & (clay < 12)),
        (
            "silt loam",
            ((silt >= 50) & (clay >= 12) & (clay < 27)) | ((silt >= 50) & (silt < 80) & (clay < 12)),
        ),
        ("sand", silt + 1.5 * clay < 15),
        ("loamy sand", (silt + 1.5 * clay >= 15) & (silt + 2 * clay < 30)),
        ("loam", (clay >= 7) & (clay < 27) & (silt >= 28) & (silt < 50) & (sand <= 52)),
    ]
    out = np.full(sand.shape, "sandy loam", dtype=object)  # what remains of the triangle
    undecided = np.ones(sand.shape, dtype=bool)
    for name, mask in rules:
        out[undecided & mask] = name
        undecided &= ~mask
    return out


def texture_group(sand, clay) -> np.ndarray:
    """Coarsened texture class (coarse, medium, moderately fine, fine)."""
    lookup = {name: group for group, names in TEXTURE_GROUPS.items() for name in names}
    return np.asarray([lookup[name] for name in np.ravel(usda_texture(sand, clay))], dtype=object).reshape(
        np.shape(sand)
    )


def aridity_index(tmean, pmean) -> np.ndarray:
    """De Martonne index from mean monthly temperature (°C) and precipitation (mm/month)."""
    t = np.asarray(tmean, dtype=float)
    p = np.asarray(pmean, dtype=float)
    if np.any(t <= -10):
        raise ValueError("De Martonne aridity needs mean annual temperature above −10 °C")
    return 12.0 * p / (t + 10.0)


def climate_class(tmean, pmean) -> np.ndarray:
    """Arid (< 10), semi-arid (10–20), sub-humid (20–30), humid (≥ 30) by De Martonne index."""
    idx = np.searchsorted(CLIMATE_EDGES, aridity_index(tmean, pmean), side="right")
    return np.asarray(CLIMATE_ORDER, dtype=object)[idx]


def sample_classes(covariates: np.ndarray) -> dict[str, np.ndarray]:
    """Texture and climate class per row of a covariate matrix in ``COVARIATE_NAMES`` order."""
    col = {name: covariates[:, i] for i, name in enumerate(COVARIATE_NAMES)}
    return {
        "texture": texture_group(col["sand"], col["clay"]),
        "climate": climate_class(col["tmean"], col["pmean"]),
    }
