"""The synthetic world on its 30 m grid: terrain, climate, texture, salinity and surface state.

Salinity (ECe) is driven the way it is in the field: aridity (heat, little rain), fine texture,
low-lying ground where water and salts collect, and irrigated fields (some cropped, some fallow
and salinised), plus spatially correlated noise. The surface state seen from orbit follows from
it: salt efflorescence grows with ECe, vegetation suffers from it, saline ground stays moist.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import Transformer
from scipy.special import ndtr

from deepsalt.synth.config import SynthConfig
from deepsalt.synth.fields import gaussian_field, per_unit_uniform, unit_map

PIXEL_M = 30.0
ECE_MAX = 120.0


def component_rng(config: SynthConfig, component: str, index: int = 0) -> np.random.Generator:
    """Independent random stream per component, so changing one part never reshuffles another."""
    key = [config.seed, zlib.crc32(config.region.encode()), zlib.crc32(component.encode()), index]
    return np.random.default_rng(np.random.SeedSequence(key))


@dataclass(frozen=True)
class World:
    """Per-pixel state of the region (float32 arrays of ``shape`` unless noted)."""

    crs: str
    transform: Affine
    shape: tuple[int, int]
    elevation: np.ndarray
    climate: dict[str, np.ndarray]  # tmin, tmax, tmean (°C), pmin, pmax, pmean (mm/month)
    sand: np.ndarray
    clay: np.ndarray
    water: np.ndarray  # bool
    irrigated: np.ndarray  # bool: cropped or fallow irrigated field
    cropped: np.ndarray  # bool: irrigated and under a crop
    ece: np.ndarray  # dS/m, NaN on water
    green: np.ndarray  # fraction of green vegetation cover
    npv: np.ndarray  # fraction of dry vegetation / litter
    moisture: np.ndarray  # surface moisture (volumetric fraction)
    salt: np.ndarray  # salt mass fraction of the surface layer
    soil_a: np.ndarray  # int: index into the clay-ordered soil library
    soil_b: np.ndarray
    soil_mix: np.ndarray  # weight of soil_a
    salt_unit: np.ndarray  # int: index into salt_compositions
    salt_compositions: np.ndarray  # [n_units, n_salts], rows sum to 1
    saltbush_share: np.ndarray  # share of halophytes in the green cover
    npv_kind: np.ndarray  # int: which NPV spectrum


def region_grid(config: SynthConfig) -> tuple[str, Affine]:
    """CRS and transform of the 30 m grid centred on the world's centre, snapped to whole pixels."""
    crs = f"EPSG:{config.world.epsg}"
    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = to_grid.transform(*config.world.centre_lonlat)
    h, w = config.region_shape
    left = np.floor((x - w * PIXEL_M / 2) / PIXEL_M) * PIXEL_M
    top = np.ceil((y + h * PIXEL_M / 2) / PIXEL_M) * PIXEL_M
    return crs, Affine(PIXEL_M, 0.0, float(left), 0.0, -PIXEL_M, float(top))


def _ramp(shape: tuple[int, int], axis: int) -> np.ndarray:
    """-0.5 → 0.5 across the grid along ``axis`` (1: west→east, 0: south→north)."""
    n = shape[axis]
    ramp = np.linspace(-0.5, 0.5, n, dtype=np.float32)
    return np.broadcast_to(ramp[None, :] if axis == 1 else ramp[::-1, None], shape)


def _terrain(config: SynthConfig, shape: tuple[int, int]) -> np.ndarray:
    """Elevation (m): a tilted basin with hills, in ``relief_m`` of range."""
    rng = component_rng(config, "terrain")
    km = 1000.0 / PIXEL_M
    # The basin floor lies to the east (the warm, dry side); the ground rises to the north-west.
    tilt = -1.2 * _ramp(shape, 1) + 0.8 * _ramp(shape, 0)
    raw = tilt + 0.45 * gaussian_field(rng, shape, 4 * km) + 0.12 * gaussian_field(rng, shape, 0.5 * km)
    raw = (raw - raw.min()) / (raw.max() - raw.min())
    return (config.world.relief_m * raw).astype(np.float32)


