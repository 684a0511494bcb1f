"""A small synthetic training table for the training, prediction and model tests.

Lab and satellite spectra both carry log-ECe; a third of the samples have a MIR spectrum but no
measured ECe; the survey gives each sample and pool pixel a coarse, noisy ECe; an informative
covariate. Small enough that the whole chain trains in seconds with :func:`tiny_config`.
"""

from __future__ import annotations

import numpy as np

from deepsalt.config import load_config
from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.training.config import TrainConfig
from deepsalt.training.data import TrainingData

TINY = [
    "preset=quick",
    "data.pool_size=300",
    "sau.epochs=3",
    "teacher.epochs=4",
    "student.epochs=3",
    "student.members=2",
    "sau.lab_hidden=[32]",
    "sau.sat_hidden=[32]",
    "model.hidden=[32,16]",
]
N_BANDS = 40
N_POOL = 300
N_LIBRARY = 200


def _lab(rng: np.random.Generator, wn: np.ndarray, s: np.ndarray) -> np.ndarray:
    soil = rng.normal(size=(len(s), 1))
    lab = np.exp(-(((wn - 1100) / 200) ** 2)) * (1 + 0.3 * soil) + 0.5 * s[:, None] * np.exp(
        -(((wn - 2500) / 100) ** 2)
    )
    return (lab + rng.normal(0, 0.01, lab.shape)).astype(np.float32)


def _pixels(rng: np.random.Generator, wl: np.ndarray, salt: np.ndarray) -> np.ndarray:
    other = rng.normal(size=(len(salt), 1))
    curve = 0.2 + 0.05 * other + 0.05 * salt[:, None] * np.exp(-(((wl - 1600) / 300) ** 2))
    return (curve + rng.normal(0, 0.01, (len(salt), len(wl)))).astype(np.float32)


def _covariates(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    cov = rng.normal(size=(len(s), len(COVARIATE_NAMES))).astype(np.float32)
    cov[:, 0] += s
    return cov


def make_data(n: int = 160, n_bands: int = N_BANDS, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    s = rng.uniform(0, 3, n)
    ece = np.expm1(s).astype(np.float32)
    wn = np.linspace(4001.7, 599.8, 1765)
    wl = np.linspace(420, 2400, n_bands)
    sat = _pixels(rng, wl, s)
    sat[:4] = np.nan  # samples without a clear pixel
    measured = ece.copy()
    measured[4 : 4 + n // 3] = np.nan  # samples with a MIR spectrum but no ECe measurement
    pool_s = rng.uniform(0, 3, N_POOL)
    lib_s = rng.uniform(0, 3, N_LIBRARY)
    return TrainingData(
        lab=_lab(rng, wn, s),
        wavenumber=wn,
        ece=measured,
        lat=rng.uniform(36, 36.1, n),
        lon=rng.uniform(-120.4, -120.3, n),
        sat=sat,
        wavelength=wl,
        covariates=_covariates(rng, s),
        survey=np.expm1(s + rng.normal(0, 0.4, n)).clip(0).astype(np.float32),
        pool=_pixels(rng, wl, pool_s),
        pool_covariates=_covariates(rng, pool_s),
        pool_survey=np.expm1(pool_s + rng.normal(0, 0.4, N_POOL)).clip(0).astype(np.float32),
        pool_unit=np.digitize(pool_s, np.linspace(0, 3, 13)).astype(np.int64),
        library_lab=_lab(rng, wn, lib_s),
        library_ece=np.expm1(lib_s).astype(np.float32),
        sample_id=np.array([f"S{i:04d}" for i in range(n)]),
        covariate_names=COVARIATE_NAMES,
    )


def tiny_config(output: str, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [*TINY, f"output={output}", *extra])
