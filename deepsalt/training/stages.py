"""The three training stages: SAU → teacher → student.

:func:`train_stages` trains a run of stages in order, in this process or in one Ray Train run on
N workers (``config.ray.num_workers``): the worker group, its process group and the workers'
imports are paid once for the chain, not once per stage. Before a stage trains, its job is
planned (:func:`_plan`): lineage is validated against the parents' checkpoints and a stage key is
derived; a checkpoint with the same key is reused. ``train_sau``, ``train_teacher`` and
``train_student`` train one stage from explicit parent URLs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from deepsalt.errors import InputDataError, LineageError
from deepsalt.logs import get_logger
from deepsalt.models.losses import DistillationWeights, distillation_loss, task_loss
from deepsalt.models.networks import StudentNet, TeacherNet
from deepsalt.models.sau import SAULossWeights, sau_loss
from deepsalt.models.target import TargetScaler
from deepsalt.training import builders
from deepsalt.training.checkpoint import (
    CheckpointMeta,
    check_axis,
    clear_resume,
    has_checkpoint,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    stage_key,
    to_json_array,
)
from deepsalt.training.config import TrainConfig
from deepsalt.training.data import TrainingData
from deepsalt.training.loop import FitResult, fit
from deepsalt.training.runtime import WorkerContext, default_device

log = get_logger(__name__)

MIN_SAMPLES = 8

StageURLs = Mapping[str, str | None]
"""Checkpoint URL per stage name; the teacher's is None when the student is not distilled."""


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split of ``n`` rows, the same for every stage on the same data."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)


# ---------------------------------------------------------------- public stage functions


def train_sau(data: TrainingData, config: TrainConfig, url: str | None = None) -> str:
    """Train both autoencoders (aligned unless ``config.use_sau`` is false); returns the checkpoint URL."""
    return train_stages(data, config, ["sau"], {"sau": url or config.stage_url("sau")})["sau"]


def train_teacher(data: TrainingData, config: TrainConfig, sau_url: str, url: str | None = None) -> str:
    """Train the lab-latent teacher on the SAU's (frozen) lab encoder."""
    urls = {"sau": sau_url, "teacher": url or config.stage_url("teacher")}
    return train_stages(data, config, ["teacher"], urls)["teacher"]


def train_student(
    data: TrainingData,
    config: TrainConfig,
    sau_url: str,
    teacher_url: str | None = None,
    url: str | None = None,
) -> str:
    """Train the student on the SAU's satellite encoder, distilled from the teacher when ``config.distill``."""
    urls = {"sau": sau_url, "teacher": teacher_url, "student": url or config.stage_url("student")}
    return train_stages(data, config, ["student"], urls)["student"]


def train_stages(
    data: TrainingData, config: TrainConfig, stages: Sequence[str], urls: StageURLs
) -> dict[str, str]:
    """Train ``stages`` in order into ``urls[stage]`` and return stage → checkpoint URL.

    Leading stages whose checkpoint already matches are skipped here, so a finished chain starts
    no Ray; the first stage to train is planned here too, so its lineage errors reach the caller
    unwrapped. The rest trains in one go: a Ray Train run, or this process.
    """
    pending = list(stages)
    while pending and _reusable(_plan(pending[0], data, config, urls)):
        pending.pop(0)
    if pending:
        chain = {
            "stages": pending,
            "urls": dict(urls),
            "config": config.model_dump(mode="json"),
            "data": data,
        }
        if config.ray.num_workers == 0:
            run_chain_job(chain, WorkerContext(default_device()))
        else:
            from deepsalt.training.distributed import run_on_ray

            run_on_ray(run_chain_job, chain, config, name="+".join(pending))
    for stage in stages:
        read_meta(urls[stage], stage)  # fails loudly if no worker wrote it
    return {stage: urls[stage] for stage in stages}


def _shared(config: TrainConfig) -> dict[str, Any]:
    """Settings every stage depends on (not where it runs or writes)."""
    return config.model_dump(
        include={"seed", "use_sau", "distill", "use_covariates", "use_satellite", "data", "model"}
    )