def _climate(config: SynthConfig, elevation: np.ndarray) -> dict[str, np.ndarray]:
    """Temperature falls with height (6.5 °C/km) and rises eastward; rain rises northward and uphill."""
    w = config.world
    rng = component_rng(config, "climate")
    shape = elevation.shape
    km = 1000.0 / PIXEL_M
    lapse = -0.0065 * (elevation - elevation.mean())
    tmean = w.tmean_c + w.t_gradient_c * _ramp(shape, 1) + lapse + 0.2 * gaussian_field(rng, shape, 8 * km)
    tmax = tmean + w.t_half_range_c + 0.3 * gaussian_field(rng, shape, 6 * km)
    tmin = tmean - w.t_half_range_c + 0.3 * gaussian_field(rng, shape, 6 * km)
    relief_share = (elevation - elevation.mean()) / w.relief_m
    pmean = w.pmean_mm * (
        1 + w.p_gradient * _ramp(shape, 0) + 0.3 * relief_share + 0.05 * gaussian_field(rng, shape, 8 * km)
    )
    pmean = np.maximum(pmean, 1.0)
    pmax = pmean * (3.2 + 0.2 * gaussian_field(rng, shape, 8 * km))
    pmin = pmean * np.clip(0.08 + 0.03 * gaussian_field(rng, shape, 8 * km), 0.01, None)
    fields = {"tmin": tmin, "tmax": tmax, "tmean": tmean, "pmin": pmin, "pmax": pmax, "pmean": pmean}
    return {k: v.astype(np.float32) for k, v in fields.items()}


