"""The demo region: files in real formats, opened with the project's own readers; reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.config import load_config
from deepsalt.errors import ConfigError, InputDataError
from deepsalt.io.covariates import COVARIATE_NAMES, covariate_urls, sample_covariates
from deepsalt.io.enmap import open_enmap, open_enmap_quality
from deepsalt.io.lab import read_lab_spectra
from deepsalt.io.stac import search_scenes
from deepsalt.spectra import KSSL_WAVENUMBERS, BandTable
from deepsalt.synth import RegionManifest, SynthConfig, generate_region, load_region
from deepsalt.synth.library import BAND_TABLE_XML

CONFIG = Path(__file__).parents[1] / "configs" / "synth.yaml"


def small(**fields) -> SynthConfig:
    return SynthConfig(size="small", **fields)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> RegionManifest:
    return generate_region(small(seed=7), str(tmp_path_factory.mktemp("regions")))


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_manifest_lists_every_file_relative_to_the_region(region: RegionManifest) -> None:
    folder = Path(region.url)
    assert folder.name == "demo"
    assert load_region(region.url) == region
    listed = {region.files.truth, region.files.lab, region.files.stac_collection, region.files.stac_items}
    listed |= set(region.files.covariates.values())
    listed |= {path for scene in region.files.scenes for path in scene.files.values()}
    listed |= {region.files.library} | {path for key, path in region.files.survey.items() if key != "export"}
    export = region.files.survey["export"]
    listed |= {
        name for name in files_of(folder) if name.startswith(f"{export}/")
    }  # the SSURGO export's own layout
    on_disk = set(files_of(folder)) - {"region.json"}
    assert listed == on_disk
    assert list(region.files.covariates) == list(COVARIATE_NAMES)
    assert region.scene_ids == [s.id for s in region.files.scenes]
    assert len(region.scene_ids) == 3
    stored = json.loads((folder / "region.json").read_text())
    assert "url" not in stored  # the folder can move
    assert stored["shape"] == [256, 256]
    assert region.datetime_range[0] < region.datetime_range[1]


def test_scenes_open_as_enmap_l2a_products(region: RegionManifest) -> None:
    bands = BandTable.from_metadata_xml(str(BAND_TABLE_XML))
    clouds = []
    for scene_id in region.scene_ids:
        urls = region.scene_urls(scene_id)
        assert urls["spectral"].endswith(f"{scene_id}-SPECTRAL_IMAGE.TIF")
        cube = open_enmap(urls["spectral"])
        assert cube.dims == ("band", "y", "x")
        assert cube.shape == (218, 150, 150)
        np.testing.assert_allclose(cube.wavelength.values, bands.wavelength)
        assert cube.rio.crs.to_string() == region.crs
        values = cube.values
        corners = np.isnan(values[:, [0, 0, -1, -1], [0, -1, 0, -1]])
        assert corners.all(), "the tilted swath leaves nodata in the corners"
        valid = values[:, 75, 75]
        assert np.isfinite(valid).all() and (valid >= 0).all() and (valid <= 1).all()
        quality = open_enmap_quality(urls["spectral"])
        assert quality.cloud.shape == (150, 150)
        clouds.append(float(quality.cloud.mean()))
        with rasterio.open(urls["spectral"]) as ds:
            assert ds.dtypes[0] == "int16" and ds.nodata == -32768
            assert ds.profile["tiled"] and ds.profile["compress"] == "zstd"
    assert clouds[0] == 0 and max(clouds) > 0.02, "the first scene is clear, others carry clouds"


def test_water_is_flagged_and_has_no_truth(tmp_path: Path) -> None:
    manifest = generate_region(
        small(
            seed=3,
            n_scenes=1,
            region_shape=(160, 160),
            scene_shape=(160, 160),
            n_samples=40,
            water_fraction=0.05,
        ),
        str(tmp_path),
    )
    spectral = manifest.scene_urls(manifest.scene_ids[0])["spectral"]
    quality = open_enmap_quality(spectral)
    water, inside = quality.water.values, ~quality.background.values
    with rasterio.open(manifest.truth_url) as ds:
        truth = ds.read(1)
    assert 0.01 < water[inside].mean() < 0.06
    assert np.array_equal(np.isnan(truth[inside]), water[inside])
    red = open_enmap(spectral).sel(wavelength=850, method="nearest").values
    assert np.nanmedian(red[water]) < 0.05 < np.nanmedian(red[~water])


def test_lab_samples_read_as_kssl_style_table(region: RegionManifest) -> None:
    lab = read_lab_spectra(region.lab_url)
    assert lab.dims == ("sample", "wavenumber")
    preset = small()
    assert lab.shape == (preset.n_samples + preset.n_mir_only, 1765)  # every sample is scanned
    measured = np.isfinite(lab.ece.values)
    assert measured.sum() == preset.n_samples  # a subset went to the wet lab
    np.testing.assert_allclose(lab.wavenumber.values, KSSL_WAVENUMBERS, atol=1e-3)
    west, south, east, north = region.bbox_lonlat
    assert ((lab.lon > west) & (lab.lon < east) & (lab.lat > south) & (lab.lat < north)).all()
    assert (lab.ece.values[measured] > 0).all() and set(lab.depth.values) == {"0-30"}
    assert np.isfinite(lab.values).all() and 0 < lab.values.min() < lab.values.max() < 4


def test_covariates_are_coarser_in_another_crs_and_physically_ordered(region: RegionManifest) -> None:
    urls = region.covariate_urls()
    assert urls == covariate_urls(f"{region.url}/covariates")
    with rasterio.open(urls["tmean"]) as ds:  # climate: a coarse geographic grid, as WorldClim ships
        assert ds.crs.to_epsg() == 4326 != int(region.crs.split(":")[1])
        assert ds.res[0] == pytest.approx(0.005)
    for name in ("sand", "clay"):  # texture: the survey's own rasters, on gNATSGO's grid
        assert Path(urls[name]).read_bytes() == Path(f"{region.url}/{region.files.survey[name]}").read_bytes()
        with rasterio.open(urls[name]) as ds:
            assert ds.crs.to_epsg() == 5070
    lab = read_lab_spectra(region.lab_url)
    values = sample_covariates(urls, lab.lon.values, lab.lat.values)
    sand, clay, tmin, tmax, tmean, pmin, pmax, pmean = values.T
    assert np.isfinite(values[:, 2:]).all()
    surveyed = np.isfinite(sand) & np.isfinite(
        clay
    )  # the survey has gaps (map units without data), as SSURGO does
    assert surveyed.mean() > 0.8
    assert (sand[surveyed] + clay[surveyed] < 100).all() and (clay[surveyed] > 0).all()
    assert (tmin < tmean).all() and (tmean < tmax).all()
    assert (pmin < pmean).all() and (pmean < pmax).all()


def test_truth_is_zero_inflated_and_heavy_tailed(region: RegionManifest) -> None:
    with rasterio.open(region.truth_url) as ds:
        truth = ds.read(1)
        assert ds.crs.to_string() == region.crs and ds.res == (30.0, 30.0)
        assert ds.tags()["units"] == "dS/m"
    ece = truth[np.isfinite(truth)]
    assert np.median(ece) < 1.0
    assert (ece < 2).mean() > 0.6
    assert (ece > 16).mean() > 0.001
    assert ece.min() > 0


def test_stac_items_are_found_through_a_stac_api(region: RegionManifest, stac_api_factory) -> None:
    folder = Path(region.url)
    collection = json.loads((folder / region.files.stac_collection).read_text())
    items = [json.loads(line) for line in (folder / region.files.stac_items).read_text().splitlines()]
    api = stac_api_factory(collection, items)
    scenes = search_scenes(api, region.bbox_lonlat)
    assert sorted(s.id for s in scenes) == sorted(region.scene_ids)
    for scene in scenes:
        urls = region.scene_urls(scene.id)
        assert scene.spectral_href == urls["spectral"]
        assert scene.metadata_href == urls["metadata"]
        assert scene.quality_hrefs["cloud"] == urls["quality_cloud"]
        assert scene.bands is not None and scene.bands.n_bands == 218
        assert scene.epsg == int(region.crs.split(":")[1])
    clear = search_scenes(api, region.bbox_lonlat, max_cloud_cover=0.5)
    assert region.scene_ids[0] in {s.id for s in clear}


def test_same_seed_same_bytes_through_the_cli(region: RegionManifest, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["synth", str(tmp_path), "-c", str(CONFIG), "-s", "size=small", "-s", "seed=7"]
    )
    assert result.exit_code == 0, result.output
    again = files_of(tmp_path / "demo")
    original = files_of(Path(region.url))
    assert again.keys() == original.keys()
    differing = [name for name in original if name != "stac/items.ndjson" and again[name] != original[name]]
    assert differing == []
    # STAC hrefs are absolute, so they name the other folder; apart from that, identical.
    assert again["stac/items.ndjson"].decode().replace(str(tmp_path), "X") == original[
        "stac/items.ndjson"
    ].decode().replace(str(Path(region.url).parent), "X")


def test_another_seed_is_another_world(region: RegionManifest, tmp_path: Path) -> None:
    other = generate_region(small(seed=8, n_scenes=1, n_samples=40), str(tmp_path))
    with rasterio.open(region.truth_url) as a, rasterio.open(other.truth_url) as b:
        first, second = a.read(1), b.read(1)
    both = np.isfinite(first) & np.isfinite(second)
    assert abs(np.corrcoef(np.log(first[both]), np.log(second[both]))[0, 1]) < 0.5
    assert set(other.scene_ids).isdisjoint(region.scene_ids)


def test_region_written_to_s3_opens_from_s3(s3) -> None:
    manifest = generate_region(small(seed=1, n_scenes=1, n_samples=40), s3.url("regions"))
    assert manifest.url == s3.url("regions/demo")
    loaded = load_region(manifest.url)
    cube = open_enmap(loaded.scene_urls(loaded.scene_ids[0])["spectral"])
    assert cube.shape == (218, 150, 150)
    assert read_lab_spectra(loaded.lab_url).shape == (40 + small().n_mir_only, 1765)


def test_invalid_settings_fail_before_any_work(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("size: small\nworld:\n  salt_composition: {halite: 1, unobtainium: 2}\n")
    with pytest.raises(ConfigError, match=r"world.salt_composition.*unobtainium"):
        load_config(SynthConfig, str(bad))
    with pytest.raises(ConfigError, match="scene_shape"):
        load_config(SynthConfig, None, ["size=small", "scene_shape=[300, 300]"])
    with pytest.raises(ConfigError, match="n_samples"):
        generate_region(small(n_scenes=1, scene_shape=(20, 20), n_samples=2000), str(tmp_path))
    assert not any(tmp_path.glob("demo*")) and not any(tmp_path.glob(".synth-*"))
    with pytest.raises(InputDataError, match=r"region\.json.*no region manifest"):
        load_region(str(tmp_path))