@dataclass
class _Job:
    """One stage, planned: where it writes, the key its checkpoint must carry, its parents' URLs."""

    stage: str
    config: TrainConfig
    data: TrainingData
    url: str
    key: str
    parents: dict[str, str]


def _plan_sau(data: TrainingData, config: TrainConfig, urls: StageURLs) -> _Job:
    key = stage_key("sau", _shared(config), config.sau.model_dump(), data.fingerprint())
    return _Job("sau", config, data, urls["sau"], key, {})


def _plan_teacher(data: TrainingData, config: TrainConfig, urls: StageURLs) -> _Job:
    sau = read_meta(urls["sau"], "sau")
    check_axis(
        "wavenumber",
        sau.band_axis["wavenumber"],
        data.wavenumber,
        f"SAU checkpoint {urls['sau']} vs training data",
    )
    key = stage_key(
        "teacher", _shared(config), config.teacher.model_dump(), data.fingerprint(), sau.checkpoint_id
    )
    return _Job("teacher", config, data, urls["teacher"], key, {"sau": urls["sau"]})


def _plan_student(data: TrainingData, config: TrainConfig, urls: StageURLs) -> _Job:
    sau_url, teacher_url = urls["sau"], urls.get("teacher")
    sau = read_meta(sau_url, "sau")
    check_axis(
        "wavelength",
        sau.band_axis["wavelength"],
        data.wavelength,
        f"SAU checkpoint {sau_url} vs training data",
    )
    parents = {"sau": sau_url}
    ids = [sau.checkpoint_id]
    if config.distill:
        if teacher_url is None:
            raise LineageError("distillation is on (distill: true) but no teacher checkpoint was given")
        teacher = read_meta(teacher_url, "teacher")
        if teacher.parents.get("sau") != sau.checkpoint_id:
            raise LineageError(
                f"teacher {teacher_url} was built on SAU {teacher.parents.get('sau')}, "
                f"but the student is given SAU {sau.checkpoint_id} ({sau_url})"
            )
        parents["teacher"] = teacher_url
        ids.append(teacher.checkpoint_id)
    key = stage_key("student", _shared(config), config.student.model_dump(), data.fingerprint(), ids)
    return _Job("student", config, data, urls["student"], key, parents)


def _plan(stage: str, data: TrainingData, config: TrainConfig, urls: StageURLs) -> _Job:
    """Validate ``stage``'s lineage against its parents' checkpoints and derive its key."""
    planners = {"sau": _plan_sau, "teacher": _plan_teacher, "student": _plan_student}
    return planners[stage](data, config, urls)


def _reusable(job: _Job) -> bool:
    if has_checkpoint(job.url) and read_meta(job.url, job.stage).stage_key == job.key:
        log.info(
            "reusing checkpoint with identical settings, data and parents",
            extra={"stage": job.stage, "url": job.url},
        )
        return True
    return False


# ---------------------------------------------------------------- per-worker chain


def run_chain_job(chain: dict[str, Any], ctx: WorkerContext | None = None) -> None:
    """Plan and train each stage of ``chain`` in turn; Ray Train calls it on every worker (``ctx`` None).

    A stage is planned only once its parent is written, and re-planned after a worker-group
    restart (``ray.max_failures``), so finished stages are reused and the interrupted one resumes.
    """
    config = TrainConfig.model_validate(chain["config"])
    if ctx is None:
        from deepsalt.training.runtime import RayWorkerContext

        ctx = RayWorkerContext()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        for stage in chain["stages"]:
            job = _plan(stage, chain["data"], config, chain["urls"])
            if _reusable(job):
                continue
            started = time.perf_counter()
            _train_and_save(job, ctx)
            ctx.barrier()  # every rank plans the next stage from this checkpoint
            if ctx.rank == 0:
                seconds = round(time.perf_counter() - started, 1)
                log.info("stage done", extra={"stage": stage, "url": job.url, "seconds": seconds})
    finally:
        torch.set_num_threads(threads)


