"""The soil survey of the world, the way SSURGO describes land: map units, components, horizons.

A soil surveyor delineates polygons on air photos and by landscape position (low ground, texture,
visible salt symptoms), groups polygons that look alike into map units that recur across the
landscape (one ``mukey``), and describes each map unit by a few components (``comppct_r``), each
with horizons carrying representative values (``ec_r``, ``sandtotal_r``, ``claytotal_r``).

A representative value comes from a few pedons per component, so it is biased per component and
says nothing about where inside a polygon the salt sits: one value stands for hundreds of pixels.
That coarseness and that bias are what the survey-map baseline and the student's noisy survey
labels carry (see the survey settings in :mod:`deepsalt.synth.config` for the sizes and errors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.cluster.vq import kmeans2

from deepsalt.synth.config import SynthConfig
from deepsalt.synth.fields import gaussian_field
from deepsalt.synth.world import PIXEL_M, World, component_rng

# Surveys describe 0–152 cm (60 in); the lab samples and the survey ECe the model sees are 0–30 cm.
PROFILE_BOTTOM_CM = 152
SAMPLE_TOP_CM, SAMPLE_BOTTOM_CM = 0, 30
WATER_MUKEY_NAME = "Water"


@dataclass(frozen=True)
class Survey:
    """The survey on the world's grid and its SSURGO tables (column names as SSURGO's)."""

    mukey: np.ndarray  # int64 (rows, cols): map-unit key of every pixel
    mapunit: pd.DataFrame  # mukey, musym, muname, mukind
    component: pd.DataFrame  # cokey, mukey, compname, comppct_r, majcompflag
    chorizon: pd.DataFrame  # chkey, cokey, hzname, hzdept_r, hzdepb_r, sandtotal_r, claytotal_r, ec_r


def _voronoi_cells(rng: np.random.Generator, shape: tuple[int, int], cell_px: float) -> np.ndarray:
    """Cells of about ``cell_px`` pixels: the raw polygons before they are grouped into map units."""
    h, w = shape
    n = max(2, round(h * w / cell_px))
    seeds = rng.choice(h * w, n, replace=False)
    marks = np.zeros(shape, np.int32)
    marks.flat[seeds] = np.arange(1, n + 1)
    _, (rows, cols) = ndimage.distance_transform_edt(marks == 0, return_indices=True)
    return marks[rows, cols] - 1


def _surveyor_view(config: SynthConfig, world: World, rng: np.random.Generator) -> list[np.ndarray]:
    """What a surveyor delineates on: landscape position, texture, climate, fields, salt symptoms.

    Salt symptoms (crusts, halophytes, bare patches on air photos) show the salinity only blurred
    and partly: a smoothed log-ECe plus an error field.
    """
    lowness = (world.elevation.mean() - world.elevation) / world.elevation.std()
    aridity = 0.18 * (world.climate["tmax"] - 27.0) - 0.07 * (world.climate["pmean"] - 20.0)
    salinity = ndimage.gaussian_filter(np.log1p(np.nan_to_num(world.ece)), 4.0)
    salinity += config.survey.symptom_error * gaussian_field(rng, world.shape, 20.0)
    return [
        ndimage.gaussian_filter(lowness, 5.0),
        ndimage.gaussian_filter(world.clay, 5.0),
        ndimage.gaussian_filter(aridity, 5.0),
        ndimage.gaussian_filter(world.irrigated.astype(np.float32), 3.0),
        salinity,
    ]


def _map_units(config: SynthConfig, world: World, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(map-unit index per pixel, the surveyor's salinity view): similar polygons share a map unit."""
    cell_px = config.survey.polygon_ha * 1e4 / PIXEL_M**2
    cells = _voronoi_cells(rng, world.shape, cell_px)
    view = _surveyor_view(config, world, rng)
    index = np.arange(cells.max() + 1)
    features = np.column_stack([ndimage.mean(v, cells, index) for v in view])
    features = (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-9)
    features[:, -1] *= 1.5  # salt symptoms weigh most where a salinity survey is the purpose
    _, unit_of_cell = kmeans2(features, config.survey.n_map_units, seed=rng, minit="++")
    land_units = unit_of_cell[cells]
    return np.where(world.water, -1, land_units), view[-1]


def _depth_profile(rng: np.random.Generator, value_0_30: float, trend: tuple[float, float], depths) -> list:
    """Horizon values whose 0–30 cm thickness-weighted mean is ``value_0_30`` (before rounding)."""
    a = depths[0][1]
    k1 = rng.uniform(*trend)
    k2 = rng.uniform(*trend)
    top = value_0_30 * (SAMPLE_BOTTOM_CM - SAMPLE_TOP_CM) / (a + k1 * (SAMPLE_BOTTOM_CM - a))
    return [top, top * k1, top * k1 * k2]


