"""``run_map`` on real EnMAP L2A tiles and on scenes of the other imaging spectrometers.

One student, trained the way the demo trains one (small generated region, quick preset, a few
epochs), maps:

- the four real Potsdam tiles (EnMAP L2A v1.3.2: band table in detector order with the VNIR/SWIR
  overlap, its own ``bbl`` list, band centres unlike the student's), found through a STAC API
  served on 127.0.0.1, with covariate COGs for the area written here;
- the Potsdam tile 128_0 as AVIRIS-NG (ENVI), EMIT L2A (NetCDF, swath + GLT) and PRISMA L2D (HDF5)
  would have seen it, listed as local files.

Nothing the student saw in training looks like Potsdam (roofs, pavement, trees, lawns, bare soil
of a German city), so the domain score must say it extrapolates; the land-cover split of the
scores is printed for the record. The map grid is 15 m: EnMAP tile corners lie on odd multiples
of 15 m and map grids snap to multiples of their pixel size, so at 15 m every EnMAP pixel becomes
exactly 2 x 2 map pixels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from rasterio.warp import transform_bounds

from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.io.formats import SceneFormat
from deepsalt.mapping import MapConfig, run_map
from deepsalt.mapping.quality import NO_PREDICTION, Quality
from deepsalt.synth.cog import write_cog
from deepsalt.synth.manifest import RegionManifest
from tests.conftest import FIXTURES
from tests.support.sensor_files import potsdam_ground, write_emit, write_envi, write_prisma
from tests.support.services import stac_api_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

TILES = sorted((FIXTURES / "enmap").glob("enmap_potsdam_tile_*.tif"))
LANDCOVER = FIXTURES / "enmap" / "landcover"
# EnMAP-Box level-3 land-cover classes in the order of their legend; 0 = no label. The spectra
# agree (4: red 0.03, NIR 0.38, dense canopy; 5: SWIR brighter than NIR, bare soil).
CLASSES = {0: "unlabelled", 1: "roof", 2: "pavement", 3: "low vegetation", 4: "tree", 5: "soil"}
# Tile 96_96, row 6, column 26: open water (reflectance <= 0.03 from the NIR on).
WATER_PIXEL = ("enmap_potsdam_tile_96_96", 6, 26)
RESOLUTION = 15.0
# Potsdam: sandy soils, temperate climate (sand/clay %, °C, mm/month).
COVARIATES = {
    "sand": 70.0,
    "clay": 6.0,
    "tmin": -1.5,
    "tmax": 23.5,
    "tmean": 9.6,
    "pmin": 35.0,
    "pmax": 70.0,
    "pmean": 50.0,
}


@dataclass(frozen=True)
class Student:
    url: str
    region_url: str


@pytest.fixture(scope="module")
def student(quick_student: str, demo_region: RegionManifest) -> Student:
    """The student ``deepsalt demo --quick`` trains: small generated world, quick preset (the
    session's, see ``tests/conftest.py``)."""
    return Student(quick_student, demo_region.url)


def tile_item(path: Path) -> dict[str, Any]:
    """A STAC item for one tile: its footprint and date from the file, the GeoTIFF as the image."""
    with rasterio.open(path) as ds:
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        when = ds.tags()["start_time"] + "Z"
        epsg = ds.crs.to_epsg()
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": ["https://stac-extensions.github.io/projection/v1.0.0/schema.json"],
        "id": path.stem,
        "collection": "ENMAP_HSI_L2A",
        "bbox": [west, south, east, north],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        },
        "properties": {"datetime": when, "eo:cloud_cover": 0, "proj:epsg": epsg},
        "assets": {
            "spectral_image": {
                "href": str(path),
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
            }
        },
        "links": [],
    }


def collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    boxes = np.array([item["bbox"] for item in items])
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "ENMAP_HSI_L2A",
        "description": "EnMAP L2A tiles of the Potsdam scene (EnMAP-Box example data)",
        "license": "GPL-3.0",
        "extent": {
            "spatial": {"bbox": [[*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)]]},
            "temporal": {"interval": [["2022-07-24T00:00:00Z", "2022-07-25T00:00:00Z"]]},
        },
        "links": [],
    }


