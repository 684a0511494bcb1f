"""The estimator's network: the method's student ensemble (and lab teacher), trained by its loop.

Nothing here defines a layer, a loss or a loop. The network is a
:class:`deepsalt.models.networks.StudentEnsemble` without the survey token: each member is a
spectral encoder (binning + first derivative + standardisation + MLP, :mod:`deepsalt.models.autoencoder`)
whose latent joins the standardised covariates in a Gaussian head, plus the members' linear path
over the standardised spectral features and covariates. The encoder may start from masked-feature
pretraining on unlabelled soil spectra (:mod:`deepsalt.training.pretrain`); training perturbs the
spectra at every step (:mod:`deepsalt.training.augment`). With lab spectra of the same rows, a
:class:`deepsalt.models.networks.TeacherNet` learns from them first and the members learn with the
method's distillation loss (task + feature alignment + KL between the Gaussians).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from deepsalt.models.autoencoder import SpectralAutoencoder
from deepsalt.models.losses import DistillationWeights, StudentTargets, distillation_loss, task_loss
from deepsalt.models.networks import StudentEnsemble, StudentNet, TeacherNet
from deepsalt.training import builders
from deepsalt.training.augment import SpectralAugmentation
from deepsalt.training.config import LoopSettings
from deepsalt.training.loop import fit
from deepsalt.training.pretrain import pretrain_autoencoder
from deepsalt.training.runtime import WorkerContext

POINT = StudentNet.SOURCES.index("point")
VAL_FRACTION = 0.15
"""Share of a network's training rows held out for early stopping."""


@dataclass(frozen=True)
class NetworkSettings:
    """Shape and training of the network (the estimator's parameters, gathered)."""

    members: int = 3
    latent_dim: int = 16
    encoder_hidden: tuple[int, ...] = (64,)
    head_hidden: tuple[int, ...] = (32, 16)
    dropout: float = 0.1
    max_features: int = 128
    """Adjacent bands are averaged until the encoder sees at most this many features."""
    derivative: bool = True
    loop: LoopSettings = field(
        default_factory=lambda: LoopSettings(
            epochs=150, batch_size=32, lr=3e-3, weight_decay=1e-3, patience=30
        )
    )
    pretrain_loop: LoopSettings = field(
        default_factory=lambda: LoopSettings(epochs=20, batch_size=64, lr=2e-3, weight_decay=1e-4, patience=5)
    )
    mask_fraction: float = 0.3
    augment: bool = True
    distillation: DistillationWeights = field(
        default_factory=lambda: DistillationWeights(
            alpha=1.0, beta=0.5, gamma=1.0, nll_weight=0.5, nll_mean=False
        )
    )
    """The NLL keeps to the spread and the Huber term drives the mean (``nll_mean=False``): the
    student's default of letting the NLL move the mean was measured on the pipeline's student,
    not on this estimator's tables, where there is one label source."""


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(values), dtype=torch.float32)  # a copy: inputs may be read-only


def _fit(
    model, train, val, loss, val_loss, settings: LoopSettings, seed: int, ctx: WorkerContext, stage: str
):
    """The method's loop in memory: a fit lasts seconds, so it keeps no resume state."""
    return fit(
        model,
        train,
        val,
        loss,
        val_loss,
        settings,
        seed=seed,
        ctx=ctx,
        resume_url=None,
        resume_key="",
        stage=f"estimator-{stage}",
    )


