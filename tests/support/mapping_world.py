"""A small mapping world for the mapping tests: DLR-layout scenes, STAC items, covariates, predictor.

Scenes are UTM 13N, the map grid is EPSG:5070, so every test run reprojects. Reflectance is a
smooth function of ground position; scene B is 0.05 brighter than scene A, so the predicted ECe
tells which scene a pixel came from. ``LinearPredictor`` satisfies the mapping's ``Predictor``
protocol with a transparent formula.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds

from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.predictor import ModelCard
from deepsalt.spectra import water_vapour_mask

SCENE_CRS = "EPSG:32613"
GRID_CRS = "EPSG:5070"
SIZE = 120  # scene pixels per side
WAVELENGTH = np.linspace(420.0, 2400.0, 24)
FWHM = np.full(WAVELENGTH.size, 12.0)
BRIGHTER_B = 0.05
WATER = (slice(80, 95), slice(80, 95))  # scene-A pixels that are water (same ground in B)
CLOUD = (slice(0, 30), slice(0, 30))  # cloudy pixels of scene A


@dataclass(frozen=True)
class SceneSpec:
    """Placement (offset in scene-A pixels), size, cloud cover, date and brightness of a scene."""

    dc: int
    dr: int
    cloud_cover: float
    when: str
    brightness: float = 0.0
    size: int = SIZE


SCENES = {
    "SCENE_A": SceneSpec(0, 0, 10.0, "2024-06-01T10:00:00Z"),
    "SCENE_B": SceneSpec(-20, 15, 30.0, "2024-07-01T10:00:00Z", BRIGHTER_B),
}
# Scenes for the bad-input tests, east of scene A and far enough apart to fall in separate tiles.
BAD_SCENES = {
    "SCENE_CORRUPT": SceneSpec(200, 10, 5.0, "2024-06-02T10:00:00Z", size=40),
    "SCENE_BANDS": SceneSpec(320, 10, 5.0, "2024-06-03T10:00:00Z", size=40),
    "SCENE_CRS": SceneSpec(440, 10, 5.0, "2024-06-04T10:00:00Z", size=40),
}
ENGINEERING_CRS = 'LOCAL_CS["site grid",UNIT["metre",1]]'
ORIGIN = (500_000.0, 4_200_000.0)
SAND = 40.0


def ground_reflectance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(bands, h, w) reflectance at UTM coordinates: smooth in space, gently sloped in wavelength."""
    base = 0.25 + 0.1 * np.sin(x / 900.0) * np.cos(y / 700.0)
    slope = np.linspace(0.0, 0.1, WAVELENGTH.size)[:, None, None]
    return (base[None] + slope).astype(np.float32)


# The student's band axis: the scene bands outside the water-vapour windows.
STUDENT_WAVELENGTH = WAVELENGTH[water_vapour_mask(WAVELENGTH)]


def expected_ece(x: np.ndarray, y: np.ndarray, brightness: float) -> np.ndarray:
    """What LinearPredictor gives for ground at UTM (x, y) seen by a scene ``brightness`` brighter."""
    usable = water_vapour_mask(WAVELENGTH)
    mean = ground_reflectance(np.atleast_2d(x), np.atleast_2d(y))[usable].mean(axis=0) + brightness
    return (10.0 * mean + 0.01 * SAND).reshape(np.shape(x))