def write_covariates(folder: Path, bbox: tuple[float, float, float, float]) -> str:
    """One small COG per covariate in EPSG:4326 over ``bbox`` (plus a margin), gently varying."""
    west, south, east, north = bbox[0] - 0.02, bbox[1] - 0.02, bbox[2] + 0.02, bbox[3] + 0.02
    size = 16
    transform = Affine((east - west) / size, 0, west, 0, -(north - south) / size, north)
    ramp = np.linspace(-0.05, 0.05, size)[None, :] + np.zeros((size, 1))
    for name, value in COVARIATES.items():
        write_cog(
            folder / f"{name}.tif", (value * (1 + ramp)).astype(np.float32), "EPSG:4326", transform, None
        )
    assert sorted(COVARIATES) == sorted(COVARIATE_NAMES)
    return str(folder)


def map_config(root: Path, name: str, bounds, covariates: str, student: Student, inputs: dict) -> MapConfig:
    return MapConfig.model_validate(
        {
            "region": {"bounds": list(bounds)},
            "grid": {"crs": "EPSG:32633", "resolution": RESOLUTION, "chunk": 32, "shard": 64},
            "inputs": {**inputs, "covariates_url": covariates},
            "model": {"student_url": student.url, "block": 64},
            "output": {"url": str(root / f"{name}.zarr"), "pyramid_min_size": 32},
            "ray": {"num_actors": 1, "num_cpus": 0.5},
        }
    )


def union_bounds(paths: list[Path]) -> tuple[float, float, float, float]:
    boxes = []
    for path in paths:
        with rasterio.open(path) as ds:
            boxes.append(tuple(ds.bounds))
    b = np.array(boxes)
    return (*b[:, :2].min(axis=0), *b[:, 2:].max(axis=0))


@dataclass(frozen=True)
class TileMap:
    """The map's layers over one EnMAP tile, one value per EnMAP pixel (top-left of each 2 x 2)."""

    ece: np.ndarray
    domain_score: np.ndarray
    quality: np.ndarray
    landcover: np.ndarray


def per_tile(ds: xr.Dataset, tile: Path) -> TileMap:
    with rasterio.open(tile) as src:
        left, bottom, right, top = src.bounds
    sub = ds.sel(x=slice(left, right), y=slice(top, bottom))
    assert sub.sizes == {"y": 64, "x": 64}
    with rasterio.open(LANDCOVER / tile.name) as lc:
        landcover = lc.read(1).astype(int)
    return TileMap(
        *(sub[name].values[::2, ::2] for name in ("ece", "domain_score", "quality")), landcover=landcover
    )


@pytest.fixture(scope="module")
def potsdam(student: Student, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("potsdam")
    items = [tile_item(path) for path in TILES]
    boxes = np.array([item["bbox"] for item in items])
    covariates = write_covariates(root / "covariates", (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)))
    with stac_api_server(root / "stac", collection(items), items) as api:
        config = map_config(root, "potsdam", union_bounds(TILES), covariates, student, {"stac_url": api})
        summary = run_map(config)
    ds = xr.open_zarr(summary.store_url, decode_coords="all").load()
    yield {
        "summary": summary,
        "tiles": {t.stem: per_tile(ds, t) for t in TILES},
        "root": root,
        "covariates": covariates,
    }


def test_potsdam_every_tile_done_none_failed(potsdam: dict[str, Any]):
    summary = potsdam["summary"]
    assert summary.ok, summary.failures
    assert summary.tiles_done + summary.tiles_empty == summary.tiles_total and summary.tiles_done >= 4


def test_potsdam_water_flagged_and_not_predicted(potsdam: dict[str, Any]):
    name, row, col = WATER_PIXEL
    tile = potsdam["tiles"][name]
    assert tile.quality[row, col] & Quality.WATER and np.isnan(tile.ece[row, col])
    for t in potsdam["tiles"].values():
        water = (t.quality & Quality.WATER) > 0
        assert np.isnan(t.ece[water]).all()
        assert water.sum() <= 3  # the river's edge in tile 96_96 only; no land cover is called water
        assert not water[t.landcover == 4].any()


