"""Score a finished map against a truth raster, on pixels the model never trained on.

The demo world knows its true ECe everywhere; the map is scored on every predicted pixel except
those within ``exclusion_px`` pixels of a lab sample (those pixels were paired with samples and
trained on). The truth is resampled onto the map's grid when the grids differ. Two maps (DeepSalt's
and the best baseline's) are scored on the same pixels: those both predicted.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def score_maps(
    store_urls: Mapping[str, str],
    truth_url: str,
    sample_lat: np.ndarray,
    sample_lon: np.ndarray,
    exclusion_px: int = 1,
    transform: Transform = "log1p",
) -> dict[str, dict[str, float]]:
    """Each map (name → store URL, all on one grid) against the truth, on the same pixels: those
    predicted in every map, with a truth value, and away from the lab samples.

    Per map: n, MAE, RMSE, R², R² of log1p and the 68 %/95 % interval coverage (NaN for a map
    without spread). ``transform`` is the models' target space (``log1p`` for the student and the
    baselines), which shapes their intervals.
    """
    import rioxarray  # registers .rio on xarray objects

    from deepsalt.mapping.pyramid import open_level

    maps = {name: open_level(url) for name, url in store_urls.items()}
    first_name, first = next(iter(maps.items()))
    for name, ds in maps.items():
        if (
            ds.rio.crs != first.rio.crs
            or ds.ece.shape != first.ece.shape
            or ds.rio.transform() != first.rio.transform()
        ):
            raise ValueError(
                f"maps '{first_name}' and '{name}' are not on the same grid: they cannot be compared"
            )
    truth = rioxarray.open_rasterio(truth_url, masked=True).squeeze("band", drop=True)
    if truth.rio.crs != first.rio.crs or truth.shape != first.ece.shape:
        truth = truth.rio.reproject_match(first.ece)
    observed = truth.values.astype("float64")
    used = training_pixel_mask(sample_lat, sample_lon, first, exclusion_px)
    predicted = {name: ds.ece.values.astype("float64") for name, ds in maps.items()}
    common = np.isfinite(observed) & ~used
    for values in predicted.values():
        common &= np.isfinite(values)
    out = {}
    for name, ds in maps.items():
        spread = ds.ece_std.values.astype("float64")[common]
        y, p = observed[common], predicted[name][common]
        has_spread = y.size > 0 and np.isfinite(spread).all()
        coverage = interval_coverage(y, p, spread, transform=transform) if has_spread else {}
        out[name] = {
            **regression_metrics(y, p),
            "coverage_68": coverage.get(0.68, np.nan),
            "coverage_95": coverage.get(0.95, np.nan),
            "pixels_predicted": int(np.isfinite(predicted[name]).sum()),
            "pixels_excluded_as_training": int((used & np.isfinite(predicted[name])).sum()),
        }
    return out


def score_map(
    store_url: str,
    truth_url: str,
    sample_lat: np.ndarray,
    sample_lon: np.ndarray,
    exclusion_px: int = 1,
    transform: Transform = "log1p",
) -> dict[str, float]:
    """One map against the truth (:func:`score_maps`)."""
    return score_maps({"map": store_url}, truth_url, sample_lat, sample_lon, exclusion_px, transform)["map"]
