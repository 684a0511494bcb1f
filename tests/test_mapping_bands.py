"""BandMatcher on real EnMAP band tables: products as they come, against a student's model axis.

The student axis is the model axis of the pre-launch product (what the demo's generator uses);
the scenes are the Potsdam tile (v1.3.2, VNIR then SWIR, overlapping) and variants of it with
extra bad bands, shifted centres or a hole the rule cannot fill.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsalt.errors import InputDataError
from deepsalt.mapping.bands import BandMatcher, BandMatchers
from deepsalt.spectra import ENMAP_NODATA, BandTable
from deepsalt.spectra.resample import FILL_GAP_NM
from tests.support.enmap_fixtures import METADATA_XML, TILE

STUDENT = BandTable.from_metadata_xml(str(METADATA_XML)).model_axis().wavelength
POTSDAM = BandTable.from_band_tags(str(TILE))


def tile_pixels() -> np.ndarray:
    with rasterio.open(TILE) as ds:
        return ds.read().reshape(ds.count, -1).T  # (1024, 224) stored values, file order


def ramp(wavelength: np.ndarray) -> np.ndarray:
    """Stored values of a reflectance that rises linearly with wavelength (0.1 at 400 nm)."""
    return (0.1 + 1e-4 * (wavelength - 400.0)) * 10000.0


def test_file_order_table_with_overlap_maps():
    assert np.any(np.diff(POTSDAM.wavelength) < 0)  # VNIR, then SWIR from 902 nm
    matcher = BandMatcher.build(POTSDAM, STUDENT, ENMAP_NODATA, "potsdam.tif")
    assert matcher.pick is None and matcher.filled == ()
    reflectance, out_of_range = matcher.reflectance(ramp(POTSDAM.wavelength)[None, :])
    np.testing.assert_allclose(reflectance[0], 0.1 + 1e-4 * (STUDENT - 400.0), atol=2e-3)
    assert not out_of_range.any()
    real, _ = matcher.reflectance(tile_pixels())
    assert real.shape == (1024, STUDENT.size) and np.isfinite(real).all()


def test_the_training_product_itself_is_picked_not_resampled():
    table = BandTable.from_metadata_xml(str(METADATA_XML))
    matcher = BandMatcher.build(table, STUDENT, ENMAP_NODATA, "x")
    assert matcher.pick is not None
    np.testing.assert_array_equal(table.wavelength[matcher.usable][matcher.pick], STUDENT)


@settings(max_examples=25, deadline=None)
@given(st.floats(-3.0, 3.0).filter(lambda s: abs(s) >= 1.0))
def test_centres_shifted_by_one_to_three_nm_map_without_filling(shift: float):
    table = replace(POTSDAM, wavelength=POTSDAM.wavelength + shift)
    matcher = BandMatcher.build(table, STUDENT, ENMAP_NODATA, "shifted.tif")
    assert matcher.filled == ()
    reflectance, _ = matcher.reflectance(ramp(table.wavelength)[None, :])
    np.testing.assert_allclose(reflectance[0], 0.1 + 1e-4 * (STUDENT - 400.0), atol=2e-3)


def test_one_extra_bad_band_is_bridged_by_resampling():
    good = POTSDAM.good.copy()
    good[np.argmin(np.abs(POTSDAM.wavelength - 2200.0))] = False
    matcher = BandMatcher.build(replace(POTSDAM, good=good), STUDENT, ENMAP_NODATA, "x")
    assert matcher.filled == ()


def test_adjacent_extra_bad_bands_are_filled_and_reported():
    good = POTSDAM.good & ~((POTSDAM.wavelength > 2190) & (POTSDAM.wavelength < 2220))  # 3 bands
    table = replace(POTSDAM, good=good)
    matcher = BandMatcher.build(table, STUDENT, ENMAP_NODATA, "x")
    assert matcher.filled and all(2190 < w < 2220 for w in matcher.filled)
    reflectance, _ = matcher.reflectance(ramp(table.wavelength)[None, :])
    np.testing.assert_allclose(reflectance[0], 0.1 + 1e-4 * (STUDENT - 400.0), atol=2e-3)


def test_a_hole_wider_than_the_fill_distance_names_scene_and_band():
    hole = (POTSDAM.wavelength > 2150) & (POTSDAM.wavelength < 2150 + 2 * FILL_GAP_NM)
    table = replace(POTSDAM, good=POTSDAM.good & ~hole)
    with pytest.raises(
        InputDataError,
        match=r"scene-42\.tif: cannot give the model's band\(s\) at 21\d\d\.\d, .* within 50 nm",
    ):
        BandMatcher.build(table, STUDENT, ENMAP_NODATA, "scene-42.tif")


def test_water_by_spectrum_on_the_real_tile():
    """Tile 128_0 has no open water: nothing of it may be called water."""
    matcher = BandMatcher.build(POTSDAM, STUDENT, ENMAP_NODATA, "x")
    reflectance, _ = matcher.reflectance(tile_pixels())
    assert not matcher.water(reflectance).any()
    lake = np.interp(STUDENT, [400, 700, 860, 1600, 2400], [0.06, 0.03, 0.02, 0.005, 0.003])
    assert matcher.water(lake[None, :]).tolist() == [True]


def test_an_actor_keeps_one_matcher_per_band_table_not_per_scene():
    """Scenes of one product share a matcher; many products keep only the most recent ones."""
    matchers = BandMatchers(STUDENT, kept=4)
    extra_bad = replace(POTSDAM, good=POTSDAM.good & (np.abs(POTSDAM.wavelength - 2200.0) > 5))
    products = [POTSDAM, replace(POTSDAM, wavelength=POTSDAM.wavelength + 1.5), extra_bad]
    for scene in range(30):
        table = products[scene % 3]
        # Each scene's own copy of its product's table (as read from its own metadata).
        copy = replace(table, wavelength=table.wavelength.copy(), good=table.good.copy())
        matcher = matchers.get(copy, ENMAP_NODATA, f"scene-{scene}.tif")
        assert matcher.pick is None and matcher.usable.tolist() == np.flatnonzero(table.usable()).tolist()
    assert len(matchers) == 3
    for shift in np.linspace(1.0, 3.0, 10):
        matchers.get(replace(POTSDAM, wavelength=POTSDAM.wavelength + shift), ENMAP_NODATA, "x")
    assert len(matchers) == 4
    assert (
        matchers.get(products[0], ENMAP_NODATA + 1, "x").nodata == ENMAP_NODATA + 1
    )  # nodata is part of the key


def test_a_refused_band_table_is_refused_under_each_scenes_own_name():
    hole = (POTSDAM.wavelength > 2150) & (POTSDAM.wavelength < 2150 + 2 * FILL_GAP_NM)
    table = replace(POTSDAM, good=POTSDAM.good & ~hole)
    matchers = BandMatchers(STUDENT)
    for name in ("scene-1", "scene-2"):
        with pytest.raises(InputDataError, match=rf"{name}\.tif: cannot give the model's band"):
            matchers.get(table, ENMAP_NODATA, f"{name}.tif")
    assert len(matchers) == 0