def _horizon_depths(rng: np.random.Generator) -> list[tuple[int, int]]:
    a = int(rng.choice([8, 10, 13, 15, 18, 20, 23, 25]))
    b = int(rng.choice([46, 51, 56, 61, 66, 71, 76, 89]))
    return [(0, a), (a, b), (b, PROFILE_BOTTOM_CM)]


def build_survey(config: SynthConfig, world: World) -> Survey:
    """Map units, components and horizons of the world (deterministic in config and seed)."""
    rng = component_rng(config, "survey")
    settings = config.survey
    unit, view = _map_units(config, world, rng)
    key0 = int(rng.integers(400_000, 2_000_000)) * 10
    ece = np.nan_to_num(world.ece)
    mapunits, components, horizons = [], [], []
    mukey = np.zeros(world.shape, np.int64)
    for u in range(settings.n_map_units):
        inside = unit == u
        n_px = int(inside.sum())
        if n_px == 0:
            continue
        key = key0 + u
        mukey[inside] = key
        # Components: the typical soil and the salt-affected inclusion the surveyor saw.
        cut = np.quantile(view[inside], rng.uniform(*settings.inclusion_quantile))
        parts = [inside & (view <= cut), inside & (view > cut)]
        shares = np.array([p.sum() for p in parts], float) / n_px
        pct = np.maximum(np.round(shares * 100 / 5) * 5, 5).astype(int)
        no_data_minor = rng.random() < settings.minor_without_data
        if no_data_minor:  # e.g. a rock outcrop or an unnamed minor soil without horizon data
            pct[int(np.argmax(pct))] -= 5
        for c, part in enumerate(parts):
            if not part.any():
                continue
            cokey = f"{key}:{c + 1}"
            components.append(
                {
                    "cokey": cokey,
                    "mukey": key,
                    "compname": f"Series{u:03d}{'ABC'[c]}",
                    "comppct_r": int(pct[c]),
                    "majcompflag": "Yes" if pct[c] >= 15 else "No",
                }
            )
            # A few pedons stand for the component; the representative value is their geometric
            # mean, with the surveyor's bias on top.
            pedons = rng.choice(np.flatnonzero(part), size=min(settings.pedons, int(part.sum())))
            ece_0_30 = float(
                np.expm1(np.log1p(ece.flat[pedons]).mean()) * np.exp(rng.normal(0, settings.ece_bias))
            )
            sand_0_30 = float(world.sand.flat[pedons].mean() + rng.normal(0, settings.texture_bias))
            clay_0_30 = float(world.clay.flat[pedons].mean() + rng.normal(0, settings.texture_bias))
            depths = _horizon_depths(rng)
            ece_h = _depth_profile(rng, ece_0_30, (0.95, 1.6), depths)  # salts accumulate at depth
            clay_h = _depth_profile(rng, clay_0_30, (1.0, 1.25), depths)  # clay illuviation
            for h, ((top, bottom), hz) in enumerate(zip(depths, ("A", "Bw", "C"), strict=True)):
                clay = float(np.clip(clay_h[h], 1.0, 80.0))
                horizons.append(
                    {
                        "chkey": f"{cokey}:{h + 1}",
                        "cokey": cokey,
                        "hzname": hz,
                        "hzdept_r": top,
                        "hzdepb_r": bottom,
                        "sandtotal_r": round(float(np.clip(sand_0_30 - (clay - clay_0_30), 1.0, 98.0)), 1),
                        "claytotal_r": round(clay, 1),
                        "ec_r": round(max(ece_h[h], 0.0), 1),
                    }
                )
        if no_data_minor:
            components.append(
                {
                    "cokey": f"{key}:9",
                    "mukey": key,
                    "compname": "Rock outcrop",
                    "comppct_r": 5,
                    "majcompflag": "No",
                }
            )
        mapunits.append(
            {
                "mukey": key,
                "musym": f"{chr(65 + u % 26)}{chr(97 + (u // 26) % 26)}",
                "muname": f"Series{u:03d} complex, 0 to 2 percent slopes",
                "mukind": "Complex" if len(parts) > 1 else "Consociation",
            }
        )
    water_key = key0 + settings.n_map_units
    if world.water.any():
        mukey[world.water] = water_key
        mapunits.append(
            {"mukey": water_key, "musym": "W", "muname": WATER_MUKEY_NAME, "mukind": "Consociation"}
        )
        components.append(
            {
                "cokey": f"{water_key}:1",
                "mukey": water_key,
                "compname": "Water",
                "comppct_r": 100,
                "majcompflag": "Yes",
            }
        )
    return Survey(mukey, pd.DataFrame(mapunits), pd.DataFrame(components), pd.DataFrame(horizons))
