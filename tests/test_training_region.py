"""Training data from a real (generated) demo region, and ``deepsalt train`` end to end."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from typer.testing import CliRunner

from deepsalt.cli import app
from deepsalt.config import load_config
from deepsalt.io import open_enmap, open_enmap_quality
from deepsalt.spectra import water_vapour_mask
from deepsalt.synth import load_region
from deepsalt.synth.config import SynthConfig
from deepsalt.synth.manifest import RegionManifest
from deepsalt.training.checkpoint import read_meta
from deepsalt.training.data import PairingStatus, _SceneSampler, load_region_data

POOL = 900


@pytest.fixture(scope="module")
def region(demo_region: RegionManifest) -> str:
    """The region of the synth settings ``size=small`` (``load_config`` with no file): the
    session's small demo region, ``SynthConfig(size="small")`` (see ``tests/conftest.py``; only
    read here)."""
    assert load_config(SynthConfig, None, ["size=small"]) == SynthConfig(size="small")
    return demo_region.url


@pytest.fixture(scope="module")
def loaded(region):
    return load_region_data(region, pool_size=POOL)


@pytest.fixture(scope="module")
def samples(loaded):
    return loaded[0]


@pytest.mark.slow
def test_region_data_have_samples_library_pool_and_survey(samples):
    n = len(samples)
    assert samples.lab.shape == (n, 1765) and n == 300  # small preset: 150 measured + 150 MIR-only
    assert int(samples.measured.sum()) == 150 and samples.has_spectrum.all()
    assert samples.wavenumber[0] == pytest.approx(4001.7, abs=0.1)
    assert water_vapour_mask(samples.wavelength).all()  # only usable bands
    assert np.all(np.diff(samples.wavelength) > 0)  # the model band axis is sorted
    assert samples.paired.mean() > 0.8
    paired = samples.sat[samples.paired]
    assert (paired >= 0).all() and (paired <= 1).all()
    assert np.isfinite(samples.covariates[samples.paired]).all() and samples.covariates.shape == (n, 8)
    assert (samples.survey[samples.paired] >= 0).all()
    assert len(samples.library_ece) == 600 and np.isfinite(samples.library_lab).all()
    assert 0.9 * POOL <= len(samples.pool) <= POOL and np.isfinite(samples.pool).all()
    assert np.isfinite(samples.pool_survey).all() and np.isfinite(samples.pool_covariates).all()


@pytest.mark.slow
def test_the_pairing_report_names_every_sample_and_its_reason(loaded):
    data, report = loaded
    table = report.table
    assert list(table["sample_id"]) == list(data.sample_id)
    paired = (table["status"] == PairingStatus.PAIRED.value).to_numpy()
    np.testing.assert_array_equal(
        paired, np.isfinite(data.sat).all(axis=1) & (table["status"] != PairingStatus.NO_COVARIATES.value)
    )
    assert set(table["status"]) <= {s.value for s in PairingStatus}
    assert (table.loc[paired, "distance_km"] <= 0.045).all() and (table.loc[paired, "scene"] != "").all()
    assert (~paired).sum() > 0  # the small world has cloud: some samples find no clear pixel


@pytest.mark.slow
def test_each_sample_takes_the_pixel_it_lies_in_from_the_clearest_scene(region, samples):
    manifest = load_region(region)
    scene = min(manifest.files.scenes, key=lambda s: s.cloud_cover)
    url = manifest.href(scene.files["spectral"])
    reflectance = open_enmap(url)
    usable = np.isin(reflectance["wavelength"].to_numpy(), samples.wavelength)
    quality = open_enmap_quality(url)
    clear = ~np.logical_or.reduce([quality[v].to_numpy() for v in quality.data_vars])
    x, y = Transformer.from_crs("EPSG:4326", reflectance.rio.crs, always_xy=True).transform(
        samples.lon, samples.lat
    )
    col, row = ~reflectance.rio.transform() @ (np.asarray(x), np.asarray(y))
    row, col = np.floor(row).astype(int), np.floor(col).astype(int)
    h, w = clear.shape
    inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    idx = np.flatnonzero(inside)
    idx = idx[clear[row[idx], col[idx]]]
    pixels = reflectance.to_numpy()[:, row[idx], col[idx]].T[:, usable]
    idx, pixels = idx[np.isfinite(pixels).all(axis=1)], pixels[np.isfinite(pixels).all(axis=1)]
    same = np.all(np.isclose(samples.sat[idx], pixels), axis=1)
    assert len(idx) > 20 and same.mean() > 0.9  # shared pixels go to one sample only (mutual NN)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_sampler_reads_the_values_open_enmap_gives(region, data):
    """Pixels read tile by tile from the file, any set in any order (repeats too), are bitwise the
    scaled reflectance of ``open_enmap`` on the sampler's bands."""
    manifest = load_region(region)
    url = manifest.href(data.draw(st.sampled_from(manifest.files.scenes)).files["spectral"])
    reflectance = open_enmap(url)
    h, w = reflectance.shape[1:]
    n = data.draw(st.integers(1, 60))
    rows = np.array(data.draw(st.lists(st.integers(0, h - 1), min_size=n, max_size=n)))
    cols = np.array(data.draw(st.lists(st.integers(0, w - 1), min_size=n, max_size=n)))
    with _SceneSampler(url, None) as sampler:
        assert not sampler.resample  # the model axis is this scene's own: no resampling to compare
        read = sampler._read(rows, cols)
        at = {"y": xr.DataArray(rows), "x": xr.DataArray(cols)}
        expected = reflectance.isel(band=sampler.bands, **at).to_numpy().T
    np.testing.assert_array_equal(read, expected)


@pytest.mark.slow
def test_cli_trains_the_whole_chain_on_a_region(region, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train", "all", "--config", "configs/train.yaml",
            "--set", f"regions=[{region}]", "--set", f"output={out}", "--set", "preset=quick",
            "--set", "data.pool_size=600", "--set", "sau.epochs=3", "--set", "teacher.epochs=5", "--set", "student.epochs=5",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    urls = [line for line in result.stdout.splitlines() if line.startswith(str(out))]
    assert urls == [f"{out}/sau", f"{out}/teacher", f"{out}/student"]
    assert read_meta(urls[-1], "student").parents["teacher"] == read_meta(urls[1]).checkpoint_id


def test_cli_config_error_exits_2_naming_the_field(tmp_path):
    result = CliRunner().invoke(
        app, ["train", "all", "--set", "student.alpah=1", "--set", f"output={tmp_path}"]
    )
    assert result.exit_code == 2
    assert "student.alpah" in result.output
