"""Users' tables as the estimator reads them: the spectrum's columns, covariates, pre-treatments,
and the shipped soil spectra put on the user's spectral axis for pretraining.

``X`` holds the spectrum first (its columns in any order along ``wavelengths``), then covariate
columns. ``wavelengths=None``: every column is a band; an empty ``wavelengths``: no spectrum, every
column is a covariate (digital soil mapping tables of terrain, climate and remote-sensing values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter

PRETREATMENTS = ("none", "snv", "sg1")
"""Row-wise spectral pre-treatments: unchanged, standard normal variate, Savitzky–Golay 1st derivative."""

DATA = Path(__file__).resolve().parent.parent / "data"
LIBRARY_PARTS = ("icraf_vnir", "ossl_kssl_mir", "yamsys_mir")
"""The unlabelled soil spectra DeepSalt ships (``deepsalt/data/SOURCES.md``)."""
MIN_COVERAGE = 0.8
"""Least share of the user's spectral range a library part must span to be used for pretraining."""
MIN_SHAPE_CORRELATION = 0.5
"""Least correlation of a library part's mean derivative spectrum with the user's (same kind of spectra)."""


def pretreat(spectra: np.ndarray, method: str) -> np.ndarray:
    """Row-wise pre-treatment (no statistics learnt across rows, so none leak between folds).

    ``snv`` removes multiplicative scatter, ``sg1`` (Savitzky–Golay first derivative, window 11,
    quadratic) removes baseline offsets; spectra of fewer than 3 bands are returned unchanged.
    """
    if method not in PRETREATMENTS:
        raise ValueError(f"pre-treatment must be one of {PRETREATMENTS}, got {method!r}")
    if method == "none" or spectra.shape[1] < 3:
        return spectra
    if method == "snv":
        centred = spectra - spectra.mean(axis=1, keepdims=True)
        scale = spectra.std(axis=1, keepdims=True)
        return centred / np.where(scale > 0, scale, 1.0)
    window = min(11, spectra.shape[1] - (1 - spectra.shape[1] % 2))
    return savgol_filter(spectra, window, polyorder=2, deriv=1, axis=1)


@dataclass(frozen=True)
class ColumnLayout:
    """Where the spectrum and the covariates are in ``X``."""

    order: np.ndarray
    """Spectral columns of X in ascending axis order."""
    axis: np.ndarray | None
    """The ascending spectral axis (None when the user gave none)."""
    n_columns: int

    @classmethod
    def from_wavelengths(cls, wavelengths: Sequence[float] | None, n_columns: int) -> ColumnLayout:
        if wavelengths is None:
            return cls(np.arange(n_columns), None, n_columns)
        axis = np.asarray(wavelengths, dtype=float).ravel()
        if not np.all(np.isfinite(axis)) or np.unique(axis).size != axis.size:
            raise ValueError("wavelengths must be finite and distinct")
        if axis.size > n_columns:
            raise ValueError(
                f"X has {n_columns} columns but {axis.size} wavelengths were given: "
                "X must hold the spectrum first, then optional covariate columns"
            )
        order = np.argsort(axis)
        return cls(order, axis[order], n_columns)

    @property
    def n_bands(self) -> int:
        return self.order.size

    @property
    def n_covariates(self) -> int:
        return self.n_columns - self.n_bands

    def split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(spectra in axis order, covariates) of the rows of ``X``."""
        return X[:, self.order], X[:, self.n_bands :]


def axis_unit(axis: np.ndarray) -> str:
    """``cm-1`` for a mid-infrared wavenumber axis, ``nm`` for a vis-NIR wavelength axis.

    Soil vis-NIR ends at 2500 nm; MIR axes reach 4000 cm⁻¹ and beyond.
    """
    return "cm-1" if float(np.max(axis)) > 2600 else "nm"


@dataclass(frozen=True)
class _LibraryPart:
    name: str
    axis: np.ndarray  # ascending
    unit: str
    spectra: np.ndarray  # (rows, bands)
    absorbance: bool


def _library(parts: Sequence[str]) -> list[_LibraryPart]:
    out = []
    if "icraf_vnir" in parts:
        with np.load(DATA / "icraf_soils_vnir.npz") as npz:
            spectra = np.concatenate([npz["africa_europe"], npz["americas_asia"]]).astype(np.float64)
            out.append(_LibraryPart("icraf_vnir", npz["wavelength"].astype(float), "nm", spectra, False))
    mir_parts = {"ossl_kssl_mir": ("ossl_kssl",), "yamsys_mir": ("yamsys_BF", "yamsys_CI")}
    wanted = [p for p in mir_parts if p in parts]
    if wanted:
        with np.load(DATA / "soil_mir_kssl.npz") as npz:
            order = np.argsort(npz["wavenumber"])
            for part in wanted:
                rows = np.isin(npz["source"], mir_parts[part])
                spectra = npz["absorbance"][rows][:, order].astype(np.float64)
                out.append(_LibraryPart(part, npz["wavenumber"][order].astype(float), "cm-1", spectra, True))
    return out


def _shape(spectra: np.ndarray) -> np.ndarray:
    return np.diff(np.nanmean(spectra, axis=0))


def library_on_axis(axis: np.ndarray, own: np.ndarray, parts: Sequence[str] = LIBRARY_PARTS) -> np.ndarray:
    """The shipped soil spectra that fit the user's axis, interpolated onto it (rows × bands).

    A part is used when it is of the same kind (vis-NIR nm or MIR cm⁻¹), spans at least
    ``MIN_COVERAGE`` of the user's range, and, as it is or converted between reflectance and
    absorbance (``log10(1/R)``), has a mean derivative spectrum correlating at least
    ``MIN_SHAPE_CORRELATION`` with the user's ``own`` spectra; bands beyond its range take its edge
    values. Returns an empty array when nothing fits.
    """
    unknown = sorted(set(parts) - set(LIBRARY_PARTS))
    if unknown:
        raise ValueError(f"unknown library parts {unknown}; choose from {LIBRARY_PARTS}")
    if axis.size < 3:
        return np.empty((0, axis.size))
    unit, lo, hi = axis_unit(axis), axis[0], axis[-1]
    target = _shape(own)
    blocks = []
    for part in _library(parts):
        overlap = min(hi, part.axis[-1]) - max(lo, part.axis[0])
        if part.unit != unit or overlap < MIN_COVERAGE * (hi - lo):
            continue
        on_axis = np.stack([np.interp(axis, part.axis, row) for row in part.spectra])
        clipped = np.clip(on_axis, 1e-4, None)
        forms = [on_axis, 10.0 ** (-on_axis) if part.absorbance else -np.log10(clipped)]
        scores = [np.corrcoef(_shape(f), target)[0, 1] for f in forms]
        best = int(np.nanargmax(scores)) if np.any(np.isfinite(scores)) else 0
        if np.isfinite(scores[best]) and scores[best] >= MIN_SHAPE_CORRELATION:
            blocks.append(forms[best])
    return np.concatenate(blocks) if blocks else np.empty((0, axis.size))
