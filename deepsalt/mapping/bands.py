"""From a scene's stored band values to the student's input: scale, drop bad bands, match bands.

The student was trained on one band axis (``predictor.wavelength``). When those bands are among
the scene's usable bands they are picked directly; otherwise the scene's usable bands are
resampled onto the student's axis with Gaussian SRFs. Bad bands (``bbl``) and the water-vapour
windows never enter the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepsalt.errors import InputDataError
from deepsalt.spectra import REFLECTANCE_SCALE, BandTable, scale_reflectance, srf_weights
from deepsalt.spectra.resample import MIN_COVERAGE

# Reflectance beyond this range on a usable band is an artefact, not ground (flagged OUT_OF_RANGE).
PLAUSIBLE_RANGE = (-0.05, 1.2)
# Two band centres closer than this (nm) are the same band.
SAME_BAND_NM = 0.5


@dataclass(frozen=True)
class BandMatcher:
    """Maps (n, scene bands) stored values to (n, student bands) reflectance for one band table."""

    n_bands: int  # bands in the scene's table
    usable: np.ndarray  # indices of the scene's usable bands
    gain: np.ndarray  # per usable band
    offset: np.ndarray
    nodata: float
    pick: np.ndarray | None  # student band -> position among usable bands (direct match)
    weights: np.ndarray | None  # (student bands, usable bands) row-normalised SRF weights

    @classmethod
    def build(cls, table: BandTable, target: np.ndarray, nodata: float, source: str) -> BandMatcher:
        """``source`` names the scene in errors."""
        usable = np.flatnonzero(table.usable())
        n = usable.size
        gain = np.full(n, 1.0 / REFLECTANCE_SCALE) if table.gain is None else table.gain[usable]
        offset = np.zeros(n) if table.offset is None else table.offset[usable]
        target = np.asarray(target, dtype=np.float64)
        distance = np.abs(table.wavelength[usable][None, :] - target[:, None])
        nearest = distance.argmin(axis=1)
        if np.all(distance[np.arange(target.size), nearest] < SAME_BAND_NM):
            return cls(table.n_bands, usable, gain, offset, nodata, nearest, None)
        widths = table.fwhm[np.abs(table.wavelength[None, :] - target[:, None]).argmin(axis=1)]
        weights = srf_weights(table.wavelength[usable], BandTable(target, widths, np.ones(target.size, bool)))
        coverage = weights.sum(axis=1)
        if np.any(coverage < MIN_COVERAGE):
            missing = ", ".join(f"{w:.1f}" for w in target[coverage < MIN_COVERAGE][:5])
            raise InputDataError(
                source,
                f"no usable band near the student's band(s) at {missing} nm (bad or water-vapour bands)",
            )
        weights = weights / coverage[:, None]
        return cls(table.n_bands, usable, gain, offset, nodata, None, weights.astype(np.float32))

    def reflectance(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reflectance (n, student bands) float32 with NaN = nodata, out-of-range mask (n,))."""
        stored = raw[:, self.usable]
        physical = stored * self.gain.astype(np.float32) + self.offset.astype(np.float32)
        out_of_range = (
            ((physical < PLAUSIBLE_RANGE[0]) | (physical > PLAUSIBLE_RANGE[1])) & (stored != self.nodata)
        ).any(axis=1)
        # scale_reflectance wants bands on axis -3: (bands, n, 1).
        scaled = scale_reflectance(stored.T[..., None], self.nodata, self.gain, self.offset)[..., 0].T
        matched = scaled[:, self.pick] if self.pick is not None else scaled @ self.weights.T
        return np.ascontiguousarray(matched, dtype=np.float32), out_of_range
