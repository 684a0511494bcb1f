"""Score a finished map against a truth raster, on pixels the model never trained on.

The demo world knows its true ECe everywhere; the map is scored on every predicted pixel except
those within ``exclusion_px`` pixels of a lab sample (those pixels were paired with samples and
trained on). The truth is resampled onto the map's grid when the grids differ.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from pyproj import Transformer

from deepsalt.evaluation.metrics import interval_coverage, regression_metrics
from deepsalt.models.target import Transform


def training_pixel_mask(lat: np.ndarray, lon: np.ndarray, ds: xr.Dataset, exclusion_px: int) -> np.ndarray:
    """Boolean (y, x) mask, True within ``exclusion_px`` pixels of any sample location."""
    to_grid = Transformer.from_crs("EPSG:4326", ds.rio.crs, always_xy=True)
    gx, gy = to_grid.transform(np.asarray(lon), np.asarray(lat))
    transform = ds.rio.transform()
    cols, rows = ~transform * (gx, gy)
    rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
    mask = np.zeros((ds.sizes["y"], ds.sizes["x"]), dtype=bool)
    for dr in range(-exclusion_px, exclusion_px + 1):
        for dc in range(-exclusion_px, exclusion_px + 1):
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < mask.shape[0]) & (c >= 0) & (c < mask.shape[1])
            mask[r[inside], c[inside]] = True
    return mask


def score_map(
    store_url: str,
    truth_url: str,
    sample_lat: np.ndarray,
    sample_lon: np.ndarray,
    exclusion_px: int = 1,
    transform: Transform = "log1p",
) -> dict[str, float]:
    """MAE, RMSE, R² and interval coverage of the map against the truth, on unseen pixels.

    ``transform`` is the student's target space (``log1p`` by default), which shapes its intervals.
    """
    import rioxarray  # registers .rio on xarray objects

    from deepsalt.mapping.pyramid import open_level

    ds = open_level(store_url)
    truth = rioxarray.open_rasterio(truth_url, masked=True).squeeze("band", drop=True)
    if truth.rio.crs != ds.rio.crs or truth.shape != ds.ece.shape:
        truth = truth.rio.reproject_match(ds.ece)
    observed = truth.values.astype("float64")
    predicted = ds.ece.values.astype("float64")
    spread = ds.ece_std.values.astype("float64")
    used = training_pixel_mask(sample_lat, sample_lon, ds, exclusion_px)
    scored = np.isfinite(predicted) & np.isfinite(observed) & np.isfinite(spread) & ~used
    metrics = regression_metrics(observed[scored], predicted[scored])
    coverage = interval_coverage(observed[scored], predicted[scored], spread[scored], transform=transform)
    return {
        **metrics,
        "coverage_68": coverage[0.68],
        "coverage_95": coverage[0.95],
        "pixels_predicted": int(np.isfinite(predicted).sum()),
        "pixels_excluded_as_training": int((used & np.isfinite(predicted)).sum()),
    }