def mapped_pixels(potsdam: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mapped mask, domain score, land cover) over every EnMAP pixel of the four tiles."""
    tiles = potsdam["tiles"].values()
    ece, score, landcover = (
        np.concatenate([getattr(t, n).ravel() for t in tiles]) for n in ("ece", "domain_score", "landcover")
    )
    return np.isfinite(ece), score, landcover


def test_potsdam_predicted_where_not_flagged(potsdam: dict[str, Any]):
    quality = np.concatenate([t.quality.ravel() for t in potsdam["tiles"].values()])
    mapped, score, _ = mapped_pixels(potsdam)
    land = (quality & Quality.WATER) == 0
    assert mapped[land].mean() >= 0.9
    assert np.array_equal(mapped, (quality & NO_PREDICTION) == 0)
    assert np.isfinite(score[mapped]).all()


def training_region_scores(student: Student, n: int = 4000) -> np.ndarray:
    """Domain scores of clear pixels of the student's own training region (its first scene)."""
    from deepsalt.io.layout import locate_product
    from deepsalt.io.scenes import spectral_layout
    from deepsalt.io.stac import scene_ref
    from deepsalt.mapping.bands import BandMatcher
    from deepsalt.predict import StudentPredictor
    from deepsalt.synth import load_region

    predictor = StudentPredictor.load(student.url, device="cpu")
    manifest = load_region(student.region_url)
    items = Path(manifest.href(manifest.files.stac_items)).read_text().splitlines()
    scene = scene_ref(json.loads(items[0]))
    layout = spectral_layout(scene)
    matcher = BandMatcher.build(layout.table, predictor.wavelength, layout.nodata, scene.spectral_href)
    with rasterio.open(locate_product(scene.spectral_href).spectral) as ds:
        raw = ds.read().reshape(ds.count, -1).T
    reflectance, _ = matcher.reflectance(raw[np.random.default_rng(0).choice(len(raw), n, replace=False)])
    keep = np.isfinite(reflectance).all(axis=1)
    # The region's own climate and texture (the training mean): Potsdam's covariates lie far
    # outside the training range and would flag every pixel whatever its spectrum.
    # The whole covariate table's training mean (the domain score watches every column of it).
    typical = predictor.net.covariate_range.mean.numpy()
    covariates = np.tile(typical[None, :].astype(np.float32), (keep.sum(), 1))
    return predictor.predict(reflectance[keep], covariates)["domain_score"]


def test_potsdam_scores_as_further_from_training_than_the_training_region(potsdam, student: Student):
    mapped, score, landcover = mapped_pixels(potsdam)
    own = training_region_scores(student)
    print("\nPotsdam domain score by land cover (EnMAP-Box level-3 classes):")
    print(f"{'class':>16} {'pixels':>7} {'median':>7} {'share > 1':>9}")
    for value, name in CLASSES.items():
        pick = mapped & (landcover == value)
        if pick.any():
            print(
                f"{name:>16} {pick.sum():>7} {np.median(score[pick]):>7.2f} {(score[pick] > 1).mean():>9.1%}"
            )
    print(
        f"{'all mapped':>16} {mapped.sum():>7} {np.median(score[mapped]):>7.2f} {(score[mapped] > 1).mean():>9.1%}"
    )
    print(f"{'training region':>16} {own.size:>7} {np.median(own):>7.2f} {(own > 1).mean():>9.1%}")
    assert np.median(score[mapped]) > 1.2 * np.median(own)
    assert (score[mapped] > 1).mean() > 1.5 * (own > 1).mean()


def test_potsdam_domain_score_above_one_on_nine_tenths(potsdam: dict[str, Any]):
    mapped, score, _ = mapped_pixels(potsdam)
    assert (score[mapped] > 1).mean() >= 0.9


# --- the same ground through the other imaging spectrometers --------------------------------------


@pytest.fixture(scope="module")
def sensor_maps(student: Student, potsdam: dict[str, Any]) -> dict[str, Any]:
    root = potsdam["root"]
    ground = potsdam_ground()
    files = {
        SceneFormat.ENVI: write_envi(root, "ang20220724t104526", ground),
        SceneFormat.EMIT_L2A: write_emit(root / "EMIT_L2A_RFL_001_20220724T104526_2220507_004.nc", ground),
        SceneFormat.PRISMA_L2D: write_prisma(
            root / "PRS_L2D_STD_20220724104526_20220724104530_0001.he5", ground
        ),
    }
    tile = next(t for t in TILES if t.stem == "enmap_potsdam_tile_128_0")
    maps = {}
    for fmt, path in files.items():
        inputs = {"scenes": [{"url": str(path), "format": fmt.value}]}
        config = map_config(root, fmt.value, union_bounds([tile]), potsdam["covariates"], student, inputs)
        summary = run_map(config)
        ds = xr.open_zarr(summary.store_url, decode_coords="all").load()
        maps[fmt] = {"summary": summary, "tile": per_tile(ds, tile)}
    return maps


