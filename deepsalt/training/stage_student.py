"""The student stage: an ensemble of students on satellite pixels, covariates and the survey.

Rows of an epoch:

- **pool pixels** with the survey's map-unit ECe as a coarse label (its own learned noise) and the
  survey input hidden, since it is the label;
- **geo-paired samples**, repeated to about a third of the epoch: the measured ECe where the lab
  measured it, and the teacher's reading of the sample's MIR spectrum (response and feature terms)
  wherever a spectrum exists, which is how samples without an ECe measurement teach the student.

Each member starts from the SAU's satellite encoder and differs by its seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from deepsalt.errors import ConfigError, InputDataError, LineageError
from deepsalt.models.losses import DistillationWeights, StudentTargets, distillation_loss
from deepsalt.models.networks import StudentEnsemble
from deepsalt.training import builders
from deepsalt.training.config import Stage, TrainConfig
from deepsalt.training.data import TrainingData
from deepsalt.training.loop import Batch, FitResult
from deepsalt.training.stage_base import (
    MIN_SAMPLES,
    ParentCheckpoint,
    StageOutput,
    StageTrainer,
    quality,
    split_indices,
    tensor,
)
from deepsalt.training.stage_sau import pool_split, sau_parent, sau_part

SURVEY, POINT = 0, 1  # StudentNet.SOURCES
DOMAIN_FIT_ROWS = 20000
UNIT_MEAN_CHUNK = 8192  # pool pixels per forward pass when the pool targets are refreshed


class _StudentTraining(nn.Module):
    """The ensemble with every member's prediction as ``forward`` (DDP synchronises what it computes)."""

    def __init__(self, ensemble: StudentEnsemble):
        super().__init__()
        self.ensemble = ensemble

    def forward(self, sat: torch.Tensor, cov: torch.Tensor, survey: torch.Tensor) -> list:
        return [member(sat, cov, survey) for member in self.ensemble.members]


