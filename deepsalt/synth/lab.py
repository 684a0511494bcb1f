"""Lab samples: where the surveyors dug, what the lab measured, and the samples' MIR spectra.

Surveys cluster (along tracks, around known problem fields) and favour salt-affected ground.
A sample is a point, not a 30 m pixel: its salinity scatters around the pixel's. The lab's MIR
absorbance is a real soil spectrum (YAMSYS / OSSL-KSSL, chosen to match the site's texture) plus
the fundamental bands of what salinity brings: sulfate (gypsum/thenardite ν3 ≈ 1120-1150 cm⁻¹,
ν4 ≈ 600-670 cm⁻¹, crystal water at 3400/3550 and 1620/1685 cm⁻¹) and hygroscopic water held by
salts (broad 3400 cm⁻¹, 1640 cm⁻¹), in proportion to the salt content. Carbonate (calcite 2515,
1430, 875, 712 cm⁻¹) varies with the parent material, independently of salinity: a confounder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from deepsalt.errors import ConfigError
from deepsalt.synth.config import SynthConfig
from deepsalt.synth.library import MirLibrary
from deepsalt.synth.scenes import ScenePlan, swath_mask
from deepsalt.synth.world import World, component_rng

# (centre cm⁻¹, FWHM cm⁻¹, relative height) of each absorption family.
SULFATE_BANDS = (
    (1140, 90, 1.0),
    (1685, 22, 0.25),
    (1620, 22, 0.3),
    (3550, 60, 0.45),
    (3405, 80, 0.5),
    (670, 25, 0.35),
    (602, 25, 0.3),
)
WATER_BANDS = ((3400, 400, 0.6), (1640, 80, 0.25))
CARBONATE_BANDS = ((1430, 120, 1.0), (875, 15, 0.5), (712, 8, 0.25), (2515, 40, 0.15), (1795, 20, 0.1))
SAMPLE_DEPTH = "0-30"


@dataclass(frozen=True)
class LabSamples:
    """Sample points and their lab measurements."""

    ids: list[str]
    row: np.ndarray  # region-grid pixel of each sample
    col: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    ece_site: np.ndarray  # the sampled soil's true ECe (what the spectrum reflects)
    ece: np.ndarray  # lab-measured ECe (dS/m)
    absorbance: np.ndarray  # [n, n_wavenumbers]


def _profile(wavenumber: np.ndarray, bands) -> np.ndarray:
    sigma = np.array([fwhm for _, fwhm, _ in bands]) / 2.3548
    centre = np.array([c for c, _, _ in bands])
    height = np.array([h for _, _, h in bands])
    return (height * np.exp(-0.5 * ((wavenumber[:, None] - centre) / sigma) ** 2)).sum(axis=1)


def coverage(config: SynthConfig, plans: list[ScenePlan]) -> np.ndarray:
    """Region pixels inside at least one scene's swath."""
    covered = np.zeros(config.region_shape, bool)
    for plan in plans:
        h, w = plan.shape
        covered[plan.row0 : plan.row0 + h, plan.col0 : plan.col0 + w] |= swath_mask(
            plan.shape, config.swath_tilt_deg
        )
    return covered