def _train_and_save(job: _Job, ctx: WorkerContext) -> None:
    config = job.config
    stage = {"sau": _SAUStage, "teacher": _TeacherStage, "student": _StudentStage}[job.stage](
        config, job.data, job.parents
    )
    torch.manual_seed(config.seed)
    model = stage.build()
    result = fit(
        model,
        stage.train_set,
        stage.val_set,
        stage.loss,
        stage.val_loss,
        getattr(config, job.stage),
        seed=config.seed,
        ctx=ctx,
        resume_url=job.url,
        resume_key=job.key,
        stage=job.stage,
    )
    if ctx.rank == 0:
        model.load_state_dict(result.state_dict)
        model.cpu().eval()
        with torch.no_grad():
            meta = stage.finalise(model, result)
        save_checkpoint(
            job.url,
            model.state_dict(),
            stage=job.stage,
            config=config.model_dump(mode="json"),
            config_hash=config.config_hash(),
            stage_key=job.key,
            parents={name: read_meta(u).checkpoint_id for name, u in job.parents.items()},
            metrics={
                "best_val_loss": result.best_val,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                **meta.pop("metrics", {}),
            },
            **meta,
        )
        clear_resume(job.url)


class _SAUStage:
    """Epochs run over the pixel pool (sat reconstruction); each step adds a random batch of pairs."""

    def __init__(self, config: TrainConfig, data: TrainingData, parents: dict[str, str]):
        self.config, self.data = config, data
        paired = np.flatnonzero(data.paired & np.isfinite(data.lab).all(axis=1) & np.isfinite(data.ece))
        if len(paired) < MIN_SAMPLES:
            raise InputDataError(
                "<training data>",
                f"only {len(paired)} lab samples have a clear satellite pixel; the SAU needs ≥ {MIN_SAMPLES}",
            )
        train, val = split_indices(len(data), config.data.val_fraction, config.seed)
        tr, va = np.intersect1d(paired, train), np.intersect1d(paired, val)
        pool = data.pool[np.isfinite(data.pool).all(axis=1)]
        if len(pool) == 0:
            pool = data.sat[tr]
        self.lab_stats = builders.feature_stats(data.lab[tr])
        self.sat_stats = builders.feature_stats(np.concatenate([data.sat[tr], pool]))
        lab_norm, sat_norm = builders.standardizer(self.lab_stats), builders.standardizer(self.sat_stats)
        scaler = TargetScaler.fit(data.ece[tr], config.model.target_transform)
        lab, sat = lab_norm(_tensor(data.lab)), sat_norm(_tensor(np.nan_to_num(data.sat)))
        y = torch.as_tensor(scaler.encode(np.nan_to_num(data.ece)))
        self.pairs = (lab[tr], sat[tr], y[tr])
        self.train_set = TensorDataset(sat_norm(_tensor(pool)))
        self.val_set = (lab[va], sat[va], y[va])
        s = config.sau
        on = config.use_sau
        self.weights = SAULossWeights(
            s.reconstruction_weight,
            s.align_weight if on else 0.0,
            s.nce_weight if on else 0.0,
            s.target_weight if on else 0.0,
            s.temperature,
        )
        self.arch = builders.sau_architecture(config, data.lab.shape[1], data.sat.shape[1])

    def build(self):
        return builders.build_sau(self.arch)

    def loss(self, model, batch, generator):
        (pool,) = batch
        n = min(len(self.pairs[0]), self.config.sau.batch_size)
        idx = torch.randperm(len(self.pairs[0]), generator=generator, device=generator.device)[:n].cpu()
        lab, sat, y = (t[idx].to(pool.device) for t in self.pairs)
        return sau_loss(model(lab, sat, pool), y, self.weights)

    def val_loss(self, model, val):
        lab, sat, y = val
        return float(sau_loss(model(lab, sat), y, self.weights)["loss"])

    def finalise(self, model, result: FitResult) -> dict[str, Any]:
        lab, sat, _ = self.val_set
        out = model(lab, sat)
        cosine = torch.nn.functional.cosine_similarity(out.z_lab, out.z_sat).mean()
        return {
            "band_axis": {
                "wavelength": to_json_array(self.data.wavelength),
                "wavenumber": to_json_array(self.data.wavenumber),
            },
            "normalisation": {"lab": self.lab_stats, "sat": self.sat_stats},
            "architecture": {**self.arch, "aligned": self.config.use_sau},
            "metrics": {"val_cosine": float(cosine)},
        }


