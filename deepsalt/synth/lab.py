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

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr

from deepsalt.errors import ConfigError
from deepsalt.synth.config import WORLD_PRESETS, SynthConfig
from deepsalt.synth.library import MirLibrary
from deepsalt.synth.scenes import ScenePlan, swath_mask
from deepsalt.synth.world import World, build_world, component_rng

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


def place_samples(
    config: SynthConfig, world: World, eligible: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (row, col) of ``n`` samples: clustered, biased towards saline ground, on ``eligible`` land."""
    rng = component_rng(config, "sampling")
    candidates = np.flatnonzero(eligible & ~world.water)
    if candidates.size < n:
        raise ConfigError(
            "<synth config>",
            "n_samples",
            f"{n} samples but only {candidates.size} land pixels under the scenes",
        )
    centres = np.zeros(world.shape, np.float32)
    n_clusters = max(3, n // 12)
    centres.flat[rng.choice(candidates, n_clusters, replace=False)] = 1.0
    clusters = gaussian_filter(centres, sigma=12.0)
    clusters /= clusters.max()
    ece = np.nan_to_num(world.ece)
    weight = (0.15 + clusters.flat[candidates]) * (1 + np.minimum(ece.flat[candidates], 20.0) / 4)
    chosen = np.sort(rng.choice(candidates, n, replace=False, p=weight / weight.sum()))
    return np.divmod(chosen, world.shape[1])


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
    """Sample points under the scenes, their MIR spectra and, for ``n_samples`` of them, measured ECe.

    MIR spectra cost a few dollars a sample and saturated-paste ECe many times more, so a campaign
    scans every sample and sends a random subset to the wet lab; the other ``n_mir_only`` samples
    have a spectrum and no ECe (blank in the table).
    """
    samples = _samples_at(config, world, mir, coverage(config, plans), config.n_samples + config.n_mir_only)
    unmeasured = component_rng(config, "lab-subset").permutation(len(samples.ids))[: config.n_mir_only]
    ece = samples.ece.copy()
    ece[unmeasured] = np.nan
    return replace(samples, ece=ece)


def make_library(config: SynthConfig, mir_pools: dict[str, tuple[str, ...]]) -> LabSamples:
    """A lab library: samples with MIR and measured ECe from other landscapes, none under the scenes.

    National libraries hold tens of thousands of MIR spectra from every kind of landscape (KSSL);
    ECe was measured mostly where salinity was suspected. The library here draws its samples from
    neighbouring worlds of every climate preset (``mir_pools``: preset → its lab MIR sources), offset
    far enough that no sample lies in the region.
    """
    from deepsalt.synth.library import mir_library, surface_library

    parts = []
    presets = list(mir_pools)
    n_worlds = 2 * len(presets)
    for k in range(n_worlds):
        preset = presets[k % len(presets)]
        n = config.n_library // n_worlds + (k < config.n_library % n_worlds)
        if n == 0:
            continue
        lon, lat = WORLD_PRESETS[preset]["centre_lonlat"]
        sub = SynthConfig.model_validate(
            {
                "region": preset,
                "seed": config.seed * 1000 + 100 + k,
                "size": "small",
                "region_shape": (384, 384),
                "scene_shape": (128, 128),
                "n_samples": max(n, 20),
                "n_mir_only": 0,
                "n_library": 0,
                "world": {"centre_lonlat": (lon + 0.6 * (k + 1), lat - 0.4 * (k + 1))},
            }
        )
        lib = surface_library(sub.world.soil_pool)
        world = build_world(sub, len(lib.soils), lib.salt_names, len(lib.npv))
        samples = _samples_at(sub, world, mir_library(mir_pools[preset]), np.ones(world.shape, bool), n)
        parts.append(replace(samples, ids=[f"LIB-{config.seed}-{k}-{i:05d}" for i in range(n)]))
    return LabSamples(
        ids=[i for p in parts for i in p.ids],
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in ("row", "col", "lon", "lat", "ece_site", "ece", "absorbance")
        },
    )


def _samples_at(
    config: SynthConfig, world: World, mir: MirLibrary, eligible: np.ndarray, n: int
) -> LabSamples:
    """``n`` sample points on ``eligible`` land of ``world`` with measured ECe and MIR spectra."""
    rng = component_rng(config, "lab-values")
    row, col = place_samples(config, world, eligible, n)
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
            "ece": samples.ece,  # NaN (blank): a sample with a MIR spectrum but no ECe measurement
        }
    )
    spectra = pd.DataFrame(np.round(samples.absorbance, 5), columns=[f"{w:.3f}" for w in wavenumber])
    return pd.concat([meta, spectra], axis=1)