def _write(path: Path, data: np.ndarray, crs: str, transform: Affine, nodata: float | None) -> None:
    profile = {
        "driver": "GTiff",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


@dataclass(frozen=True)
class World:
    root: Path
    items: list[dict[str, Any]]
    collection: dict[str, Any]
    covariates: Path
    student: Path
    region_bounds: tuple[float, float, float, float]

    def scene_file(self, scene_id: str, kind: str) -> Path:
        return self.root / "scenes" / scene_id / f"{scene_id}-{kind}.TIF"


def scene_transform(spec: SceneSpec) -> Affine:
    return Affine(30.0, 0.0, ORIGIN[0] + 30.0 * spec.dc, 0.0, -30.0, ORIGIN[1] - 30.0 * spec.dr)


def write_scene(
    root: Path, scene_id: str, spec: SceneSpec, n_bands: int | None = None, crs: str = SCENE_CRS
) -> dict[str, Any]:
    """Write a scene in DLR layout and return its STAC item (which always lists 24 bands)."""
    folder = root / "scenes" / scene_id
    folder.mkdir(parents=True, exist_ok=True)
    transform = scene_transform(spec)
    cols, rows = np.meshgrid(np.arange(spec.size) + 0.5, np.arange(spec.size) + 0.5)
    x, y = transform * (cols, rows)
    values = np.round((ground_reflectance(x, y) + spec.brightness) * 10000).astype(np.int16)
    _write(folder / f"{scene_id}-SPECTRAL_IMAGE.TIF", values[:n_bands], crs, transform, -32768)
    cloud = np.zeros((1, spec.size, spec.size), np.uint8)
    if scene_id == "SCENE_A":
        cloud[(0, *CLOUD)] = 1
    _write(folder / f"{scene_id}-QL_QUALITY_CLOUD.TIF", cloud, crs, transform, None)
    classes = np.ones((1, spec.size, spec.size), np.uint8)
    classes[
        0,
        WATER[0].start - spec.dr : WATER[0].stop - spec.dr,
        WATER[1].start - spec.dc : WATER[1].stop - spec.dc,
    ] = 2
    _write(folder / f"{scene_id}-QL_QUALITY_CLASSES.TIF", classes, crs, transform, None)
    left, top = transform * (0, 0)
    right, bottom = transform * (spec.size, spec.size)
    bbox = transform_bounds(SCENE_CRS, "EPSG:4326", left, bottom, right, top)
    w, s, e, n = bbox
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": scene_id,
        "collection": "ENMAP_HSI_L2A",
        "bbox": list(bbox),
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {"datetime": spec.when, "eo:cloud_cover": spec.cloud_cover, "proj:epsg": 32613},
        "links": [],
        "assets": {
            "SPECTRAL_IMAGE": {
                "href": str(folder / f"{scene_id}-SPECTRAL_IMAGE.TIF"),
                "type": "image/tiff; application=geotiff",
                "eo:bands": [
                    {"name": f"B{i + 1}", "center_wavelength": float(c), "full_width_half_max": float(f)}
                    for i, (c, f) in enumerate(zip(WAVELENGTH, FWHM, strict=True))
                ],
            },
            "QL_QUALITY_CLOUD": {"href": str(folder / f"{scene_id}-QL_QUALITY_CLOUD.TIF")},
            "QL_QUALITY_CLASSES": {"href": str(folder / f"{scene_id}-QL_QUALITY_CLASSES.TIF")},
        },
        "stac_extensions": [],
    }


def write_bad_scenes(root: Path) -> list[dict[str, Any]]:
    """A truncated spectral file, a file with 20 bands where the item lists 24, an unplaceable CRS."""
    items = [
        write_scene(root, "SCENE_CORRUPT", BAD_SCENES["SCENE_CORRUPT"]),
        write_scene(root, "SCENE_BANDS", BAD_SCENES["SCENE_BANDS"], n_bands=20),
        write_scene(root, "SCENE_CRS", BAD_SCENES["SCENE_CRS"], crs=ENGINEERING_CRS),
    ]
    corrupt = root / "scenes" / "SCENE_CORRUPT" / "SCENE_CORRUPT-SPECTRAL_IMAGE.TIF"
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size * 6 // 10])
    return items


COLLECTION = {
    "type": "Collection",
    "stac_version": "1.0.0",
    "id": "ENMAP_HSI_L2A",
    "description": "test scenes",
    "license": "proprietary",
    "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
    "links": [],
}


def write_covariates(folder: Path, scene_bounds: tuple[float, float, float, float]) -> None:
    """Constant covariates on a lon/lat grid that stops short of the scenes' eastern 20 %."""
    folder.mkdir(parents=True, exist_ok=True)
    w, s, e, n = scene_bounds
    east = e - 0.2 * (e - w)
    res = 0.002
    width, height = int(np.ceil((east - w + 0.02) / res)), int(np.ceil((n - s + 0.04) / res))
    transform = Affine(res, 0.0, w - 0.02, 0.0, -res, n + 0.02)
    for i, name in enumerate(COVARIATE_NAMES):
        value = SAND if name == "sand" else float(i)
        _write(
            folder / f"{name}.tif",
            np.full((1, height, width), value, np.float32),
            "EPSG:4326",
            transform,
            -9999.0,
        )


