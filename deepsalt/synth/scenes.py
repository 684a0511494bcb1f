"""EnMAP L2A scenes over the world: footprints, acquisition conditions, clouds and pixels.

Each scene is a window of the region's 30 m grid (same CRS and pixel alignment, as DLR grids
scenes in the UTM zone of the scene centre). The swath is tilted against the grid, which leaves
nodata wedges in the corners; some scenes carry clouds with haze edges and shadows. The ground is
the same world in every scene; what changes between acquisitions is the sun, the atmosphere's
residuals, the surface moisture, the salt crusts' extent and the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from deepsalt.spectra import ENMAP_NODATA, REFLECTANCE_SCALE
from deepsalt.synth.config import SynthConfig
from deepsalt.synth.fields import gaussian_field
from deepsalt.synth.library import SurfaceLibrary
from deepsalt.synth.mixing import (
    REFERENCE_REFLECTANCE,
    atmospheric_absorption,
    snr,
    surface_reflectance,
)
from deepsalt.synth.world import World, component_rng

# Blocks of a few MB stay in the allocator's heap: no page faults on every temporary array.
PIXELS_PER_BLOCK = 4096
CLASS_BACKGROUND, CLASS_LAND, CLASS_WATER = 0, 1, 2
QUALITY_LAYERS = ("CLOUD", "CLOUDSHADOW", "HAZE", "CIRRUS", "SNOW", "CLASSES")


@dataclass(frozen=True)
class ScenePlan:
    """Where a scene lies in the region grid and under which conditions it was taken."""

    id: str
    index: int
    row0: int
    col0: int
    shape: tuple[int, int]
    acquired: datetime
    processed: datetime
    sun_elevation: float
    sun_azimuth: float
    cloud_fraction: float
    moisture_offset: float
    crust_factor: float
    brightness: float
    aerosol: float
    water_vapour_error: float


@dataclass(frozen=True)
class SceneRaster:
    """A rendered scene: stored values and quality layers, plus summary statistics."""

    plan: ScenePlan
    data: np.ndarray  # int16 [bands, rows, cols], reflectance × 10000, ENMAP_NODATA outside swath
    quality: dict[str, np.ndarray]  # uint8 [rows, cols] per QUALITY_LAYERS
    cover: dict[str, float]  # percent of valid pixels: cloud, haze, cloud_shadow, water


def _offsets(n: int, region: int, scene: int) -> list[int]:
    return [round(v) for v in np.linspace(0, region - scene, n)] if n > 1 else [(region - scene) // 2]


def plan_scenes(config: SynthConfig) -> list[ScenePlan]:
    """Overlapping footprints on a near-square layout, with acquisitions about two weeks apart."""
    n = config.n_scenes
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    (h, w), (sh, sw) = config.region_shape, config.scene_shape
    row_offsets = _offsets(rows, h, sh)
    rng = component_rng(config, "scene-plan")
    datatake = int(rng.integers(20_000, 90_000))
    start = datetime.fromisoformat(config.world.start_date)
    plans = []
    for k in range(n):
        r, c = divmod(k, cols)
        in_row = min(cols, n - r * cols)
        acquired = start + timedelta(
            days=int(k * 13 + rng.integers(0, 5)), hours=18, seconds=int(rng.integers(0, 3600))
        )
        processed = acquired + timedelta(days=1, seconds=int(rng.integers(0, 40_000)))
        scene_id = (
            f"ENMAP01-____L2A-DT{datatake + 37 * k:010d}_{acquired:%Y%m%dT%H%M%S}Z_001_V010402_"
            f"{processed:%Y%m%dT%H%M%S}Z"
        )
        clouds = 0.0 if k == 0 else float(np.clip(rng.uniform(0, 2 * config.cloud_fraction), 0, 0.8))
        plans.append(
            ScenePlan(
                id=scene_id,
                index=k,
                row0=row_offsets[r],
                col0=_offsets(in_row, w, sw)[c],
                shape=(sh, sw),
                acquired=acquired,
                processed=processed,
                sun_elevation=float(rng.uniform(52, 68)),
                sun_azimuth=float(rng.uniform(125, 150)),
                cloud_fraction=clouds,
                moisture_offset=float(rng.uniform(-0.02, 0.04)),
                crust_factor=float(rng.uniform(0.75, 1.25)),
                brightness=float(rng.normal(1.0, 0.03)),
                aerosol=float(rng.uniform(0.0, 0.012)),
                water_vapour_error=float(rng.uniform(0.01, 0.05)),
            )
        )
    return plans


def swath_mask(shape: tuple[int, int], tilt_deg: float) -> np.ndarray:
    """True inside the tilted swath: a rectangle rotated by ``tilt_deg`` within the scene box."""
    h, w = shape
    theta = math.radians(tilt_deg)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y -= (h - 1) / 2
    x -= (w - 1) / 2
    u = x * math.cos(theta) + y * math.sin(theta)
    v = -x * math.sin(theta) + y * math.cos(theta)
    return (np.abs(u) <= 0.5 * w * math.cos(theta)) & (np.abs(v) <= 0.5 * h * math.cos(theta))


def cloud_layers(rng: np.random.Generator, shape: tuple[int, int], fraction: float, sun_azimuth: float):
    """(opacity 0..1, cloud, haze, shadow) masks; ``fraction`` of the pixels are cloudy."""
    if fraction <= 0:
        zeros = np.zeros(shape, bool)
        return np.zeros(shape, np.float32), zeros, zeros, zeros
    texture = gaussian_field(rng, shape, 18) + 0.35 * gaussian_field(rng, shape, 4)
    threshold = np.quantile(texture, 1 - fraction)
    opacity = np.clip((texture - threshold) / 0.6 + 0.5, 0, 1).astype(np.float32)
    cloud = opacity >= 0.5
    haze = (opacity > 0.05) & ~cloud
    # Shadows fall away from the sun, displaced by the cloud height (≈ 12 pixels here).
    dy = round(12 * math.cos(math.radians(sun_azimuth)))
    dx = round(-12 * math.sin(math.radians(sun_azimuth)))
    shadow = np.roll(cloud, (-dy, dx), axis=(0, 1)) & ~cloud
    return opacity, cloud, haze, shadow


def _cloud_spectrum(wavelength: np.ndarray) -> np.ndarray:
    """Bright, nearly white cloud top, darker in the SWIR ice/water absorptions."""
    dip = 0.25 / (1 + np.exp(-(wavelength - 1400) / 120))
    return (0.78 - dip - 0.1 * np.exp(-0.5 * ((wavelength - 2000) / 80) ** 2)).astype(np.float32)


def _illumination(world: World, plan: ScenePlan, window: tuple[slice, slice]) -> np.ndarray:
    """cos(incidence)/cos(zenith) on the terrain (Lambertian), times the scene's brightness."""
    dzdy, dzdx = np.gradient(world.elevation[window], 30.0)
    zenith = math.radians(90 - plan.sun_elevation)
    azimuth = math.radians(plan.sun_azimuth)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(-dzdx, dzdy)
    cos_i = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(azimuth - aspect)
    return (plan.brightness * cos_i / math.cos(zenith)).astype(np.float32)