def _texture(config: SynthConfig, lowness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clay (%) settles in low ground; sand takes what silt leaves."""
    rng = component_rng(config, "texture")
    km = 1000.0 / PIXEL_M
    z = 0.75 * gaussian_field(rng, lowness.shape, 2 * km) + 0.4 * lowness
    clay = np.clip(config.world.clay_mean + config.world.clay_sd * z / 0.85, 3.0, 65.0)
    silt = np.clip(28.0 + 6.0 * gaussian_field(rng, lowness.shape, 3 * km), 10.0, 50.0)
    sand = np.clip(100.0 - clay - silt, 2.0, 95.0)
    return clay.astype(np.float32), sand.astype(np.float32)


def _fields_pattern(config: SynthConfig, lowness: np.ndarray, aridity: np.ndarray) -> tuple[np.ndarray, ...]:
    """Quarter-section fields (≈ 400 m) on the flat low ground: irrigated, and of those some fallow."""
    rng = component_rng(config, "irrigation")
    units = unit_map(rng, lowness.shape, 13)
    u = per_unit_uniform(rng, units)
    fallow_draw = per_unit_uniform(rng, units)
    # Fields are laid out where the ground is low and the climate dry enough to need water.
    suitability = ndtr(0.9 * lowness + 0.4 * aridity)
    irrigated = u < config.world.irrigated_fraction * 1.6 * suitability
    fallow = irrigated & (fallow_draw < 0.3)
    return irrigated, fallow


def _ece(
    config: SynthConfig,
    aridity: np.ndarray,
    clay: np.ndarray,
    lowness: np.ndarray,
    irrigated: np.ndarray,
    fallow: np.ndarray,
) -> np.ndarray:
    """Zero-inflated, heavy-tailed ECe (dS/m) from a latent salinity potential."""
    rng = component_rng(config, "salinity")
    shape = clay.shape
    km = 1000.0 / PIXEL_M
    latent = (
        -0.55
        + 0.8 * aridity
        + 0.045 * (clay - 25.0)
        + 0.55 * lowness
        + 0.4 * irrigated
        + 1.3 * fallow
        + 0.75 * gaussian_field(rng, shape, 0.6 * km)
        + 0.35 * gaussian_field(rng, shape, 3.0)
    )
    # Where the potential is below zero the soil is leached: a spike of low, non-saline values.
    base = 0.25 + 0.2 * ndtr(gaussian_field(rng, shape, 10.0))
    ece = base + np.maximum(np.exp(latent) - 1.0, 0.0)
    return np.minimum(ece, ECE_MAX).astype(np.float32)


def _aridity(climate: dict[str, np.ndarray]) -> np.ndarray:
    """Dimensionless aridity: hot summers and little rain; fixed reference so regions compare."""
    return (0.18 * (climate["tmax"] - 27.0) - 0.07 * (climate["pmean"] - 20.0)).astype(np.float32)


def build_world(config: SynthConfig, n_soils: int, salt_names: tuple[str, ...], n_npv: int) -> World:
    """Every per-pixel field of the region, deterministic in (config, seed)."""
    crs, transform = region_grid(config)
    shape = config.region_shape
    km = 1000.0 / PIXEL_M
    elevation = _terrain(config, shape)
    lowness = ((elevation.mean() - elevation) / elevation.std()).astype(np.float32)
    climate = _climate(config, elevation)
    clay, sand = _texture(config, lowness)
    aridity = _aridity(climate)
    # Lakes fill the lowest ground.
    water = (
        elevation < np.quantile(elevation, config.water_fraction)
        if config.water_fraction
        else np.zeros(shape, bool)
    )
    irrigated, fallow = _fields_pattern(config, lowness, aridity)
    irrigated &= ~water
    fallow &= ~water
    ece = _ece(config, aridity, clay, lowness, irrigated, fallow)

    rng = component_rng(config, "surface")
    cropped = irrigated & ~fallow
    stress = np.exp(-ece / 10.0)
    natural_green = 0.45 * ndtr(
        -0.6 + 0.06 * (climate["pmean"] - 20.0) + 0.6 * gaussian_field(rng, shape, 10)
    )
    green = np.where(cropped, 0.55 + 0.3 * ndtr(gaussian_field(rng, shape, 3)), natural_green) * stress
    npv = (0.08 + 0.2 * ndtr(gaussian_field(rng, shape, 6))) * (1.0 - green) + 0.1 * (1.0 - stress) * (
        1 - green
    )
    moisture = np.clip(
        0.04 + 0.03 * np.maximum(lowness, 0) + 0.12 * irrigated + 0.015 * np.sqrt(ece), 0.0, 0.4
    )
    patchiness = np.exp(0.5 * gaussian_field(rng, shape, 3) - 0.125)
    salt = config.salt_crust_max * ece / (ece + 25.0) * patchiness

    soil_q = 0.55 * ndtr((clay - config.world.clay_mean) / max(config.world.clay_sd, 1e-6))
    soil_a = np.clip(soil_q + 0.45 * per_unit_uniform(rng, unit_map(rng, shape, 9)), 0, 1) * (n_soils - 1)
    soil_b = np.clip(soil_q + 0.45 * per_unit_uniform(rng, unit_map(rng, shape, 14)), 0, 1) * (n_soils - 1)
    soil_mix = ndtr(1.5 * gaussian_field(rng, shape, 5))

    salt_unit = unit_map(rng, shape, int(0.6 * km))
    base = np.array([config.world.salt_composition.get(n, 0.0) for n in salt_names], dtype=np.float64)
    compositions = rng.dirichlet(20.0 * base / base.sum() + 1e-3, size=int(salt_unit.max()) + 1)

    f32 = np.float32
    return World(
        crs=crs,
        transform=transform,
        shape=shape,
        elevation=elevation,
        climate=climate,
        sand=sand,
        clay=clay,
        water=water,
        irrigated=irrigated,
        cropped=cropped,
        ece=np.where(water, np.nan, ece).astype(f32),
        green=np.where(water, 0, green).astype(f32),
        npv=np.where(water, 0, npv).astype(f32),
        moisture=moisture.astype(f32),
        salt=np.where(water, 0, salt).astype(f32),
        soil_a=soil_a.astype(np.int32),
        soil_b=soil_b.astype(np.int32),
        soil_mix=soil_mix.astype(f32),
        salt_unit=salt_unit.astype(np.int32),
        salt_compositions=compositions.astype(f32),
        saltbush_share=np.where(cropped, 0.0, ece / (ece + 8.0)).astype(f32),
        npv_kind=unit_map(rng, shape, 11, n_npv).astype(np.int32),
    )
