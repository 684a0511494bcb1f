"""Evaluation building blocks: per-sample metrics, salinity ranges, coverage, texture/climate classes, blocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsalt.evaluation.blocks import block_folds, block_ids
from deepsalt.evaluation.classes import (
    TEXTURE_GROUPS,
    aridity_index,
    climate_class,
    texture_group,
    usda_texture,
)
from deepsalt.evaluation.harness import check_prediction
from deepsalt.evaluation.metrics import (
    SALINITY_LABELS,
    grouped_metrics,
    interval_coverage,
    regression_metrics,
    salinity_range,
)
from deepsalt.evaluation.models import Prediction


def test_regression_metrics_match_hand_computation():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.5, 2.0, 3.0, 10.0])
    m = regression_metrics(y, p)
    assert m["n"] == 4
    assert m["mae"] == pytest.approx((0.5 + 0 + 1 + 2) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1 + 4) / 4))
    assert m["r2"] == pytest.approx(1 - 5.25 / np.sum((y - y.mean()) ** 2))
    ly, lp = np.log1p(y), np.log1p(p)
    assert m["r2_log"] == pytest.approx(1 - np.sum((ly - lp) ** 2) / np.sum((ly - ly.mean()) ** 2))


def test_grouped_metrics_are_per_sample_not_per_batch():
    """Groups of unequal size with per-sample errors: the group MAE is the mean over its samples.

    The reference code scored each group with one prediction per batch; a per-batch mean would
    give 0 error for group "a" here (its predictions average to its observations).
    """
    y = np.array([1.0, 3.0, 10.0, 10.0, 10.0])
    p = np.array([2.0, 2.0, 11.0, 13.0, 7.0])
    table = grouped_metrics(y, p, ["a", "a", "b", "b", "b"]).set_index("group")
    assert table.loc["a", "n"] == 2 and table.loc["b", "n"] == 3
    assert table.loc["a", "mae"] == pytest.approx(1.0)
    assert table.loc["b", "mae"] == pytest.approx((1 + 3 + 3) / 3)
    assert table.loc["b", "rmse"] == pytest.approx(np.sqrt((1 + 9 + 9) / 3))


def test_one_prediction_per_batch_is_refused():
    with pytest.raises(ValueError, match="one prediction per sample"):
        regression_metrics(np.arange(8.0), np.array([3.5]))
    with pytest.raises(ValueError, match="one group label per sample"):
        grouped_metrics(np.arange(4.0), np.arange(4.0), ["a", "b"])
    with pytest.raises(ValueError, match="model 'm' returned mean of shape \\(2,\\) for 8 test samples"):
        check_prediction(Prediction(np.zeros(2)), 8, "m")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 60), min_size=1, max_size=40), st.integers(0, 4))
def test_grouped_counts_add_up_and_empty_groups_are_reported(values, seed):
    y = np.asarray(values)
    p = y + np.random.default_rng(seed).normal(size=y.size)
    table = grouped_metrics(y, p, salinity_range(y), order=SALINITY_LABELS)
    assert list(table["group"]) == list(SALINITY_LABELS)
    assert table["n"].sum() == y.size
    overall = regression_metrics(y, p)
    assert (table["n"] * table["mae"]).sum(skipna=True) / y.size == pytest.approx(overall["mae"])


def test_salinity_range_edges():
    got = salinity_range([0.0, 1.99, 2.0, 3.9, 4.0, 8.0, 15.9, 16.0, 40.0])
    assert list(got) == ["0–2", "0–2", "2–4", "2–4", "4–8", "8–16", "8–16", ">16", ">16"]


def test_interval_coverage_of_a_calibrated_gaussian():
    rng = np.random.default_rng(0)
    sd = rng.uniform(0.5, 3, 20000)
    y = rng.normal(5, sd)
    cover = interval_coverage(y, np.full_like(y, 5.0), sd)
    assert cover[0.68] == pytest.approx(0.68, abs=0.01)
    assert cover[0.95] == pytest.approx(0.95, abs=0.01)
    over = interval_coverage(y, np.full_like(y, 5.0), sd / 3)
    assert over[0.95] < 0.6


@pytest.mark.parametrize(
    ("sand", "clay", "name"),
    [
        (92, 3, "sand"),
        (82, 6, "loamy sand"),
        (65, 10, "sandy loam"),
        (40, 20, "loam"),
        (20, 15, "silt loam"),
        (5, 5, "silt"),
        (60, 25, "sandy clay loam"),
        (35, 33, "clay loam"),
        (10, 33, "silty clay loam"),
        (50, 40, "sandy clay"),
        (5, 50, "silty clay"),
        (20, 60, "clay"),
    ],
)
def test_usda_texture_at_class_centres(sand, clay, name):
    assert usda_texture(sand, clay) == name


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 100), st.floats(0, 100))
def test_every_point_of_the_triangle_gets_one_coarse_class(sand, clay):
    clay = min(clay, 100 - sand)
    assert texture_group(np.array([sand]), np.array([clay]))[0] in TEXTURE_GROUPS


def test_texture_rejects_impossible_fractions():
    with pytest.raises(ValueError, match="sand \\+ clay ≤ 100"):
        usda_texture([70.0], [40.0])


def test_climate_classes_from_de_martonne_index():
    # 12 * P / (T + 10): 12*10/30 = 4 arid; 12*20/25 = 9.6 arid; 12*30/25 = 14.4 semi-arid; 12*60/20 = 36 humid
    assert aridity_index(20.0, 10.0) == pytest.approx(4.0)
    got = climate_class([20, 15, 15, 15, 10], [10, 20, 30, 50, 60])
    assert list(got) == ["arid", "arid", "semi-arid", "sub-humid", "humid"]


def _grid_points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(36.3, 36.6, n), rng.uniform(-120.5, -120.2, n)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 1000), st.sampled_from([1.0, 2.5, 5.0]), st.integers(2, 5))
def test_no_block_on_both_sides_of_any_fold(seed, size_km, n_folds):
    lat, lon = _grid_points(300, seed)
    blocks = block_ids(lat, lon, "EPSG:32611", size_km)
    folds = block_folds(blocks, n_folds, seed)
    assert len(folds) == n_folds
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(300))  # every sample held out exactly once
    for train, test in folds:
        assert not set(blocks[train]) & set(blocks[test])


def test_blocks_are_square_cells_of_the_projected_grid():
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:32611", "EPSG:4326", always_xy=True)
    lon, lat = to_utm.transform(
        [701000.0, 702900.0, 703100.0, 701000.0], [4000100.0, 4001900.0, 4000100.0, 4002100.0]
    )
    assert list(block_ids(lat, lon, "EPSG:32611", 2.0)) == ["350_2000", "351_2000", "351_2000", "350_2001"]


def test_blocks_need_a_projected_crs_and_enough_blocks():
    lat, lon = _grid_points(20, 0)
    with pytest.raises(ValueError, match="projected CRS"):
        block_ids(lat, lon, "EPSG:4326", 2.0)
    with pytest.raises(ValueError, match="1 spatial blocks cannot make 3 folds"):
        block_folds(np.array(["0_0"] * 20), 3)


def test_log1p_coverage_uses_the_skewed_interval_of_the_model():
    """DeepSalt's spread is Gaussian in log1p space: a symmetric dS/m interval would miss high values."""
    rng = np.random.default_rng(1)
    m, s = np.full(20000, np.log1p(4.0)), np.full(20000, 0.5)
    y = np.expm1(rng.normal(m, s))
    ece, ece_std = np.expm1(m), (1 + np.expm1(m)) * s  # what StudentPredictor returns
    cover = interval_coverage(y, ece, ece_std, transform="log1p")
    assert cover[0.95] == pytest.approx(0.95, abs=0.01)
    assert cover[0.68] == pytest.approx(0.68, abs=0.01)


