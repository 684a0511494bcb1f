"""Pyramid levels derived level by level equal the same statistics taken over the full-resolution
pixels each coarse pixel covers: NaN-aware means and the bitwise AND of the quality flags."""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS

from deepsalt.mapping.grid import Grid
from deepsalt.mapping.pyramid import FLOAT_VARS, downsampled, level_grids
from deepsalt.mapping.quality import Quality


def full_resolution(height: int, width: int, nan_share: float, seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    data = {}
    for name in FLOAT_VARS:
        values = rng.lognormal(0.0, 1.0, (height, width)).astype(np.float32)
        values[rng.random((height, width)) < nan_share] = np.nan
        data[name] = (("y", "x"), values)
    # a few flags, so that some survive an AND over small blocks
    bits = np.array([int(flag) for flag in Quality], dtype=np.uint8)
    quality = np.zeros((height, width), np.uint8)
    for bit in bits:
        quality |= np.where(rng.random((height, width)) < 0.8, bit, 0).astype(np.uint8)
    data["quality"] = (("y", "x"), quality)
    return xr.Dataset(data)


def direct_and(quality: np.ndarray, factor: int) -> np.ndarray:
    """Per coarse pixel, the flags every full-resolution pixel under it has (no padding counted)."""
    h, w = quality.shape
    out = np.zeros((-(-h // factor), -(-w // factor)), np.uint8)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = quality[i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
            out[i, j] = np.bitwise_and.reduce(block.ravel())
    return out


@settings(max_examples=16, deadline=None)
@given(
    height=st.integers(5, 37),
    width=st.integers(5, 37),
    nan_share=st.sampled_from([0.0, 0.3, 0.9]),
    seed=st.integers(0, 2**16),
    layout=st.sampled_from([(8, 16), (512, 4096)]),  # several chunks per level, or one odd-sized chunk
    in_memory=st.booleans(),  # build_pyramid loads a small map and computes it without dask
)
def test_each_level_is_the_statistic_over_the_full_resolution_pixels_it_covers(
    height, width, nan_share, seed, layout, in_memory
):
    chunk, shard = layout
    ds = full_resolution(height, width, nan_share, seed)
    if not in_memory:
        ds = ds.chunk({"y": chunk, "x": chunk})
    grid = Grid(CRS.from_epsg(5070), 0.0, 0.0, 30.0, height, width)
    grids = level_grids(grid, 2)
    # one graph for all levels, as build_pyramid writes them
    lazy = list(downsampled(ds, grids, chunk=chunk, shard=shard))
    assert all((level["ece"].chunks is None) == in_memory for level in lazy)
    levels = dask.compute(*lazy)
    assert len(levels) == len(grids) >= 2
    full = {name: ds[name].values for name in (*FLOAT_VARS, "quality")}
    for level, (coarse, level_grid) in enumerate(zip(levels, grids, strict=True), start=1):
        factor = 2**level
        assert coarse["ece"].shape == level_grid.shape
        for name in FLOAT_VARS:
            expected = (
                xr.DataArray(full[name], dims=("y", "x"))
                .coarsen(y=factor, x=factor, boundary="pad")
                .mean()
                .values
            )
            np.testing.assert_allclose(coarse[name].values, expected, rtol=2e-6)  # NaN where none is valid
        np.testing.assert_array_equal(coarse["quality"].values, direct_and(full["quality"], factor))