def _encoder_arch(n_bands: int, settings: NetworkSettings) -> builders.EncoderArch:
    binning = max(1, -(-n_bands // settings.max_features))
    derivative = settings.derivative and n_bands // binning >= 3
    return builders.EncoderArch(
        n_inputs=n_bands,
        latent_dim=settings.latent_dim,
        hidden=settings.encoder_hidden,
        binning=binning,
        derivative=derivative,
    )


def _head_arch(latent_dim: int, n_side: int, settings: NetworkSettings) -> builders.HeadArch:
    return builders.HeadArch(
        kind="mlp",
        latent_dim=latent_dim,
        n_covariates=n_side,
        hidden=settings.head_hidden,
        dropout=settings.dropout,
    )


def pretrained_encoder(
    spectra: np.ndarray, settings: NetworkSettings, seed: int, ctx: WorkerContext
) -> dict[str, torch.Tensor] | None:
    """Encoder weights (standardisation included) after masked-feature pretraining on ``spectra``."""
    if len(spectra) < 4:
        return None
    arch = _encoder_arch(spectra.shape[1], settings)
    torch.manual_seed(seed)
    autoencoder = SpectralAutoencoder(
        arch.n_inputs, arch.latent_dim, arch.hidden, settings.dropout, arch.binning, arch.derivative
    )
    pretrain_autoencoder(
        autoencoder, spectra, settings.pretrain_loop, mask_fraction=settings.mask_fraction, seed=seed, ctx=ctx
    )
    return autoencoder.encoder.state_dict()


@dataclass
class TeacherOutputs:
    """The lab teacher's Gaussian and per-layer features for each training row."""

    mean: np.ndarray
    std: np.ndarray
    features: list[np.ndarray]
    history: list[dict[str, float]]


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * VAL_FRACTION)) if n >= 8 else 0
    return (order[n_val:], order[:n_val]) if n_val else (order, order)


def teach(
    lab: np.ndarray, y: np.ndarray, settings: NetworkSettings, seed: int, ctx: WorkerContext
) -> TeacherOutputs:
    """Train a teacher on lab spectra → standardised ``y``; its outputs on those same rows."""
    arch = builders.TeacherArch(
        encoder=_encoder_arch(lab.shape[1], settings),
        head=_head_arch(settings.latent_dim, 0, settings),
        linear=True,
    )
    torch.manual_seed(seed + 1)
    net = builders.build_teacher(arch)
    lab_t, y_t = _tensor(lab), _tensor(y)
    with torch.no_grad():
        net.encoder.norm.fit(net.encoder.features(lab_t))
    net.encoder.norm.requires_grad_(False)
    train, val = _split(len(y), seed)
    nll = settings.distillation.nll_weight

    def loss(model: TeacherNet, batch, generator):
        out = model(batch[0])
        return {"loss": task_loss(out.mean, out.std, batch[1], nll)}

    val_loss = lambda model, batch: float(loss(model, batch, None)["loss"])  # noqa: E731
    train_set = TensorDataset(lab_t[train], y_t[train])
    result = _fit(
        net, train_set, (lab_t[val], y_t[val]), loss, val_loss, settings.loop, seed + 1, ctx, "teacher"
    )
    net.load_state_dict(result.state_dict)
    net.eval()
    with torch.no_grad():
        out = net(lab_t)
    return TeacherOutputs(
        out.mean.numpy(), out.std.numpy(), [f.numpy() for f in out.features], result.history
    )


class _Members(nn.Module):
    """Every member's prediction from one call (the loss sums their terms), spectra perturbed first."""

    def __init__(self, ensemble: StudentEnsemble, augmentation: SpectralAugmentation | None):
        super().__init__()
        self.ensemble, self.augmentation = ensemble, augmentation

    def forward(self, spectra, covariates, generator: torch.Generator | None = None) -> list:
        if self.augmentation is not None and generator is not None and spectra.shape[1]:
            spectra = self.augmentation(spectra, generator)
        survey = torch.full((len(spectra),), torch.nan, device=spectra.device)
        return [member(spectra, covariates, survey) for member in self.ensemble.members]