@pytest.mark.parametrize("fmt", [SceneFormat.ENVI, SceneFormat.EMIT_L2A, SceneFormat.PRISMA_L2D])
def test_each_sensor_maps_the_ground_like_enmap(sensor_maps: dict[str, Any], potsdam: dict[str, Any], fmt):
    summary, tile = sensor_maps[fmt]["summary"], sensor_maps[fmt]["tile"]
    assert summary.ok and summary.tiles_done >= 1, summary.failures
    enmap = potsdam["tiles"]["enmap_potsdam_tile_128_0"]
    empty = np.zeros(tile.ece.shape, bool)
    empty[:2, :3] = True  # the ground pixels written without data (tests.support.sensor_files.EMPTY)
    assert np.all(tile.quality[empty] & Quality.NODATA) and np.isnan(tile.ece[empty]).all()
    both = ~empty & np.isfinite(enmap.ece)
    # EMIT's geographic cells straddle the tile's outer edge, where its GLT has no pixel
    assert np.isfinite(tile.ece[both]).mean() >= 0.95
    both &= np.isfinite(tile.ece)
    log_diff = np.abs(np.log1p(tile.ece[both]) - np.log1p(enmap.ece[both]))
    # ECe on this city is mostly at its floor of 0 dS/m, so the pixel-by-pixel agreement of the
    # spectra is read from the domain score, a continuous function of every band
    corr = np.corrcoef(tile.domain_score[both], enmap.domain_score[both])[0, 1]
    print(
        f"\n{fmt.value}: ECe vs the EnMAP map of the same ground: median |Δlog1p| {np.median(log_diff):.3f}; "
        f"domain score r {corr:.3f}, > 1 on {(tile.domain_score[both] > 1).mean():.1%}"
    )
    assert np.median(log_diff) < 0.2 and corr > 0.8


# --- a product that lacks bands the model needs ------------------------------------------------------


def tile_with_bad_bands(folder: Path, low: float, high: float) -> Path:
    """Tile 96_96 whose own ``bbl`` list also flags every band centred in (low, high) nm."""
    source = next(t for t in TILES if t.stem == "enmap_potsdam_tile_96_96")
    path = folder / f"enmap_potsdam_bad_{low:.0f}_{high:.0f}.tif"
    path.write_bytes(source.read_bytes())
    with rasterio.open(path, "r+") as ds:
        for band in range(1, ds.count + 1):
            if low < float(ds.tags(band)["wavelength"]) < high:
                ds.update_tags(band, bbl="0")
    return path


def test_missing_bands_filled_and_flagged_or_the_scene_refused(student: Student, potsdam: dict[str, Any]):
    root = potsdam["root"]
    bounds = union_bounds([next(t for t in TILES if t.stem == "enmap_potsdam_tile_96_96")])
    filled = tile_with_bad_bands(root, 2190.0, 2220.0)  # 4 adjacent bands: a 33.6 nm hole
    config = map_config(
        root, "filled", bounds, potsdam["covariates"], student, {"scenes": [{"url": str(filled)}]}
    )
    summary = run_map(config)
    assert summary.ok
    ds = xr.open_zarr(summary.store_url, decode_coords="all").load()
    mapped = np.isfinite(ds.ece.values)
    assert mapped.sum() >= 4000 and np.all(ds.quality.values[mapped] == Quality.BANDS_FILLED)

    hole = tile_with_bad_bands(root, 2150.0, 2260.0)
    config = map_config(
        root, "hole", bounds, potsdam["covariates"], student, {"scenes": [{"url": str(hole)}]}
    )
    summary = run_map(config)
    assert not summary.ok and len(summary.failures) == summary.tiles_total - summary.tiles_empty
    message = next(iter(summary.failures.values()))
    assert "enmap_potsdam_bad_2150_2260.tif" in message and "cannot give the model's band(s) at 21" in message
