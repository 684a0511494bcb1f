"""deepsalt.spectra on the real EnMAP fixtures, plus property tests of the resampling and grids."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from deepsalt.errors import InputDataError
from deepsalt.spectra import (
    ENMAP_NODATA,
    KSSL_WAVENUMBERS,
    BandTable,
    interpolate_mir,
    resample_to_bands,
    scale_reflectance,
    srf_weights,
    water_vapour_mask,
)
from deepsalt.spectra.masks import MODEL_RANGE_NM
from deepsalt.spectra.resample import FILL_GAP_NM, match_bands
from tests.conftest import FIXTURES
from tests.support.enmap_fixtures import METADATA_XML, STAC_ITEM, TILE

OSSL_MIR = FIXTURES / "lab" / "ossl" / "sample_mir_data.csv"


# --- band tables from real products ---------------------------------------------------------------


def test_band_tags_of_potsdam_tile():
    table = BandTable.from_band_tags(str(TILE))
    assert table.n_bands == 224
    assert table.wavelength[0] == pytest.approx(418.24)
    assert table.fwhm[0] == pytest.approx(6.99561)
    assert table.wavelength[-1] == pytest.approx(2445.53)
    # the EnMAP-Box readme: 6 bad bands, filled with nodata
    assert (~table.good).sum() == 6
    with rasterio.open(TILE) as ds:
        bad = np.flatnonzero(~table.good) + 1
        assert np.all(ds.read(bad.tolist()) == ENMAP_NODATA)


def test_metadata_xml_band_table():
    table = BandTable.from_metadata_xml(str(METADATA_XML))
    assert table.n_bands == 218
    assert table.wavelength[:3] == pytest.approx([423.03, 428.8, 434.29])
    assert table.fwhm[:3] == pytest.approx([6.93, 6.58, 6.34])
    assert table.wavelength[-1] == pytest.approx(2438.6)
    assert np.all(table.gain == 0.0001)
    assert np.all(table.offset == 0)
    assert table.good.all()


def test_metadata_xml_plain_file(tmp_path: Path):
    plain = tmp_path / "X-METADATA.XML"
    plain.write_bytes(gzip.decompress(METADATA_XML.read_bytes()))
    assert BandTable.from_metadata_xml(str(plain)).n_bands == 218


def test_stac_item_band_table():
    table = BandTable.from_stac_item(json.loads(STAC_ITEM.read_text()))
    assert table.n_bands == 224
    assert table.wavelength[0] == pytest.approx(418.416)
    assert table.fwhm[0] == pytest.approx(6.99561)
    assert np.all(np.diff(table.wavelength[:90]) > 0)  # VNIR detector, ascending
    assert np.all(table.gain == 0.0001)


def test_stac_item_in_micrometres_is_converted():
    item = {
        "id": "x",
        "properties": {},
        "assets": {
            "data": {
                "eo:bands": [
                    {"center_wavelength": 0.45, "full_width_half_max": 0.01},
                    {"center_wavelength": 0.55, "full_width_half_max": 0.01},
                ]
            }
        },
    }
    table = BandTable.from_stac_item(item)
    assert table.wavelength == pytest.approx([450.0, 550.0])
    assert table.fwhm == pytest.approx([10.0, 10.0])
    assert table.gain is None


def test_stac_item_without_bands_names_item():
    with pytest.raises(InputDataError, match="item-7: STAC item has no eo:bands"):
        BandTable.from_stac_item({"id": "item-7", "properties": {}, "assets": {}})


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_band_tags_missing_names_file(tmp_path: Path):
    path = tmp_path / "untagged.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=3, dtype="int16") as ds:
        ds.write(np.zeros((3, 4, 4), dtype="int16"))
        ds.update_tags(1, wavelength="500", fwhm="10")
    with pytest.raises(InputDataError, match=r"untagged\.tif: no wavelength/fwhm tags on band\(s\) 2-3"):
        BandTable.from_band_tags(str(path))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_band_tags_in_micrometres(tmp_path: Path):
    path = tmp_path / "um.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=2, dtype="int16") as ds:
        ds.update_tags(1, wavelength="0.5", fwhm="0.01", wavelength_units="Micrometers")
        ds.update_tags(2, wavelength="0.6", fwhm="0.01", bbl="0")
    table = BandTable.from_band_tags(str(path))
    assert table.wavelength == pytest.approx([500.0, 600.0])
    assert table.good.tolist() == [True, False]


def test_metadata_xml_missing_or_wrong(tmp_path: Path):
    with pytest.raises(InputDataError, match=r"nothing-METADATA\.XML: metadata file not found"):
        BandTable.from_metadata_xml(str(tmp_path / "nothing-METADATA.XML"))
    other = tmp_path / "other.xml"
    other.write_text("<root><a/></root>")
    with pytest.raises(InputDataError, match=r"other\.xml: no <bandCharacterisation>"):
        BandTable.from_metadata_xml(str(other))
    broken = tmp_path / "broken.xml"
    broken.write_text("<root><a>")
    with pytest.raises(InputDataError, match=r"broken\.xml: not readable XML"):
        BandTable.from_metadata_xml(str(broken))


def test_band_table_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one length"):
        BandTable(np.array([500.0, 600.0]), np.array([10.0]), np.array([True, True]))


# --- masks and scaling ----------------------------------------------------------------------------


def test_water_vapour_mask():
    wl = np.array([500.0, 1286.7, 1290.0, 1400.0, 1515.0, 1518.9, 1720.5, 1725.0, 1972.0, 1977.1, 2200.0])
    expected = [True, True, False, False, False, True, True, False, False, True, True]
    assert water_vapour_mask(wl).tolist() == expected


def real_band_tables() -> dict[str, BandTable]:
    """The three real EnMAP band tables: Potsdam v1.3.2 tags, pre-launch METADATA.XML, 2024 STAC item."""
    return {
        "potsdam": BandTable.from_band_tags(str(TILE)),
        "metadata": BandTable.from_metadata_xml(str(METADATA_XML)),
        "stac": BandTable.from_stac_item(json.loads(STAC_ITEM.read_text())),
    }


def test_windows_cover_every_band_real_products_flag():
    potsdam = real_band_tables()["potsdam"]
    assert not water_vapour_mask(potsdam.wavelength[~potsdam.good]).any()  # its bbl list
    # the pre-launch product's neighbours of its gaps, which the Potsdam product flags
    assert not water_vapour_mask(np.array([1334.7, 1772.7])).any()
    # the bands of the 2024 layout found filled with nodata in real products (numbers 127-141, 161-167)
    stac = real_band_tables()["stac"]
    dropped = np.r_[126:141, 160:167]
    assert stac.wavelength[dropped].min() == pytest.approx(1294.91)
    assert not water_vapour_mask(stac.wavelength[dropped]).any()


@pytest.mark.parametrize("name", ["potsdam", "metadata", "stac"])
def test_model_axis_of_real_products(name: str):
    table = real_band_tables()[name]
    axis = table.model_axis()
    assert np.all(np.diff(axis.wavelength) > 0)  # sorted, also for the Potsdam detector order
    assert axis.wavelength.min() >= MODEL_RANGE_NM[0] and axis.wavelength.max() <= MODEL_RANGE_NM[1]
    assert water_vapour_mask(axis.wavelength).all() and axis.good.all()
    assert not np.isin(axis.wavelength, table.wavelength[~table.good]).any()
    assert 170 <= axis.n_bands <= 200


@pytest.mark.parametrize("trained_on", ["potsdam", "metadata", "stac"])
@pytest.mark.parametrize("shift", [-3.0, 0.0, 3.0])
def test_model_axis_of_one_product_is_resampled_from_every_other(trained_on: str, shift: float):
    """Band centres differ between products and processor versions, and by a few nm more."""
    tables = real_band_tables()
    axis = tables[trained_on].model_axis()
    for name, table in tables.items():
        usable = table.usable()
        match = match_bands(table.wavelength[usable] + shift, axis)
        assert not match.missing.any(), name
        assert not match.filled.any(), name
        np.testing.assert_allclose(match.weights.sum(axis=1), 1.0)


def test_metadata_xml_band_statistics_mark_nodata_bands(tmp_path: Path):
    text = gzip.decompress(METADATA_XML.read_bytes()).decode()
    start = text.index("<bandStatistics>")
    first = text.index("<mean>", start)
    end = text.index("</stdDeviation>", first)
    # band 1's statistics as DLR writes them for a band filled with nodata
    text = text[:first] + "<mean>-1000000</mean>\n        <stdDeviation>0" + text[end:]
    path = tmp_path / "x-METADATA.XML"
    path.write_text(text)
    table = BandTable.from_metadata_xml(str(path))
    assert table.good.tolist() == [False] + [True] * 217
    assert 423.03 not in table.model_axis().wavelength


def test_usable_combines_bbl_and_water_vapour():
    table = BandTable.from_band_tags(str(TILE))
    usable = table.usable()
    assert not usable[~table.good].any()
    assert not usable[(table.wavelength > 1800) & (table.wavelength < 1950)].any()
    assert usable[(table.wavelength > 500) & (table.wavelength < 1290)].all()


def test_known_pixel_reflectance_after_scaling():
    with rasterio.open(TILE) as ds:
        stored = ds.read()
    reflectance = scale_reflectance(stored)
    assert reflectance.dtype == np.float32
    assert reflectance[0, 0, 0] == pytest.approx(0.0318)  # band 1, row 0, col 0 stores 318
    assert reflectance[0, 1, 2] == pytest.approx(0.0329)
    assert np.isnan(reflectance[stored == ENMAP_NODATA]).all()
    finite = reflectance[np.isfinite(reflectance)]
    assert finite.min() >= 0 and finite.max() <= 1


def test_scaling_with_band_gain_on_xarray():
    stored = xr.DataArray(
        np.array([[[100, ENMAP_NODATA]], [[20000, -5]]], dtype=np.int16), dims=("band", "y", "x")
    )
    out = scale_reflectance(stored, gain=np.array([1e-4, 2e-5]), offset=np.array([0.0, 0.1]))
    assert isinstance(out, xr.DataArray) and out.dtype == np.float32
    np.testing.assert_allclose(out.values, [[[0.01, np.nan]], [[0.5, 0.0999]]], rtol=1e-5)


# --- Gaussian SRF resampling ----------------------------------------------------------------------

centres = st.lists(st.floats(450.0, 2400.0), min_size=1, max_size=20)


@st.composite
def band_tables(draw) -> BandTable:
    wl = np.array(draw(centres))
    fwhm = np.array(draw(st.lists(st.floats(2.0, 40.0), min_size=wl.size, max_size=wl.size)))
    return BandTable(wl, fwhm, np.ones(wl.size, dtype=bool))


@st.composite
def source_axes(draw) -> np.ndarray:
    step = draw(st.floats(0.5, 15.0))
    start = draw(st.floats(300.0, 420.0))
    return np.arange(start, 2500.0, step)


@settings(max_examples=50, deadline=None)
@given(band_tables(), source_axes(), st.floats(-1e3, 1e3))
def test_resampling_constant_gives_constant(target: BandTable, src: np.ndarray, value: float):
    out = resample_to_bands(np.full((2, src.size), value), src, target)
    assert out.shape == (2, target.n_bands)
    np.testing.assert_allclose(out, value, rtol=1e-9, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(band_tables(), st.data(), st.floats(-10, 10), st.floats(-10, 10))
def test_resampling_is_linear(target: BandTable, data, a: float, b: float):
    src = np.arange(400.0, 2500.0, 5.0)
    x, y = (data.draw(arrays(np.float64, src.size, elements=st.floats(-1, 1))) for _ in range(2))
    lhs = resample_to_bands(a * x + b * y, src, target)
    rhs = a * resample_to_bands(x, src, target) + b * resample_to_bands(y, src, target)
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)


def test_resampling_linear_ramp_returns_centre_values():
    src = np.arange(350.0, 2501.0)  # 1 nm lab VNIR
    table = BandTable.from_band_tags(str(TILE))
    ramp = 0.1 + 1e-4 * src
    out = resample_to_bands(ramp, src, table)
    np.testing.assert_allclose(out, 0.1 + 1e-4 * table.wavelength, rtol=1e-6)


def test_resampling_unmeasured_bands_are_nan():
    target = BandTable(np.array([500.0, 1400.0, 2000.0]), np.array([10.0, 10.0, 10.0]), np.ones(3, bool))
    # a sensor that skipped the 1350-1450 nm window and stops at 1800 nm
    src = np.concatenate([np.arange(400.0, 1350.0, 10.0), np.arange(1450.0, 1800.0, 10.0)])
    out = resample_to_bands(np.ones(src.size), src, target)
    assert out[0] == pytest.approx(1.0)
    assert np.isnan(out[1:]).all()


def test_resampling_skips_nan_samples():
    src = np.arange(400.0, 700.0)
    values = np.full(src.size, 0.25)
    values[100] = np.nan  # one dropped sample at 500 nm inside a 20 nm wide band
    target = BandTable(np.array([500.0]), np.array([20.0]), np.ones(1, bool))
    assert resample_to_bands(values, src, target)[0] == pytest.approx(0.25)


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(12))))
def test_srf_weights_follow_the_source_band_order(order: list[int]):
    """EnMAP lists the VNIR detector's bands, then the SWIR's: weights do not depend on the order."""
    src = np.array([900.0, 910.0, 920.0, 930.0, 902.0, 911.8, 919.8, 928.0, 936.1, 944.2, 952.4, 960.5])
    target = BandTable(np.array([905.0, 925.0, 950.0]), np.full(3, 10.0), np.ones(3, bool))
    order = np.array(order)
    np.testing.assert_allclose(srf_weights(src[order], target), srf_weights(src, target)[:, order])
    values = np.sin(src / 50.0)
    np.testing.assert_allclose(
        resample_to_bands(values[order], src[order], target), resample_to_bands(values, src, target)
    )


def test_match_bands_fills_a_band_from_its_neighbours_or_says_it_is_missing():
    target = BandTable(np.array([1000.0, 1100.0, 1300.0]), np.full(3, 10.0), np.ones(3, bool))
    src = np.arange(900.0, 1400.0, 10.0)
    gap_near = (src > 1085) & (src < 1115)  # 1090-1110 gone: neighbours 15 nm away
    gap_far = (src > 1260) & (src < 1340)  # 1270-1330 gone: neighbours 40 nm away
    kept = src[~(gap_near | gap_far)]
    match = match_bands(kept, target)
    assert match.filled.tolist() == [False, True, False]
    assert match.missing.tolist() == [False, False, True]
    ramp = 0.2 + 1e-4 * kept
    assert (match.weights @ ramp)[1] == pytest.approx(0.2 + 1e-4 * 1100.0)  # linear between 1080 and 1120
    assert 1120.0 - 1080.0 <= FILL_GAP_NM < 1340.0 - 1260.0


def test_resampling_rejects_axis_length_mismatch():
    target = BandTable(np.array([500.0]), np.array([10.0]), np.ones(1, bool))
    with pytest.raises(ValueError, match="3 samples but the wavelength axis has 2"):
        resample_to_bands(np.ones(3), np.array([400.0, 500.0]), target)


# --- MIR grids ------------------------------------------------------------------------------------


def test_kssl_grid_matches_ossl_columns():
    header = OSSL_MIR.read_text().splitlines()[0].split(",")[1:]
    columns = np.array(header, dtype=float)
    assert KSSL_WAVENUMBERS.size == columns.size == 1765
    np.testing.assert_allclose(KSSL_WAVENUMBERS, columns, atol=1e-3)
    assert KSSL_WAVENUMBERS[0] == pytest.approx(4001.7, abs=0.05)
    assert KSSL_WAVENUMBERS[-1] == pytest.approx(599.8, abs=0.05)


@settings(max_examples=30, deadline=None)
@given(st.floats(-5, 5), st.floats(-1e-3, 1e-3), st.booleans())
def test_interpolate_mir_is_exact_for_linear_spectra(a: float, b: float, ascending: bool):
    alpha = np.linspace(3997.0, 500.0, 1716)  # Bruker ALPHA-like grid
    if ascending:
        alpha = alpha[::-1]
    out = interpolate_mir(np.stack([a + b * alpha, np.full(alpha.size, a)]), alpha)
    inside = KSSL_WAVENUMBERS <= 3997.0
    np.testing.assert_allclose(out[0, inside], a + b * KSSL_WAVENUMBERS[inside], atol=1e-9)
    np.testing.assert_allclose(out[1, inside], a, atol=1e-12)
    assert np.isnan(out[:, ~inside]).all()  # not measured above 3997 cm⁻¹: no extrapolation


# --- against USGS's own sensor convolution ---------------------------------------------------------

USGS_AV95 = FIXTURES / "speclib" / "usgs_splib07_av95_subset.csv"
USGS_ASD_1NM = FIXTURES / "speclib" / "mineralRef_usgs.csv"


@pytest.mark.parametrize(
    ("column", "library_name"),
    [
        ("Geothite", "Goethite GDS134 ASDFRb AREF"),
        ("hematite", "Hematite GDS27 BECKa AREF"),
        ("gypsum", "Gypsum HS333.3B (Selenite) BECKa AREF"),
        ("calcite", "Calcite WS272 BECKa AREF"),
        ("kaolinite_114", "Kaolinite KGa-2 (pxl) BECKb AREF"),
        ("kaolinite_113", "Kaolinite CM9 BECKb AREF"),
    ],
)
def test_1nm_mineral_spectra_resample_to_usgs_aviris_convolution(column: str, library_name: str):
    """USGS splib07 ships the same mineral samples convolved to AVIRIS-95 bands; our Gaussian SRFs
    applied to the 1 nm versions must reproduce them."""
    library = pd.read_csv(USGS_AV95).set_index("name")
    wavelength_um = library.iloc[0].to_numpy(float)
    fwhm_um = library.iloc[1].to_numpy(float)
    aviris = BandTable(wavelength_um * 1000, fwhm_um * 1000, np.ones(wavelength_um.size, bool))
    reference = library.loc[library_name].to_numpy(float, copy=True)
    reference[reference < -1e30] = np.nan  # splib07's deleted-point value
    lab = pd.read_csv(USGS_ASD_1NM)
    ours = resample_to_bands(lab[column].to_numpy(float), lab["wavelength"].to_numpy(float), aviris)
    both = np.isfinite(ours) & np.isfinite(reference)
    assert both.sum() >= 200  # 350-2500 nm covers all but AVIRIS's outermost bands
    difference = ours[both] - reference[both]
    assert np.sqrt(np.mean(difference**2)) < 0.002
    assert np.abs(difference).max() < 0.01