class StudentTrainer(StageTrainer):
    stage = Stage.STUDENT
    revision = 2  # 2: the domain score watches the whole covariate table and widens the spread

    @classmethod
    def parent_stages(cls, config: TrainConfig) -> tuple[Stage, ...]:
        return (Stage.SAU, Stage.TEACHER) if config.distill else (Stage.SAU,)

    @classmethod
    def check_lineage(
        cls, config: TrainConfig, data: TrainingData, parents: Mapping[Stage, ParentCheckpoint]
    ) -> None:
        sau = parents[Stage.SAU]
        sau.check_axis("wavelength", data.wavelength)
        teacher = parents.get(Stage.TEACHER)
        if teacher is not None and teacher.meta.parents.get(Stage.SAU.value) != sau.meta.checkpoint_id:
            raise LineageError(
                f"teacher {teacher.url} was built on SAU {teacher.meta.parents.get(Stage.SAU.value)}, "
                f"but the student is given SAU {sau.meta.checkpoint_id} ({sau.url})"
            )

    @property
    def restore_best(self) -> bool:
        return not self.config.student.fixed_schedule

    def prepare(self) -> None:
        data, config = self.data, self.config
        self.sau_arch, self.scaler = sau_parent(self.parents)
        train, val = split_indices(len(data), config.data.val_fraction, config.seed)
        teacher = self._teacher_outputs() if config.distill else None
        labelled = data.measured | (data.has_spectrum if teacher is not None else False)
        rows = np.intersect1d(np.flatnonzero(data.paired & labelled), train)
        val_rows = np.intersect1d(np.flatnonzero(data.paired & data.measured), val)
        if len(rows) < MIN_SAMPLES:
            raise InputDataError(
                "<training data>", f"only {len(rows)} samples usable by the student; need ≥ {MIN_SAMPLES}"
            )
        pool_tr, pool_va = pool_split(len(data.pool), config.seed)
        use_pool = config.use_survey and config.use_satellite
        pool_rows = pool_tr if use_pool else np.array([], int)
        repeat = max(1, round(0.5 * len(pool_rows) / len(rows))) if use_pool else max(1, 2048 // len(rows))
        sample_rows = np.tile(rows, repeat)

        n_layers = len(config.model.hidden) if config.model.head == "mlp" else config.student.layers
        columns = list(self._columns(sample_rows, pool_rows, teacher, n_layers))
        # One target column per member: with unit_departure each member's pool targets follow its
        # own predictions (begin_epoch).
        columns[3] = columns[3][:, None].repeat(1, config.student.members)
        self.train_set = TensorDataset(*columns)
        self.pool_slice = slice(len(sample_rows), len(sample_rows) + len(pool_rows))
        self.pool_label = columns[3][self.pool_slice, 0].clone()
        self.pool_group = torch.as_tensor(np.unique(data.pool_unit[pool_rows], return_inverse=True)[1])
        self.val_set = self._columns(val_rows, np.array([], int), None, n_layers)[:4]
        self.val_obs = data.ece[val_rows]
        self.pool_train, self.pool_val = pool_tr, pool_va
        used = self._used_covariates()
        n_cov = len(used)
        latent = self.sau_arch.sat.latent_dim if config.use_satellite else 0
        n_side = n_cov + (2 if config.use_survey else 0)
        self.arch = builders.StudentArch(
            encoder=self.sau_arch.sat if config.use_satellite else None,
            head=builders.head_architecture(config, Stage.STUDENT, latent, n_side),
            n_covariates=n_cov,
            survey=config.use_survey,
            linear=config.model.linear,
            members=config.student.members,
            domain_components=min(config.student.domain_components, len(pool_tr) - 1),
            survey_covariates=tuple(
                used.index(name)
                for name in config.student.survey_covariates
                if config.use_survey and name in used
            ),
            covariate_columns=tuple(data.covariate_names.index(name) for name in used),
            covariate_table=len(data.covariate_names),
        )
        s = config.student
        self.weights = DistillationWeights(
            s.alpha, s.beta, s.gamma, s.nll_weight, s.survey_weight, s.nll_mean
        )
        self.cov_rows = np.concatenate([data.covariates[rows], data.pool_covariates[pool_rows]])
        self.survey_values = np.concatenate([data.survey[rows], data.pool_survey[pool_rows]])

    def _used_covariates(self) -> list[str]:
        """The configured covariates, in the order of the data's covariate table."""
        if not self.config.use_covariates:
            return []
        names = self.data.covariate_names
        unknown = sorted(set(self.config.student.covariates) - set(names))
        if unknown:
            raise ConfigError(
                "<train config>",
                "student.covariates",
                f"{unknown} are not among the data's covariates {list(names)}",
            )
        return [name for name in names if name in self.config.student.covariates]

    def _teacher_outputs(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """The teacher's mean, spread and per-layer features for every sample with a lab spectrum."""
        teacher_parent = self.parents[Stage.TEACHER]
        net = builders.build_teacher(builders.TeacherArch.model_validate(teacher_parent.meta.architecture))
        net.load_state_dict(teacher_parent.load())
        net.eval()
        n = len(self.data)
        has = self.data.has_spectrum
        with torch.no_grad():
            out = net(tensor(np.nan_to_num(self.data.lab)))
        mean = np.where(has, out.mean.numpy(), np.nan)
        std = np.where(has, out.std.numpy(), np.nan)
        features = [np.where(has[:, None], f.numpy(), np.nan) for f in out.features]
        assert len(mean) == n
        return mean, std, features

    def _columns(
        self, rows: np.ndarray, pool_rows: np.ndarray, teacher, n_layers: int
    ) -> tuple[torch.Tensor, ...]:
        """(sat, cov, survey input, target, source, teacher mean, teacher std, *teacher features)."""
        data = self.data
        n, m = len(rows), len(pool_rows)
        sat = np.concatenate([data.sat[rows], data.pool[pool_rows]])
        cov = np.concatenate([data.covariates[rows], data.pool_covariates[pool_rows]])
        survey = np.concatenate([data.survey[rows], np.full(m, np.nan)])
        ece = np.concatenate([data.ece[rows], data.pool_survey[pool_rows]])
        y = np.where(np.isfinite(ece), self.scaler.encode(np.nan_to_num(ece)), np.nan)
        source = np.concatenate([np.full(n, POINT), np.full(m, SURVEY)])
        if teacher is None:
            t_mean = t_std = np.full(n + m, np.nan)
            width = (
                self.config.model.hidden
                if self.config.model.head == "mlp"
                else [self.config.model.d_model] * n_layers
            )
            t_features = [np.full((n + m, w), np.nan) for w in width]
        else:
            mean, std, features = teacher
            t_mean = np.concatenate([mean[rows], np.full(m, np.nan)])
            t_std = np.concatenate([std[rows], np.full(m, np.nan)])
            t_features = [np.concatenate([f[rows], np.full((m, f.shape[1]), np.nan)]) for f in features]
        return (
            tensor(sat),
            tensor(np.nan_to_num(cov)),
            tensor(survey),
            tensor(y),
            torch.as_tensor(source, dtype=torch.long),
            tensor(t_mean),
            tensor(t_std),
            *(tensor(f) for f in t_features),
        )

    def build(self) -> nn.Module:
        ensemble = builders.build_student(self.arch)
        sau_state = self.parents[Stage.SAU].load()
        with torch.no_grad():
            for member in ensemble.members:
                if member.encoder is not None:
                    member.encoder.load_state_dict(sau_part(sau_state, "sat.encoder."))
                    member.encoder.norm.requires_grad_(False)
                    member.encoder.requires_grad_(not self.config.student.freeze_encoder)
                    member.encoder.norm.requires_grad_(False)
                if member.cov_norm is not None:
                    member.cov_norm.fit(self.cov_rows)
                if member.survey_norm is not None:
                    member.survey_norm.fit(np.log1p(np.clip(self.survey_values, 0, None))[:, None])
            if ensemble.covariate_range is not None:
                ensemble.covariate_range.fit(self.cov_rows)
            if ensemble.decoder is not None:
                ensemble.decoder.load_state_dict(sau_part(sau_state, "sat.decoder."))
                ensemble.decoder.requires_grad_(False)
        # Members differ by their initial weights: they are built one after another from the stage seed.
        return _StudentTraining(ensemble)

    def _targets(self, batch: Batch, member: int) -> StudentTargets:
        _, _, _, y, source, t_mean, t_std, *t_features = batch
        return StudentTargets(y[:, member], source, t_mean, t_std, list(t_features))

    def begin_epoch(self, model: nn.Module, epoch: int) -> None:
        """With ``unit_departure`` > 0, each pool pixel's target becomes its map unit's ECe plus that
        share of the member's current departure from the member's mean over the unit's pool pixels.
        The task term still moves each unit's mean prediction towards the unit's ECe, and shrinks the
        pattern inside the unit less (not at all with a share of 1)."""
        share = self.config.student.unit_departure
        if share == 0 or not len(self.pool_group):
            return
        sat, cov, survey, y = (t[self.pool_slice] for t in self.train_set.tensors[:4])
        device = next(model.parameters()).device
        means = []
        for start in range(0, len(sat), UNIT_MEAN_CHUNK):
            part = slice(start, start + UNIT_MEAN_CHUNK)
            outs = model(sat[part].to(device), cov[part].to(device), survey[part].to(device))
            means.append(torch.stack([o.mean for o in outs], dim=1).cpu())
        pred = torch.cat(means)
        n_units = int(self.pool_group.max()) + 1
        total = torch.zeros(n_units, pred.shape[1]).index_add_(0, self.pool_group, pred)
        count = torch.bincount(self.pool_group, minlength=n_units).to(pred.dtype)
        unit_mean = total / count[:, None]
        y.copy_(self.pool_label[:, None] + share * (pred - unit_mean[self.pool_group]))

    def loss(self, model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        sat, cov, survey, *_ = batch
        source = batch[4]
        hide = (source == POINT) & (
            torch.rand(len(survey), generator=generator, device=generator.device).to(survey.device)
            < self.config.student.survey_dropout
        )
        outs = model(sat, cov, torch.where(hide, torch.nan, survey))
        members = _unwrap(model).ensemble.members
        terms = [
            distillation_loss(o, m.log_noise.exp(), self._targets(batch, k), self.weights)
            for k, (o, m) in enumerate(zip(outs, members, strict=True))
        ]
        return {key: torch.stack([t[key] for t in terms]).sum() for key in terms[0]}

    def val_loss(self, model: nn.Module, val: Batch) -> float:
        sat, cov, survey, y = val
        outs = model(sat, cov, survey)
        members = _unwrap(model).ensemble.members
        targets = StudentTargets(
            y,
            torch.full_like(y, POINT, dtype=torch.long),
            torch.full_like(y, torch.nan),
            torch.full_like(y, torch.nan),
            [],
        )
        task_only = DistillationWeights(1.0, 0.0, 0.0, self.config.student.nll_weight)
        return float(
            torch.stack(
                [
                    distillation_loss(o, m.log_noise.exp(), targets, task_only)["loss"]
                    for o, m in zip(outs, members, strict=True)
                ]
            ).mean()
        )

    def finalise(self, model: nn.Module, result: FitResult) -> tuple[dict[str, torch.Tensor], StageOutput]:
        ensemble: StudentEnsemble = model.ensemble
        data = self.data
        fit_rows = self.pool_train[:DOMAIN_FIT_ROWS]
        shrinkage = self._fit_domain(
            ensemble,
            data.pool[fit_rows],
            data.pool_covariates[fit_rows],
            data.pool[self.pool_val],
            data.pool_covariates[self.pool_val],
        )
        sat, cov, survey, y = self.val_set
        scale = self._fit_interval(ensemble, sat, cov, survey, y)
        out = ensemble(sat, cov, survey)
        metrics = quality(out.mean.numpy(), self.val_obs, self.scaler)
        metrics["interval_scale"] = scale
        metrics.update(
            {f"noise_{s}": float(ensemble.members[0].noise(s)) for s in ensemble.members[0].SOURCES}
        )
        return ensemble.state_dict(), StageOutput(
            band_axis={"wavelength": self.parents[Stage.SAU].meta.band_axis["wavelength"]},
            normalisation={
                "target": self.scaler.to_dict(),
                "covariates": self._used_covariates(),
                "survey": self.config.use_survey,
                "domain": {
                    "method": "max of mahalanobis-ledoit-wolf on latent and log reconstruction error, and residual off the training spectra's principal components",
                    "components": self.config.student.domain_components,
                    "quantile": self.config.student.domain_quantile,
                    "shrinkage": shrinkage,
                },
            },
            architecture=self.arch,
            metrics=metrics,
        )

    def _fit_domain(self, ensemble: StudentEnsemble, sat, cov, val_sat, val_cov) -> float:
        """Domain statistics from training pixels; each distance, and then their maximum, is divided
        by its held-out quantile so that the held-out quantile of the score is 1."""
        from sklearn.covariance import LedoitWolf  # here: only the student's workers pay its import
        from sklearn.decomposition import PCA

        def inputs(s, c) -> tuple[torch.Tensor, torch.Tensor | None]:
            member = ensemble.members[0]
            s, c = tensor(s), tensor(np.nan_to_num(c))
            if member.encoder is None:
                return ensemble.domain_features(None, None, c), None
            x = member.encoder.standardized(s)
            return ensemble.domain_features(member.encoder.encode(x), x, c), x

        domain, level = ensemble.domain, self.config.student.domain_quantile
        features, spectra = inputs(sat, cov)
        held_features, held_spectra = inputs(val_sat, val_cov)
        fitted = LedoitWolf().fit(features.numpy().astype(np.float64))
        domain.mean.copy_(torch.as_tensor(fitted.location_))
        domain.precision.copy_(torch.as_tensor(fitted.precision_))
        domain.feature_scale.fill_(1.0)
        domain.feature_scale.copy_(
            torch.quantile(domain.feature_distance(held_features), level).clamp_min(1e-6)
        )
        if domain.uses_spectrum:
            pca = PCA(n_components=domain.basis.shape[0]).fit(spectra.numpy())
            domain.spectral_mean.copy_(torch.as_tensor(pca.mean_))
            domain.basis.copy_(torch.as_tensor(pca.components_))
            domain.residual_scale.fill_(1.0)
            domain.residual_scale.copy_(
                torch.quantile(domain.residual_distance(held_spectra), level).clamp_min(1e-6)
            )
        domain.scale.copy_(
            torch.quantile(domain.unscaled(held_features, held_spectra), level).clamp_min(1e-6)
        )
        return float(fitted.shrinkage_)

    def _fit_interval(self, ensemble: StudentEnsemble, sat, cov, survey, y) -> float:
        """Scale the spread so the configured interval covers that share of the held-out samples."""
        if len(y) < 5:
            return 1.0
        ensemble.interval_scale.fill_(1.0)
        out = ensemble(sat, cov, survey)
        level = self.config.student.interval_level
        z = ((y - out.mean).abs() / out.std).numpy()
        scale = float(np.clip(np.quantile(z, level) / NormalDist().inv_cdf(0.5 + level / 2), 0.5, 4.0))
        ensemble.interval_scale.fill_(scale)
        return scale


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model
