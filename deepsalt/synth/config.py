"""Settings of the demo-region generator: the size of the world, its climate and soils, its noise.

Two presets shape the defaults. ``size`` (small / medium / default) sets the grid, the scenes and
the number of lab samples; ``region`` picks a world (``demo``: the seen region, ``demo_unseen``:
hotter, drier, finer-textured, other soil and mineral pools). Any field given explicitly wins
over its preset.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from deepsalt.config import FrozenModel, StageConfig

SizeName = Literal["small", "medium", "default"]
# What the shipped libraries hold (deepsalt/data/SOURCES.md).
SALT_MINERALS = ("halite", "gypsum", "thenardite", "mirabilite", "bloedite", "epsomite", "trona", "calcite")
MIR_SOURCES = ("yamsys_BF", "yamsys_CI", "ossl_kssl")

SIZE_PRESETS: dict[str, dict[str, Any]] = {
    # ≈ 0.07 M scene pixels: tests and `deepsalt demo --quick`.
    "small": {
        "region_shape": (256, 256),
        "scene_shape": (150, 150),
        "n_scenes": 3,
        "n_samples": 150,
        "n_mir_only": 150,
        "n_library": 600,
    },
    "medium": {
        "region_shape": (640, 640),
        "scene_shape": (380, 380),
        "n_scenes": 4,
        "n_samples": 300,
        "n_mir_only": 600,
        "n_library": 2000,
    },
    # ≈ 1.5 M scene pixels over four overlapping scenes.
    "default": {
        "region_shape": (1024, 1024),
        "scene_shape": (620, 620),
        "n_scenes": 4,
        "n_samples": 400,
        "n_mir_only": 800,
        "n_library": 3000,
    },
}


class WorldConfig(FrozenModel):
    """Where the region lies and what its climate, soils and salts are like."""

    epsg: int = Field(description="projected CRS of the 30 m grid and the scenes")
    centre_lonlat: tuple[float, float]
    start_date: str = Field(description="ISO date of the first acquisition")
    tmean_c: float = Field(description="regional mean annual temperature (°C)")
    t_gradient_c: float = Field(description="west→east temperature rise across the region (°C)")
    t_half_range_c: float = Field(description="half the annual range: tmax = tmean + this (°C)")
    pmean_mm: float = Field(gt=0, description="regional mean monthly precipitation (mm/month)")
    p_gradient: float = Field(description="relative south→north precipitation change across the region")
    clay_mean: float = Field(gt=0, lt=100, description="mean clay content (%)")
    clay_sd: float = Field(ge=0, description="spatial standard deviation of clay (%)")
    relief_m: float = Field(gt=0, description="elevation range of the terrain (m)")
    irrigated_fraction: float = Field(ge=0, le=1, description="share of lowland fields under irrigation")
    soil_pool: Literal["africa_europe", "americas_asia"] = Field(description="ICRAF soil pool (VNIR)")
    mir_pool: tuple[str, ...] = Field(description="sources of the base lab MIR spectra")
    salt_composition: dict[str, float] = Field(description="relative abundance of each USGS salt mineral")
    sulfate_share: float = Field(ge=0, le=1, description="sulfate share of the salts seen in lab MIR")

    @field_validator("salt_composition")
    @classmethod
    def _known_salts(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SALT_MINERALS))
        if unknown:
            raise ValueError(f"unknown minerals {unknown}; the library holds {list(SALT_MINERALS)}")
        if any(v < 0 for v in value.values()) or sum(value.values()) <= 0:
            raise ValueError("abundances must be non-negative and not all zero")
        return value

    @field_validator("mir_pool")
    @classmethod
    def _known_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(MIR_SOURCES))
        if unknown or not value:
            raise ValueError(f"unknown MIR sources {unknown}; choose from {list(MIR_SOURCES)}")
        return value


WORLD_PRESETS: dict[str, dict[str, Any]] = {
    "demo": {
        "epsg": 32611,
        "centre_lonlat": (-120.35, 36.45),
        "start_date": "2024-06-03",
        "tmean_c": 17.0,
        "t_gradient_c": 2.5,
        "t_half_range_c": 10.0,
        "pmean_mm": 22.0,
        "p_gradient": 0.35,
        "clay_mean": 24.0,
        "clay_sd": 8.0,
        "relief_m": 80.0,
        "irrigated_fraction": 0.35,
        "soil_pool": "africa_europe",
        "mir_pool": ("yamsys_BF", "ossl_kssl"),
        "salt_composition": {
            "halite": 0.35,
            "gypsum": 0.25,
            "thenardite": 0.12,
            "mirabilite": 0.05,
            "bloedite": 0.06,
            "epsomite": 0.05,
            "trona": 0.02,
            "calcite": 0.10,
        },
        "sulfate_share": 0.55,
    },
    "demo_unseen": {
        "epsg": 5070,
        "centre_lonlat": (-104.30, 32.80),
        "start_date": "2024-08-19",
        "tmean_c": 19.5,
        "t_gradient_c": 2.0,
        "t_half_range_c": 12.0,
        "pmean_mm": 14.0,
        "p_gradient": 0.25,
        "clay_mean": 30.0,
        "clay_sd": 9.0,
        "relief_m": 60.0,
        "irrigated_fraction": 0.25,
        "soil_pool": "americas_asia",
        "mir_pool": ("yamsys_CI", "ossl_kssl"),
        "salt_composition": {
            "halite": 0.20,
            "gypsum": 0.40,
            "thenardite": 0.10,
            "mirabilite": 0.05,
            "bloedite": 0.05,
            "epsomite": 0.08,
            "trona": 0.02,
            "calcite": 0.10,
        },
        "sulfate_share": 0.75,
    },
}


class SurveySettings(FrozenModel):
    """The soil survey (SSURGO-style map units) over the region: how coarse and how biased it is.

    Figures: SSURGO is mapped at 1:12,000-1:63,360; at 1:24,000 the smallest delineation is a few
    hectares (USDA Soil Survey Manual, 2017, ch. 4) and valley-floor polygons of tens to hundreds
    of hectares are common, so 50 ha is our assumption for an irrigated basin. Representative
    values rest on a few pedons per component (Soil Survey Manual, ch. 4-5); their error is our
    assumption, chosen so that the survey map alone explains a good share, not all, of the variance
    of log1p(ECe) on the demo region's pixels (the survey-map baseline in ``results/demo/`` says how much).
    """

    polygon_ha: float = Field(50.0, gt=0.5, le=2000, description="mean size of a delineated polygon (ha)")
    n_map_units: int = Field(60, ge=2, le=2000, description="distinct map units (mukeys) in the region")
    symptom_error: float = Field(
        0.2, ge=0, description="error (log1p ECe) of the salt symptoms surveyors see"
    )
    inclusion_quantile: tuple[float, float] = Field(
        (0.65, 0.85), description="range of the major component's share of a map unit's salinity view"
    )
    pedons: int = Field(3, ge=1, le=50, description="pedons behind each component's representative value")
    ece_bias: float = Field(0.35, ge=0, description="log-sd of a component's ec_r error beyond its pedons")
    texture_bias: float = Field(3.0, ge=0, description="sd (%) of a component's sand/clay error")
    minor_without_data: float = Field(
        0.2, ge=0, le=1, description="share of map units with a 5 % minor component without horizon data"
    )


class SynthConfig(StageConfig):
    """Everything that decides the generated region; same config and seed ⇒ same bytes."""

    region: str = Field("demo", pattern=r"^[A-Za-z0-9_-]+$", description="folder name and world preset")
    seed: int = Field(0, ge=0)
    size: SizeName = "default"
    region_shape: tuple[int, int] = Field(description="rows, cols of the 30 m truth grid")
    scene_shape: tuple[int, int] = Field(description="rows, cols of each EnMAP scene")
    n_scenes: int = Field(ge=1, le=12)
    n_samples: int = Field(ge=20, le=5000, description="lab sample points with measured ECe")
    n_mir_only: int = Field(
        ge=0, le=20000, description="further sample points with a lab MIR spectrum but no measured ECe"
    )
    n_library: int = Field(
        ge=0, le=50000, description="lab library: MIR spectra with measured ECe from outside the imaged area"
    )
    covariate_resolution_deg: float = Field(0.005, gt=0, le=0.05, description="EPSG:4326 grid step")
    cloud_fraction: float = Field(0.08, ge=0, le=0.6, description="mean cloud cover over the scenes")
    swath_tilt_deg: float = Field(9.0, ge=0, le=30, description="swath rotation: nodata wedges")
    water_fraction: float = Field(0.015, ge=0, le=0.2, description="share of the region under water")
    snr_vnir: float = Field(400.0, gt=0, description="EnMAP VNIR SNR at reference reflectance 0.3")
    snr_swir: float = Field(180.0, gt=0, description="EnMAP SWIR SNR at reference reflectance 0.3")
    snr_water_vapour: float = Field(15.0, gt=0, description="SNR inside the water-vapour windows")
    salt_crust_max: float = Field(0.35, ge=0, le=1, description="pixel salt mass fraction as ECe → ∞")
    lab_salt_absorbance: float = Field(0.02, ge=0, description="MIR absorbance per dS/m of salinity")
    lab_noise: float = Field(0.003, ge=0, description="white absorbance noise of the lab spectra")
    sample_heterogeneity: float = Field(0.5, ge=0, description="log-sd of point vs 30 m pixel ECe")
    lab_ece_error: float = Field(0.08, ge=0, description="log-sd of the lab ECe measurement")
    survey: SurveySettings = SurveySettings()
    world: WorldConfig

    @model_validator(mode="before")
    @classmethod
    def _apply_presets(cls, data: Any) -> Any:
        """Fill unset grid fields from the size preset and the world from the region preset."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        size = data.get("size", "default")
        for key, value in SIZE_PRESETS.get(size, {}).items():
            data.setdefault(key, value)
        preset = WORLD_PRESETS.get(data.get("region", "demo"), WORLD_PRESETS["demo"])
        world = data.get("world") or {}
        if isinstance(world, dict):
            data["world"] = {**preset, **world}
        return data

    @model_validator(mode="after")
    def _scenes_fit(self) -> SynthConfig:
        if any(s > r for s, r in zip(self.scene_shape, self.region_shape, strict=True)):
            raise ValueError(f"scene_shape {self.scene_shape} larger than region_shape {self.region_shape}")
        return self
