"""``StudentPredictor``: the trained student applied to satellite pixels, in large batches.

Loaded once per process (or Ray actor) from a student checkpoint; the device is chosen at run
time (CUDA when available). Outputs per pixel:

- ``ece`` (dS/m): median of the predictive distribution (see ``deepsalt.models.target``);
- ``ece_std`` (dS/m): its delta-method spread, ``(1 + ece) · s`` for the log1p target space;
  exact intervals come from :func:`deepsalt.models.target.interval`;
- ``domain_score``: Mahalanobis distance of the pixel's aligned latent (before its projection onto
  the unit-scale sphere) from the training
  latents (Ledoit–Wolf shrunk covariance), divided by the 95th percentile of the held-out
  samples' distances: ≤ 1 is inside the training distribution, ≫ 1 is extrapolation.

Rows with any NaN input give NaN in all three outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepsalt.models.target import TargetScaler
from deepsalt.training import builders
from deepsalt.training.checkpoint import load_checkpoint

N_COVARIATES = 8


class StudentPredictor:
    """A student checkpoint ready for inference; use :meth:`load`."""

    def __init__(self, net, scaler: TargetScaler, meta, device: torch.device, batch_size: int):
        self.net = net.to(device).eval()
        self.scaler = scaler
        self.device = device
        self.batch_size = batch_size
        self.wavelength = np.asarray(meta.band_axis["wavelength"], dtype=np.float64)
        self.checkpoint_id = meta.checkpoint_id
        self.lineage: dict[str, Any] = {
            "student": meta.checkpoint_id,
            **meta.parents,
            "config_hash": meta.config_hash,
            "aligned": meta.architecture["sau"].get("aligned", True),
        }
        self.meta = meta

    @classmethod
    def load(
        cls, url: str, device: str | torch.device | None = None, batch_size: int = 65536
    ) -> StudentPredictor:
        """Read ``url`` (a student checkpoint directory, any fsspec URL); verifies the weights' hash."""
        state, meta = load_checkpoint(url, "student")
        net = builders.build_student(meta.architecture)
        net.load_state_dict(state)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(net, TargetScaler(**meta.normalisation["target"]), meta, torch.device(device), batch_size)

    def predict(self, reflectance: np.ndarray, covariates: np.ndarray) -> dict[str, np.ndarray]:
        """``reflectance`` (n, len(wavelength)) in [0, 1] and ``covariates`` (n, 8) → float32 arrays of length n."""
        reflectance = np.asarray(reflectance, dtype=np.float32)
        covariates = np.asarray(covariates, dtype=np.float32)
        if reflectance.ndim != 2 or reflectance.shape[1] != len(self.wavelength):
            raise ValueError(
                f"reflectance must be (n, {len(self.wavelength)}) on the model's band axis "
                f"({self.wavelength[0]:.1f}–{self.wavelength[-1]:.1f} nm), got {reflectance.shape}"
            )
        if covariates.shape != (len(reflectance), N_COVARIATES):
            raise ValueError(
                f"covariates must be ({len(reflectance)}, {N_COVARIATES}), got {covariates.shape}"
            )
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
                out, domain = self.net.forward_with_domain(sat, cov)
                mean[idx] = out.mean.float().cpu().numpy()
                std[idx] = out.std.float().cpu().numpy()
                score[idx] = domain.float().cpu().numpy()
        ece, ece_std = self.scaler.decode(mean, std)
        return {"ece": ece, "ece_std": ece_std, "domain_score": score}
