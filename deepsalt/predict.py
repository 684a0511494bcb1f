"""``StudentPredictor``: the trained student applied to satellite pixels, in large batches.

Loaded once per process (or Ray actor) from a student checkpoint; the device is chosen at run
time (CUDA when available). Outputs per pixel:

- ``ece`` (dS/m): median of the predictive distribution (see ``deepsalt.models.target``);
- ``ece_std`` (dS/m): its delta-method spread, ``(1 + ece) · s`` for the log1p target space;
  exact intervals come from :func:`deepsalt.models.target.interval`;
- ``domain_score``: Mahalanobis distance of the pixel's latent and of its autoencoder
  reconstruction error from the training pixels' (Ledoit–Wolf shrunk covariance), divided by the
  95th percentile of held-out pixels' distances: ≤ 1 is inside the training distribution, ≫ 1 is
  extrapolation.

Rows with a NaN reflectance or covariate give NaN in all three outputs. The survey's map-unit ECe
is optional per pixel (NaN: outside the survey); the student was trained to predict without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepsalt.errors import InputDataError
from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.mapping.predictor import ModelCard
from deepsalt.models.target import TargetScaler
from deepsalt.training import builders
from deepsalt.training.checkpoint import CheckpointMeta, content_hash, load_checkpoint, read_meta
from deepsalt.training.config import Stage


class StudentPredictor:
    """A student checkpoint ready for inference; use :meth:`load`."""

    def __init__(self, net, scaler: TargetScaler, meta, device: torch.device, batch_size: int):
        self.net = net.to(device).eval()
        self.scaler = scaler
        self.device = device
        self.batch_size = batch_size
        self.wavelength = np.asarray(meta.band_axis["wavelength"], dtype=np.float64)
        self.covariate_names: tuple[str, ...] = tuple(meta.normalisation.get("covariates", ()))
        self.uses_survey: bool = bool(meta.normalisation.get("survey", False))
        self.checkpoint_id = meta.checkpoint_id
        self.lineage = lineage(meta)
        self.meta = meta

    @classmethod
    def describe(cls, url: str) -> ModelCard:
        """The checkpoint's id, content hash and lineage from ``meta.json`` (weights not read)."""
        meta = read_meta(url, Stage.STUDENT)
        check_band_axis(url, meta)
        return ModelCard(
            meta.checkpoint_id, content_hash(url), {"checkpoint_id": meta.checkpoint_id, **lineage(meta)}
        )

    @classmethod
    def load(
        cls, url: str, device: str | torch.device | None = None, batch_size: int = 65536
    ) -> StudentPredictor:
        """Read ``url`` (a student checkpoint directory, any fsspec URL); verifies the weights' hash."""
        state, meta = load_checkpoint(url, Stage.STUDENT)
        check_band_axis(url, meta)
        net = builders.build_student(builders.StudentArch.model_validate(meta.architecture))
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:  # torch lists every mismatching tensor: the first says enough
            reason = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
            raise InputDataError(url, f"weights do not fit the architecture in meta.json: {reason}") from exc
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(net, TargetScaler(**meta.normalisation["target"]), meta, torch.device(device), batch_size)

    def predict(
        self, reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """``reflectance`` (n, len(wavelength)) in [0, 1], ``covariates`` (n, 8) and the survey ECe (n,)
        (dS/m, NaN or None where absent) → float32 arrays of length n."""
        reflectance = np.asarray(reflectance, dtype=np.float32)
        covariates = np.asarray(covariates, dtype=np.float32)
        survey = (
            np.full(len(reflectance), np.nan, np.float32)
            if survey is None
            else np.asarray(survey, dtype=np.float32)
        )
        if reflectance.ndim != 2 or reflectance.shape[1] != len(self.wavelength):
            raise ValueError(
                f"reflectance must be (n, {len(self.wavelength)}) on the model's band axis "
                f"({self.wavelength[0]:.1f}–{self.wavelength[-1]:.1f} nm), got {reflectance.shape}"
            )
        n_cov = len(COVARIATE_NAMES)
        if covariates.shape != (len(reflectance), n_cov):
            raise ValueError(f"covariates must be ({len(reflectance)}, {n_cov}), got {covariates.shape}")
        if survey.shape != (len(reflectance),):
            raise ValueError(f"survey must be ({len(reflectance)},), got {survey.shape}")
        n = len(reflectance)
        ok = np.isfinite(reflectance).all(axis=1) & np.isfinite(covariates).all(axis=1)
        mean = np.full(n, np.nan, np.float32)
        std = np.full(n, np.nan, np.float32)
        score = np.full(n, np.nan, np.float32)
        rows = np.flatnonzero(ok)
        with torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                idx = rows[start : start + self.batch_size]
                sat = torch.from_numpy(reflectance[idx]).to(self.device)
                cov = torch.from_numpy(covariates[idx]).to(self.device)
                surv = torch.from_numpy(survey[idx]).to(self.device)
                out, domain = self.net.forward_with_domain(sat, cov, surv)
                mean[idx] = out.mean.float().cpu().numpy()
                std[idx] = out.std.float().cpu().numpy()
                score[idx] = domain.float().cpu().numpy()
        ece, ece_std = self.scaler.decode(mean, std)
        return {"ece": ece, "ece_std": ece_std, "domain_score": score}


def lineage(meta: CheckpointMeta) -> dict[str, Any]:
    """The student's id, its parents' ids and its config hash, as recorded in a map."""
    return {
        Stage.STUDENT: meta.checkpoint_id,
        **meta.parents,
        "config_hash": meta.config_hash,
        "aligned": bool(meta.config.get("use_sau", True)),
        "survey_input": bool(meta.normalisation.get("survey", False)),
    }


def check_band_axis(url: str, meta: CheckpointMeta) -> None:
    """The band axis in ``meta.json`` must have as many bands as the network's satellite input."""
    arch = meta.architecture
    if not isinstance(arch, builders.StudentArch) or arch.encoder is None:
        return
    n_axis = len(meta.band_axis.get("wavelength", []))
    n_net = arch.encoder.n_inputs
    if n_axis != n_net:
        raise InputDataError(
            f"{url.rstrip('/')}/meta.json",
            f"band_axis.wavelength lists {n_axis} bands but the network takes {n_net} "
            "(the checkpoint was edited or assembled from two runs)",
        )