def _load_sau(url: str) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    return load_checkpoint(url, "sau")


def _encoder_state(sau_state: dict[str, torch.Tensor], domain: str) -> dict[str, torch.Tensor]:
    prefix = f"{domain}.encoder."
    return {k.removeprefix(prefix): v for k, v in sau_state.items() if k.startswith(prefix)}


class _TeacherStage:
    def __init__(self, config: TrainConfig, data: TrainingData, parents: dict[str, str]):
        self.config, self.data = config, data
        self.sau_state, self.sau = _load_sau(parents["sau"])
        rows = np.flatnonzero(np.isfinite(data.lab).all(axis=1) & np.isfinite(data.ece))
        train, val = split_indices(len(data), config.data.val_fraction, config.seed)
        tr, va = np.intersect1d(rows, train), np.intersect1d(rows, val)
        self.scaler = TargetScaler.fit(data.ece[tr], config.model.target_transform)
        lab, y = _tensor(data.lab), torch.as_tensor(self.scaler.encode(np.nan_to_num(data.ece)))
        self.train_set = TensorDataset(lab[tr], y[tr])
        self.val_set = (lab[va], y[va])
        self.arch = {
            "sau": self.sau.architecture,
            "transformer": builders.transformer_architecture(config, "teacher", config.model.latent_dim, 0),
        }

    def build(self) -> TeacherNet:
        net = builders.build_teacher(self.arch)
        net.lab_norm = builders.standardizer(self.sau.normalisation["lab"])
        net.encoder.load_state_dict(_encoder_state(self.sau_state, "lab"))
        net.encoder.requires_grad_(False)
        net.lab_norm.requires_grad_(False)
        return net

    def loss(self, model, batch, generator):
        lab, y = batch
        out = model(lab)
        return {"loss": task_loss(out.mean, out.std, y, self.config.teacher.nll_weight)}

    def val_loss(self, model, val):
        return float(self.loss(model, val, None)["loss"])

    def finalise(self, model, result: FitResult) -> dict[str, Any]:
        lab, y = self.val_set
        return {
            "band_axis": {"wavenumber": self.sau.band_axis["wavenumber"]},
            "normalisation": {"lab": self.sau.normalisation["lab"], "target": self.scaler.to_dict()},
            "architecture": self.arch,
            "metrics": _quality(model(lab), y, self.scaler),
        }


def _quality(out, y: torch.Tensor, scaler: TargetScaler) -> dict[str, float]:
    """Validation MAE and R² in dS/m."""
    pred, _ = scaler.decode(out.mean.numpy(), out.std.numpy())
    obs, _ = scaler.decode(y.numpy(), np.ones(len(y)))
    mae = float(np.mean(np.abs(pred - obs)))
    r2 = float(1 - np.sum((pred - obs) ** 2) / max(np.sum((obs - obs.mean()) ** 2), 1e-12))
    return {"val_mae": mae, "val_r2": r2}


