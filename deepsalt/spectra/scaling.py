"""Reflectance scaling: EnMAP L2A stores reflectance x 10000 with a nodata sentinel.

In memory every satellite spectrum is float32 reflectance in [0, 1] with NaN for nodata
(see ARCHITECTURE.md, "Spectra"); this module is the one place that conversion happens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

REFLECTANCE_SCALE = 10000
ENMAP_NODATA = -32768


def scale_reflectance(
    stored: Any,
    nodata: float | None = ENMAP_NODATA,
    gain: np.ndarray | float | None = None,
    offset: np.ndarray | float | None = None,
) -> Any:
    """Stored values (``[..., band, y, x]`` or any shape) → float32 reflectance in [0, 1], NaN = nodata.

    ``gain``/``offset`` are per band (broadcast over the last two axes when they are arrays),
    defaulting to 1/REFLECTANCE_SCALE and 0. Works on numpy, dask and xarray objects alike; the
    result is clipped to [0, 1] because L2A carries small negative/over-one artefacts that are not
    physical reflectance.
    """
    gain = 1.0 / REFLECTANCE_SCALE if gain is None else gain
    offset = 0.0 if offset is None else offset
    gain = _per_band(gain)
    offset = _per_band(offset)
    values = stored.astype(np.float32)
    invalid = ~np.isfinite(values)
    if nodata is not None:
        invalid = invalid | (values == np.float32(nodata))
    scaled = (values * gain + offset).clip(0.0, 1.0)
    return _mask(scaled, invalid)


def _per_band(value: np.ndarray | float) -> np.ndarray | np.float32:
    array = np.asarray(value, dtype=np.float32)
    return array.reshape(-1, 1, 1) if array.ndim == 1 else array


def _mask(values: Any, invalid: Any) -> Any:
    if hasattr(values, "where"):  # xarray
        return values.where(~invalid).astype(np.float32)
    return np.where(invalid, np.float32(np.nan), values).astype(np.float32)
