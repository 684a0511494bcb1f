"""Mid-infrared wavenumber grids: every lab MIR spectrum is brought onto one grid.

KSSL/OSSL spectra are sampled on 1765 evenly spaced wavenumbers from 4001.656 to 599.7661 cm⁻¹
(the column names of the OSSL MIR tables, to their printed 3-4 decimals). Other instruments
(e.g. Bruker ALPHA, 1716 points) are interpolated onto it.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import interp1d

KSSL_WAVENUMBERS: np.ndarray = np.linspace(4001.656, 599.7661, 1765)
KSSL_WAVENUMBERS.setflags(write=False)


def interpolate_mir(
    values: np.ndarray, wavenumbers: np.ndarray, target: np.ndarray = KSSL_WAVENUMBERS
) -> np.ndarray:
    """Linearly interpolate spectra ``[..., n_src]`` from ``wavenumbers`` (cm⁻¹) onto ``target``.

    Either axis may be ascending or descending. Target points outside the source range are NaN:
    an instrument that did not measure there says nothing about it, and extrapolating would invent
    absorbance.
    """
    values = np.asarray(values, dtype=float)
    wavenumbers = np.asarray(wavenumbers, dtype=float)
    if values.shape[-1] != wavenumbers.size:
        raise ValueError(f"spectra have {values.shape[-1]} points but the axis has {wavenumbers.size}")
    order = np.argsort(wavenumbers)
    interpolator = interp1d(
        wavenumbers[order],
        values[..., order],
        axis=-1,
        bounds_error=False,
        fill_value=np.nan,
        assume_sorted=True,
    )
    return interpolator(np.asarray(target, dtype=float))
