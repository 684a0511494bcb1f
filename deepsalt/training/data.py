"""The method's training data: lab samples with their satellite pixel, covariates and a pixel pool.

``load_region_samples`` reads one demo region (``deepsalt.synth`` layout) through the readers in
``deepsalt.io``; the stages only see the in-memory :class:`TrainingData`, so the evaluator can
split it by spatial blocks (``subset``) and train the variants on the same rows.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, fields, replace

import fsspec
import numpy as np

from deepsalt.errors import InputDataError
from deepsalt.logs import get_logger

log = get_logger(__name__)

_PER_SAMPLE = ("lab", "ece", "lat", "lon", "sat", "covariates", "sample_id")


@dataclass(frozen=True)
class TrainingData:
    """Rows are lab samples; ``sat`` is NaN where no clear pixel lies within the pairing radius."""

    lab: np.ndarray  # (n, n_wavenumbers) float32 absorbance
    wavenumber: np.ndarray  # (n_wavenumbers,) cm⁻¹
    ece: np.ndarray  # (n,) float32 dS/m
    lat: np.ndarray  # (n,) degrees
    lon: np.ndarray  # (n,) degrees
    sat: np.ndarray  # (n, n_bands) float32 reflectance in [0, 1], NaN rows = unpaired
    wavelength: np.ndarray  # (n_bands,) nm, the usable band axis
    covariates: np.ndarray  # (n, 8) in deepsalt.io.covariates.COVARIATE_NAMES order
    pool: np.ndarray  # (m, n_bands) float32 unlabelled clear pixels for the autoencoders
    sample_id: np.ndarray  # (n,) str

    def __post_init__(self) -> None:
        n = len(self.ece)
        for name in _PER_SAMPLE:
            if len(getattr(self, name)) != n:
                raise ValueError(f"TrainingData.{name} has {len(getattr(self, name))} rows, expected {n}")
        if self.lab.shape[1] != len(self.wavenumber):
            raise ValueError(
                f"lab spectra have {self.lab.shape[1]} points but the wavenumber axis {len(self.wavenumber)}"
            )
        for name in ("sat", "pool"):
            if getattr(self, name).shape[1] != len(self.wavelength):
                raise ValueError(
                    f"TrainingData.{name} has {getattr(self, name).shape[1]} bands, wavelength axis {len(self.wavelength)}"
                )

    def __len__(self) -> int:
        return len(self.ece)

    @property
    def paired(self) -> np.ndarray:
        """Rows with a satellite pixel."""
        return np.isfinite(self.sat).all(axis=1)

    def subset(self, idx: np.ndarray) -> TrainingData:
        """Rows ``idx`` (indices or boolean mask); axes and the unlabelled pool are kept."""
        idx = np.asarray(idx)
        return replace(self, **{name: getattr(self, name)[idx] for name in _PER_SAMPLE})

    @classmethod
    def concat(cls, parts: list[TrainingData]) -> TrainingData:
        """Rows of several regions; their band and wavenumber axes must agree."""
        first = parts[0]
        for part in parts[1:]:
            if not (
                np.allclose(part.wavelength, first.wavelength)
                and np.allclose(part.wavenumber, first.wavenumber)
            ):
                raise ValueError("cannot concatenate regions with different band or wavenumber axes")
        stacked = {name: np.concatenate([getattr(p, name) for p in parts]) for name in (*_PER_SAMPLE, "pool")}
        return replace(first, **stacked)

    def fingerprint(self) -> str:
        """Short hash of the rows and axes: a checkpoint trained on other rows is never reused."""
        digest = hashlib.sha256()
        for f in fields(self):
            value = getattr(self, f.name)
            digest.update(
                "\x1f".join(map(str, value)).encode()
                if value.dtype.kind in "OUS"
                else np.ascontiguousarray(value).tobytes()
            )
        return digest.hexdigest()[:16]

    def save(self, url: str) -> None:
        """Write all arrays to one ``.npz`` at any fsspec URL (a cache between runs)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{f.name: getattr(self, f.name) for f in fields(self)})
        with fsspec.open(url, "wb") as fh:
            fh.write(buffer.getvalue())

    @classmethod
    def load(cls, url: str) -> TrainingData:
        try:
            with fsspec.open(url, "rb") as fh:
                arrays = np.load(io.BytesIO(fh.read()), allow_pickle=False)
                return cls(**{f.name: arrays[f.name] for f in fields(cls)})
        except FileNotFoundError as exc:
            raise InputDataError(url, "training data file not found") from exc
        except (KeyError, ValueError) as exc:
            raise InputDataError(url, f"not a TrainingData file: {exc}") from exc