def build_world(root: Path, delay: float = 0.0, bad_scenes: bool = False) -> World:
    root.mkdir(parents=True, exist_ok=True)
    items = [write_scene(root, sid, spec) for sid, spec in SCENES.items()]
    if bad_scenes:
        items += write_bad_scenes(root)
    lon = [b for it in items for b in it["bbox"][0::2]]
    lat = [b for it in items for b in it["bbox"][1::2]]
    union = (min(lon), min(lat), max(lon), max(lat))
    write_covariates(root / "covariates", union)
    student = root / "student"
    LinearPredictor.save(student, delay=delay)
    left, bottom, right, top = transform_bounds("EPSG:4326", GRID_CRS, *union)
    bounds = (left, bottom, right + 2500.0, top)  # a strip east of all scenes: tiles with no imagery
    return World(root, items, COLLECTION, root / "covariates", student, bounds)


def map_config(world: World, stac_url: str, out_url: str, **sections: dict[str, Any]) -> MapConfig:
    """The test map: 64-px shards (one per tile), 32-px chunks, 64-px blocks."""
    data: dict[str, Any] = {
        "region": {"bounds": list(world.region_bounds), "datetime": "2024-01-01/2024-12-31"},
        "grid": {"crs": GRID_CRS, "chunk": 32, "shard": 64},
        "inputs": {"stac_url": stac_url, "covariates_url": str(world.covariates)},
        "model": {"student_url": str(world.student), "predictor": PREDICTOR, "block": 64},
        "output": {"url": out_url, "pyramid_min_size": 32},
        "ray": {"retries": 1},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return MapConfig.model_validate(data)


PREDICTOR = "tests.support.mapping_world:LinearPredictor"


class LinearPredictor:
    """StudentPredictor stand-in: ECe = ``gain`` x mean reflectance + 0.01 x sand (gain 10).

    A checkpoint is a folder with ``meta.json``; saving another ``gain`` at the same place is
    "replacing the model" for the resume tests.
    """

    def __init__(self, wavelength: np.ndarray, delay: float, gain: float):
        self.wavelength = wavelength
        self.delay = delay
        self.gain = gain
        self.checkpoint_id = f"linear-{gain:g}"
        self.lineage = {"stage": "student", "parents": []}

    @staticmethod
    def save(folder: Path, delay: float = 0.0, gain: float = 10.0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(
            json.dumps({"wavelength": STUDENT_WAVELENGTH.tolist(), "delay": delay, "gain": gain})
        )

    @staticmethod
    def _meta(url: str) -> dict[str, Any]:
        return json.loads((Path(url) / "meta.json").read_text())

    @classmethod
    def load(cls, url: str, device: str | None = None) -> LinearPredictor:
        meta = cls._meta(url)
        return cls(np.asarray(meta["wavelength"]), float(meta["delay"]), float(meta.get("gain", 10.0)))

    @classmethod
    def describe(cls, url: str) -> ModelCard:
        meta = cls._meta(url)
        content = {k: v for k, v in meta.items() if k != "delay"}  # the delay changes no pixel
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
        checkpoint_id = f"linear-{float(meta.get('gain', 10.0)):g}"
        return ModelCard(checkpoint_id, digest, {"checkpoint_id": checkpoint_id, "stage": "student"})

    def predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The survey input is accepted, as the protocol asks, and not read."""
        if self.delay:
            time.sleep(self.delay)  # lets fault tests catch a run in the middle
        ece = self.gain * reflectance.mean(axis=1) + 0.01 * covariates[:, 0]
        ece = np.where(
            np.isfinite(reflectance).all(axis=1) & np.isfinite(covariates).all(axis=1), ece, np.nan
        )
        return {
            "ece": ece.astype(np.float32),
            "ece_std": np.full_like(ece, 0.5, dtype=np.float32),
            "domain_score": np.abs(reflectance[:, 0] - 0.25).astype(np.float32),
        }