@dataclass
class FittedNetwork:
    ensemble: StudentEnsemble
    history: list[dict[str, float]]
    """Per-epoch loss record of the members' training (distillation terms included)."""

    def predict(self, spectra: np.ndarray, covariates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised-target mean and spread (the members' Gaussian mixture) per row."""
        self.ensemble.eval()
        with torch.no_grad():
            s = _tensor(spectra)
            out = self.ensemble(s, _tensor(covariates), torch.full((len(s),), torch.nan))
        return out.mean.numpy().astype(np.float64), out.std.numpy().astype(np.float64)


def train_network(
    spectra: np.ndarray,
    covariates: np.ndarray,
    y: np.ndarray,
    settings: NetworkSettings,
    *,
    seed: int,
    ctx: WorkerContext,
    encoder_state: dict[str, torch.Tensor] | None = None,
    teacher: TeacherOutputs | None = None,
) -> FittedNetwork:
    """Train the ensemble on standardised ``y``; ``spectra`` may have no columns (covariates only)."""
    n_bands, n_cov = spectra.shape[1], covariates.shape[1]
    encoder = _encoder_arch(n_bands, settings) if n_bands else None
    arch = builders.StudentArch(
        encoder=encoder,
        head=_head_arch(encoder.latent_dim if encoder else 0, n_cov, settings),
        n_covariates=n_cov,
        survey=False,
        linear=True,
        members=settings.members,
    )
    torch.manual_seed(seed)
    ensemble = builders.build_student(arch)
    spectra_t, cov_t, y_t = _tensor(spectra), _tensor(covariates), _tensor(y)
    with torch.no_grad():
        for member in ensemble.members:
            if member.encoder is not None:
                if encoder_state is not None:
                    member.encoder.load_state_dict(encoder_state)
                else:
                    member.encoder.norm.fit(member.encoder.features(spectra_t))
                member.encoder.norm.requires_grad_(False)
            if member.cov_norm is not None:
                member.cov_norm.fit(covariates)
    if ensemble.decoder is not None:
        ensemble.decoder.requires_grad_(False)
    augmentation = SpectralAugmentation.from_spectra(spectra) if settings.augment and n_bands >= 3 else None
    model = _Members(ensemble, augmentation)

    n = len(y)
    nan = torch.full((n,), torch.nan)
    t_mean, t_std = (nan, nan) if teacher is None else (_tensor(teacher.mean), _tensor(teacher.std))
    t_features = [] if teacher is None else [_tensor(f) for f in teacher.features]
    train, val = _split(n, seed)
    columns = (spectra_t, cov_t, y_t, t_mean, t_std, *t_features)
    weights = settings.distillation
    task_only = DistillationWeights(1.0, 0.0, 0.0, weights.nll_weight, nll_mean=weights.nll_mean)

    def terms(module: _Members, batch, generator, w: DistillationWeights) -> dict[str, torch.Tensor]:
        spectra_b, cov_b, y_b, mean_b, std_b, *features_b = batch
        source = torch.full_like(y_b, POINT, dtype=torch.long)
        targets = StudentTargets(y_b, source, mean_b, std_b, list(features_b))
        outs = module(spectra_b, cov_b, generator)
        members = module.ensemble.members
        parts = [
            distillation_loss(o, m.log_noise.exp(), targets, w) for o, m in zip(outs, members, strict=True)
        ]
        return {key: torch.stack([p[key] for p in parts]).sum() for key in parts[0]}

    history: list[dict[str, float]] = []

    def loss(module, batch, generator):
        out = terms(module, batch, generator, weights)
        history.append({k: float(v.detach()) for k, v in out.items()})
        return out

    val_set = (*(c[val] for c in columns[:3]), nan[val], nan[val])
    train_set = TensorDataset(*(c[train] for c in columns))
    val_loss = lambda module, batch: float(terms(module, batch, None, task_only)["loss"]) / settings.members  # noqa: E731
    result = _fit(model, train_set, val_set, loss, val_loss, settings.loop, seed, ctx, "network")
    model.load_state_dict(result.state_dict)
    ensemble.eval()
    return FittedNetwork(ensemble, history)