class _StudentStage:
    def __init__(self, config: TrainConfig, data: TrainingData, parents: dict[str, str]):
        self.config, self.data = config, data
        self.sau_state, self.sau = _load_sau(parents["sau"])
        ok = np.isfinite(data.ece)
        if config.use_satellite:
            ok &= data.paired
        if config.use_covariates:
            ok &= np.isfinite(data.covariates).all(axis=1)
        if config.distill:
            ok &= np.isfinite(data.lab).all(axis=1)
        rows = np.flatnonzero(ok)
        if len(rows) < MIN_SAMPLES:
            raise InputDataError(
                "<training data>", f"only {len(rows)} samples usable by the student; need ≥ {MIN_SAMPLES}"
            )
        train, val = split_indices(len(data), config.data.val_fraction, config.seed)
        tr, va = np.intersect1d(rows, train), np.intersect1d(rows, val)
        self.cov_stats = builders.feature_stats(data.covariates[tr])
        teacher = None
        if config.distill:
            t_state, self.teacher_meta = load_checkpoint(parents["teacher"], "teacher")
            teacher = builders.build_teacher(self.teacher_meta.architecture)
            teacher.load_state_dict(t_state)
            self.scaler = TargetScaler(**self.teacher_meta.normalisation["target"])
        else:
            self.scaler = TargetScaler.fit(data.ece[tr], config.model.target_transform)
        sat = _tensor(np.nan_to_num(data.sat))
        cov = _tensor(np.nan_to_num(data.covariates))
        y = torch.as_tensor(self.scaler.encode(np.nan_to_num(data.ece)))
        tensors = [sat, cov, y]
        if teacher is not None:
            teacher.eval()
            with torch.no_grad():
                out = teacher(_tensor(np.nan_to_num(data.lab)))
            tensors += [out.mean, out.std, *out.features]
        self.train_set = TensorDataset(*(t[tr] for t in tensors))
        self.val_set = tuple(t[va] for t in tensors)
        n_cov = data.covariates.shape[1] if config.use_covariates else 0
        latent = config.model.latent_dim if config.use_satellite else 0
        self.arch = {
            "sau": self.sau.architecture,
            "transformer": builders.transformer_architecture(config, "student", latent, n_cov),
            "use_satellite": config.use_satellite,
            "use_covariates": config.use_covariates,
        }
        s = config.student
        self.weights = DistillationWeights(s.alpha, s.beta, s.gamma, s.nll_weight)

    def build(self) -> StudentNet:
        net = builders.build_student(self.arch)
        if net.encoder is not None:
            net.sat_norm = builders.standardizer(self.sau.normalisation["sat"])
            net.encoder.load_state_dict(_encoder_state(self.sau_state, "sat"))
            net.encoder.requires_grad_(not self.config.student.freeze_encoder)
            net.sat_norm.requires_grad_(False)
        if net.cov_norm is not None:
            net.cov_norm = builders.standardizer(self.cov_stats)
        return net

    def loss(self, model, batch, generator):
        sat, cov, y, *teacher = batch
        out = model(sat, cov)
        if not teacher:
            return {"loss": task_loss(out.mean, out.std, y, self.config.student.nll_weight)}
        t_mean, t_std, *t_features = teacher
        return distillation_loss(out, t_mean, t_std, t_features, y, self.weights)

    def val_loss(self, model, val):
        sat, cov, y, *_ = val
        out = model(sat, cov)
        return float(task_loss(out.mean, out.std, y, self.config.student.nll_weight))

    def finalise(self, model: StudentNet, result: FitResult) -> dict[str, Any]:
        train_sat, train_cov = self.train_set.tensors[:2]
        from sklearn.covariance import LedoitWolf  # here: SAU- and teacher-only workers skip its 2 s import

        sat, cov, y, *_ = self.val_set
        fitted = LedoitWolf().fit(model.domain_features(train_sat, train_cov).numpy().astype(np.float64))
        model.domain.mean.copy_(torch.as_tensor(fitted.location_))
        model.domain.precision.copy_(torch.as_tensor(fitted.precision_))
        held_out = model.domain(model.domain_features(sat, cov))
        model.domain.scale.copy_(
            torch.quantile(held_out, self.config.student.domain_quantile).clamp_min(1e-6)
        )
        return {
            "band_axis": {"wavelength": self.sau.band_axis["wavelength"]},
            "normalisation": {
                "sat": self.sau.normalisation["sat"],
                "covariates": self.cov_stats,
                "target": self.scaler.to_dict(),
                "domain": {
                    "method": "mahalanobis-ledoit-wolf",
                    "quantile": self.config.student.domain_quantile,
                    "shrinkage": float(fitted.shrinkage_),
                },
            },
            "architecture": self.arch,
            "metrics": _quality(model(sat, cov), y, self.scaler),
        }