def place_samples(config: SynthConfig, world: World, plans: list[ScenePlan]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (row, col) of each sample: clustered, biased towards saline ground, on covered land."""
    rng = component_rng(config, "sampling")
    eligible = coverage(config, plans) & ~world.water
    candidates = np.flatnonzero(eligible)
    if candidates.size < config.n_samples:
        raise ConfigError(
            "<synth config>",
            "n_samples",
            f"{config.n_samples} samples but only {candidates.size} land pixels under the scenes",
        )
    centres = np.zeros(config.region_shape, np.float32)
    n_clusters = max(3, config.n_samples // 12)
    centres.flat[rng.choice(candidates, n_clusters, replace=False)] = 1.0
    clusters = gaussian_filter(centres, sigma=12.0)
    clusters /= clusters.max()
    ece = np.nan_to_num(world.ece)
    weight = (0.15 + clusters.flat[candidates]) * (1 + np.minimum(ece.flat[candidates], 20.0) / 4)
    chosen = np.sort(rng.choice(candidates, config.n_samples, replace=False, p=weight / weight.sum()))
    return np.divmod(chosen, config.region_shape[1])


def mir_spectra(
    config: SynthConfig, world: World, mir: MirLibrary, row: np.ndarray, col: np.ndarray, ece_site: np.ndarray
) -> np.ndarray:
    """Absorbance [n, n_wavenumbers] of the samples (see the module docstring for the physics)."""
    rng = component_rng(config, "lab-mir")
    n = row.size
    n_base = mir.absorbance.shape[0]
    clay = world.clay[row, col]
    texture = 0.55 * ndtr((clay - config.world.clay_mean) / max(config.world.clay_sd, 1e-6))
    pick_a = np.clip(texture + 0.45 * rng.random(n), 0, 1) * (n_base - 1)
    pick_b = np.clip(texture + 0.45 * rng.random(n), 0, 1) * (n_base - 1)
    mix = rng.uniform(0.3, 0.7, n)[:, None]
    base = mix * mir.absorbance[pick_a.astype(int)] + (1 - mix) * mir.absorbance[pick_b.astype(int)]

    sulfate_share = rng.beta(
        12 * config.world.sulfate_share + 0.5, 12 * (1 - config.world.sulfate_share) + 0.5, n
    )
    salt = ece_site / (1 + ece_site / 200.0)  # absorbance saturates slowly in very saline samples
    carbonate = rng.gamma(1.5, 4.0, n)  # parent material, independent of salinity
    wn = mir.wavenumber
    features = config.lab_salt_absorbance * (
        (salt * sulfate_share)[:, None] * _profile(wn, SULFATE_BANDS)[None, :]
        + salt[:, None] * _profile(wn, WATER_BANDS)[None, :]
        + 0.5 * carbonate[:, None] * _profile(wn, CARBONATE_BANDS)[None, :]
    )
    scatter = rng.normal(1.0, 0.03, n)[:, None]
    offset = rng.normal(0.0, 0.02, n)[:, None]
    noise = rng.normal(0.0, config.lab_noise, base.shape)
    return ((base + features) * scatter + offset + noise).astype(np.float32)


def make_samples(config: SynthConfig, world: World, mir: MirLibrary, plans: list[ScenePlan]) -> LabSamples:
    """Sample points, their measured ECe and their MIR spectra."""
    rng = component_rng(config, "lab-values")
    row, col = place_samples(config, world, plans)
    n = row.size
    # A point inside the pixel, in the region CRS, then to lon/lat as a GPS would record it.
    x, y = world.transform @ (col + rng.random(n), row + rng.random(n))
    lon, lat = Transformer.from_crs(world.crs, "EPSG:4326", always_xy=True).transform(x, y)
    ece_site = world.ece[row, col] * np.exp(rng.normal(0, config.sample_heterogeneity, n))
    measured = ece_site * np.exp(rng.normal(0, config.lab_ece_error, n))
    prefix = f"{config.region.upper()}-S{config.seed}"
    return LabSamples(
        ids=[f"{prefix}-{i:04d}" for i in range(n)],
        row=row,
        col=col,
        lon=np.asarray(lon),
        lat=np.asarray(lat),
        ece_site=ece_site.astype(np.float32),
        ece=np.round(measured, 3),
        absorbance=mir_spectra(config, world, mir, row, col, ece_site),
    )


def lab_table(samples: LabSamples, wavenumber: np.ndarray) -> pd.DataFrame:
    """OSSL/KSSL-style table: id, lat, lon, depth, ece, then one column per wavenumber."""
    meta = pd.DataFrame(
        {
            "id": samples.ids,
            "lat": np.round(samples.lat, 6),
            "lon": np.round(samples.lon, 6),
            "depth": SAMPLE_DEPTH,
            "ece": samples.ece,
        }
    )
    spectra = pd.DataFrame(np.round(samples.absorbance, 5), columns=[f"{w:.3f}" for w in wavenumber])
    return pd.concat([meta, spectra], axis=1)