def render_scene(config: SynthConfig, world: World, lib: SurfaceLibrary, plan: ScenePlan) -> SceneRaster:
    """Stored int16 values and quality layers of one scene (vectorised over row blocks)."""
    rng = component_rng(config, "scene", plan.index)
    h, w = plan.shape
    window = (slice(plan.row0, plan.row0 + h), slice(plan.col0, plan.col0 + w))
    wavelength = lib.bands.wavelength
    n_bands = lib.bands.n_bands
    valid = swath_mask(plan.shape, config.swath_tilt_deg)
    opacity, cloud, haze, shadow = cloud_layers(rng, plan.shape, plan.cloud_fraction, plan.sun_azimuth)
    water = world.water[window]
    illumination = _illumination(world, plan, window) * np.where(shadow, 0.3, 1.0).astype(np.float32)
    aerosol = plan.aerosol * (1 + 0.5 * gaussian_field(rng, plan.shape, 40))
    vapour = plan.water_vapour_error * gaussian_field(rng, plan.shape, 30)
    crusts = plan.crust_factor * np.exp(0.3 * gaussian_field(rng, plan.shape, 25) - 0.045)
    # Growth stage and watering differ from field to field and from date to date.
    growth = np.exp(0.3 * gaussian_field(rng, plan.shape, 8) - 0.045)
    watered = 0.08 * world.irrigated[window] * (gaussian_field(rng, plan.shape, 8) > 0.6)
    aerosol_shape = ((wavelength / 500.0) ** -3.0).astype(np.float32)
    vapour_shape = atmospheric_absorption(wavelength)
    noise_sd = np.sqrt(REFERENCE_REFLECTANCE) / snr(
        wavelength, config.snr_vnir, config.snr_swir, config.snr_water_vapour
    )
    cloud_spectrum = _cloud_spectrum(wavelength)
    water_spectrum = lib.water[0]

    # Per-pixel state of this acquisition, flattened to (rows * cols,).
    state = {
        name: getattr(world, name)[window].reshape(-1)
        for name in ("soil_a", "soil_b", "soil_mix", "npv", "saltbush_share", "cropped", "npv_kind")
    }
    state["salt_composition"] = world.salt_compositions[world.salt_unit[window].reshape(-1)]
    state["salt"] = np.clip(world.salt[window] * crusts, 0, 0.95).reshape(-1)
    state["moisture"] = np.clip(world.moisture[window] + plan.moisture_offset + watered, 0, 0.45).reshape(-1)
    state["green"] = np.clip(world.green[window] * growth, 0, 1 - world.npv[window]).reshape(-1)
    flat = {
        name: a.reshape(-1)
        for name, a in (
            ("water", water),
            ("illumination", illumination),
            ("aerosol", aerosol),
            ("vapour", vapour),
            ("opacity", opacity),
            ("valid", valid),
        )
    }

    data = np.empty((n_bands, h, w), dtype=np.int16)
    block_rows = max(1, PIXELS_PER_BLOCK // w)
    for r0 in range(0, h, block_rows):
        r1 = min(r0 + block_rows, h)
        block = slice(r0 * w, r1 * w)
        refl = surface_reflectance(lib, **{name: a[block] for name, a in state.items()})
        wet = np.flatnonzero(flat["water"][block])
        refl[wet] = water_spectrum[None, :] * (0.8 + 0.4 * state["soil_mix"][block][wet, None])
        refl *= flat["illumination"][block, None]
        work = np.multiply(flat["aerosol"][block, None], aerosol_shape[None, :])
        refl += work
        np.multiply(flat["vapour"][block, None], vapour_shape[None, :], out=work)
        work += 1
        refl *= work
        opacity_block = flat["opacity"][block]
        cloudy = np.flatnonzero(opacity_block > 0)
        t = opacity_block[cloudy, None]
        refl[cloudy] = refl[cloudy] * (1 - t) + t * cloud_spectrum[None, :]
        # Shot-noise-like: the noise grows with the square root of the signal.
        np.sqrt(np.maximum(refl, 0.005, out=work), out=work)
        work *= noise_sd[None, :]
        work *= rng.standard_normal(refl.shape, dtype=np.float32)
        refl += work
        refl *= REFLECTANCE_SCALE
        stored = np.clip(np.rint(refl, out=refl), -2000, 20000, out=refl).astype(np.int16)
        stored[~flat["valid"][block]] = ENMAP_NODATA
        data[:, r0:r1, :] = stored.T.reshape(n_bands, r1 - r0, w)

    classes = np.where(valid, np.where(water, CLASS_WATER, CLASS_LAND), CLASS_BACKGROUND).astype(np.uint8)
    zeros = np.zeros(plan.shape, np.uint8)
    quality = {
        "CLOUD": (cloud & valid).astype(np.uint8),
        "CLOUDSHADOW": (shadow & valid).astype(np.uint8),
        "HAZE": (haze & valid).astype(np.uint8),
        "CIRRUS": zeros,
        "SNOW": zeros,
        "CLASSES": classes,
    }
    n_valid = max(int(valid.sum()), 1)
    cover = {
        "cloud": 100.0 * float((cloud & valid).sum()) / n_valid,
        "haze": 100.0 * float((haze & valid).sum()) / n_valid,
        "cloud_shadow": 100.0 * float((shadow & valid).sum()) / n_valid,
        "water": 100.0 * float((water & valid).sum()) / n_valid,
    }
    return SceneRaster(plan=plan, data=data, quality=quality, cover=cover)
