"""Masked-feature pretraining of a spectral autoencoder on unlabelled spectra, by the one loop.

A share of each spectrum's standardised features is hidden from the encoder and the decoder must
still reconstruct them, so the latent learns how bands co-vary in soil spectra before any label is
seen (see :class:`deepsalt.models.autoencoder.SpectralAutoencoder`). Whoever needs a pretrained
encoder (e.g. the scikit-learn estimator, on a spectral library plus its own rows) calls
:func:`pretrain_autoencoder` and copies ``autoencoder.encoder`` into its network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from deepsalt.models.autoencoder import SpectralAutoencoder
from deepsalt.training.config import LoopSettings
from deepsalt.training.loop import FitResult, fit
from deepsalt.training.runtime import WorkerContext


def masked_reconstruction(
    autoencoder: SpectralAutoencoder, spectra: torch.Tensor, mask_fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """MSE between the reconstruction and the standardised features, with ``mask_fraction`` hidden."""
    n_features = autoencoder.encoder.n_features
    draw = torch.rand(len(spectra), n_features, generator=generator, device=generator.device)
    _, reconstruction, reference = autoencoder(spectra, draw.to(spectra.device) < mask_fraction)
    return F.mse_loss(reconstruction, reference)


def pretrain_autoencoder(
    autoencoder: SpectralAutoencoder,
    spectra: np.ndarray,
    settings: LoopSettings,
    *,
    mask_fraction: float = 0.3,
    val_fraction: float = 0.1,
    seed: int = 0,
    ctx: WorkerContext,
) -> FitResult:
    """Fit the encoder's standardisation on ``spectra``, then train with masked reconstruction.

    The best-validation weights are loaded into ``autoencoder`` before it is returned with the fit's
    record; validation reconstructs without a mask.
    """
    values = torch.as_tensor(np.ascontiguousarray(spectra), dtype=torch.float32)
    with torch.no_grad():
        autoencoder.encoder.norm.fit(autoencoder.encoder.features(values))
    autoencoder.encoder.norm.requires_grad_(False)
    order = np.random.default_rng(seed).permutation(len(values))
    n_val = max(1, round(len(values) * val_fraction)) if len(values) > 1 else 0
    val_rows, train_rows = order[:n_val], order[n_val:] if n_val < len(values) else order
    train = TensorDataset(values[train_rows])
    val = (values[val_rows] if n_val else values,)

    def loss(model, batch, generator):
        return {"loss": masked_reconstruction(model, batch[0], mask_fraction, generator)}

    def val_loss(model, batch):
        _, reconstruction, reference = model(batch[0])
        return float(F.mse_loss(reconstruction, reference))

    no_resume = {"resume_url": None, "resume_key": ""}  # seconds to minutes of work: nothing to resume
    result = fit(
        autoencoder, train, val, loss, val_loss, settings, seed=seed, ctx=ctx, stage="pretrain", **no_resume
    )
    autoencoder.load_state_dict(result.state_dict)
    return result