def test_pixel_values_reads_the_pixel_containing_each_point(tmp_path):
    """Points are WGS84, rasters are projected: the value is that of the containing pixel, NaN
    off every raster or on nodata, and the first raster that has a value wins."""
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    from deepsalt.evaluation.reference import pixel_values

    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    values[3, 3] = np.nan
    transform = from_origin(500_000, 4_000_000, 30, 30)
    paths = []
    for name, data in (("a.tif", values), ("b.tif", values + 100)):
        path = tmp_path / name
        with rasterio.open(
            path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32",
            crs="EPSG:32611", transform=transform, nodata=np.nan,
        ) as dst:  # fmt: skip
            dst.write(data, 1)
        paths.append(str(path))
    # pixel centres (row, col) = (0, 0), (2, 1), (3, 3) [nodata], and a point 1 km off the grid
    x = np.array([500_015, 500_045, 500_105, 501_000])
    y = np.array([3_999_985, 3_999_925, 3_999_895, 4_000_000])
    lon, lat = Transformer.from_crs("EPSG:32611", "EPSG:4326", always_xy=True).transform(x, y)
    got = pixel_values(paths[:1], lon, lat)
    np.testing.assert_array_equal(got[:2], [0.0, 9.0])
    assert np.isnan(got[2:]).all()
    np.testing.assert_array_equal(pixel_values(paths[::-1], lon, lat)[:3], [100.0, 109.0, np.nan])
