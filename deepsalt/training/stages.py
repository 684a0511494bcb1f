"""The chain of training stages: SAU → teacher → student, through one registry.

:func:`train_stages` trains a run of stages in order, in this process or in one Ray Train run on
N workers (``config.ray.num_workers``): the worker group, its process group and the workers'
imports are paid once for the chain, not once per stage. Before a stage trains it is planned
(:func:`plan_stage`): its parents' checkpoint metadata is read once, lineage is validated and a
stage key is derived; a checkpoint with the same key is reused. ``train_sau``, ``train_teacher``
and ``train_student`` train one stage from explicit parent URLs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from deepsalt.errors import InputDataError, LineageError
from deepsalt.logs import get_logger
from deepsalt.training.checkpoint import (
    META,
    clear_resume,
    has_checkpoint,
    read_meta,
    save_checkpoint,
    stage_key,
)
from deepsalt.training.config import Stage, TrainConfig
from deepsalt.training.data import TrainingData
from deepsalt.training.loop import fit
from deepsalt.training.runtime import WorkerContext, default_device
from deepsalt.training.stage_base import ParentCheckpoint, StageTrainer
from deepsalt.training.stage_sau import SAUTrainer
from deepsalt.training.stage_student import StudentTrainer
from deepsalt.training.stage_teacher import TeacherTrainer

log = get_logger(__name__)

STAGE_TRAINERS: dict[Stage, type[StageTrainer]] = {
    t.stage: t for t in (SAUTrainer, TeacherTrainer, StudentTrainer)
}
"""The one registry of stages: each stage's hooks, keyed by its name."""

StageURLs = Mapping[Stage, str | None]
"""Checkpoint URL per stage; the teacher's is None when the student is not distilled."""


@dataclass(frozen=True)
class StagePlan:
    """One stage, planned: where it writes, the key its checkpoint must carry, its parents."""

    stage: Stage
    url: str
    key: str
    parents: Mapping[Stage, ParentCheckpoint]


@dataclass(frozen=True)
class ChainJob:
    """What every Ray Train worker receives: the stages to train, where, with which settings and data."""

    stages: tuple[Stage, ...]
    urls: Mapping[Stage, str | None]
    config: TrainConfig
    data: TrainingData
    planned: tuple[StagePlan, ...] = ()
    """Stages the driver has already planned (their parents' metadata read there): the workers use
    these plans instead of reading the same metadata again. Only a stage whose parents are finished
    before the job starts belongs here."""


# ---------------------------------------------------------------- public stage functions


def train_sau(data: TrainingData, config: TrainConfig, url: str | None = None) -> str:
    """Train both autoencoders (aligned unless ``config.use_sau`` is false); returns the checkpoint URL."""
    return train_stages(data, config, [Stage.SAU], {Stage.SAU: url or config.stage_url(Stage.SAU)})[Stage.SAU]


def train_teacher(data: TrainingData, config: TrainConfig, sau_url: str, url: str | None = None) -> str:
    """Train the teacher from the SAU's lab encoder."""
    urls = {Stage.SAU: sau_url, Stage.TEACHER: url or config.stage_url(Stage.TEACHER)}
    return train_stages(data, config, [Stage.TEACHER], urls)[Stage.TEACHER]


def train_student(
    data: TrainingData,
    config: TrainConfig,
    sau_url: str,
    teacher_url: str | None = None,
    url: str | None = None,
) -> str:
    """Train the student ensemble, distilled from the teacher when ``config.distill``."""
    urls = {
        Stage.SAU: sau_url,
        Stage.TEACHER: teacher_url,
        Stage.STUDENT: url or config.stage_url(Stage.STUDENT),
    }
    return train_stages(data, config, [Stage.STUDENT], urls)[Stage.STUDENT]


def train_stages(
    data: TrainingData, config: TrainConfig, stages: Sequence[Stage], urls: StageURLs
) -> dict[Stage, str]:
    """Train ``stages`` in order into ``urls[stage]`` and return stage → checkpoint URL.

    Leading stages whose checkpoint already matches are skipped here, so a finished chain starts
    no Ray; the first stage to train is planned here too, so its lineage errors reach the caller
    unwrapped. The rest trains in one go: a Ray Train run, or this process.
    """
    stages = [Stage(s) for s in stages]
    urls = {Stage(k): v for k, v in urls.items()}
    pending = list(stages)
    first = None
    while pending:
        first = plan_stage(pending[0], data, config, urls)
        if not _reusable(first):
            break
        pending.pop(0)
    if pending:
        assert first is not None and first.stage is pending[0]
        job = ChainJob(tuple(pending), urls, config, data, planned=(first,))
        if config.ray.num_workers == 0:
            run_chain_job(job, WorkerContext(default_device()))
        else:
            from deepsalt.training.distributed import run_on_ray

            run_on_ray(run_chain_job_on_ray, job, config, name="+".join(s.value for s in pending))
    for stage in pending:  # fail loudly if no worker wrote it (the others were checked by their plan)
        url = urls[stage]
        if url is None or not has_checkpoint(url):
            raise InputDataError(
                str(url), f"no {stage.value} checkpoint here ({META} missing) after training"
            )
    return {stage: urls[stage] for stage in stages}


def _shared(config: TrainConfig) -> dict[str, Any]:
    """Settings every stage depends on (not where it runs or writes)."""
    return config.model_dump(
        mode="json",
        include={
            "seed",
            "use_sau",
            "distill",
            "use_covariates",
            "use_survey",
            "use_satellite",
            "data",
            "model",
        },
    )


def plan_stage(stage: Stage, data: TrainingData, config: TrainConfig, urls: StageURLs) -> StagePlan:
    """Read the parents' checkpoints once, validate lineage and derive the stage's key."""
    trainer = STAGE_TRAINERS[stage]
    parents = {}
    for parent in trainer.parent_stages(config):
        url = urls.get(parent)
        if url is None:
            raise LineageError(
                f"the {stage.value} stage needs a {parent.value} checkpoint, and none was given"
            )
        parents[parent] = ParentCheckpoint(url, read_meta(url, parent))
    trainer.check_lineage(config, data, parents)
    key = stage_key(
        stage.value,
        _shared(config),
        config.settings(stage).model_dump(mode="json"),
        data.fingerprint(),
        [parents[p].meta.checkpoint_id for p in parents],
        *([trainer.revision] if trainer.revision > 1 else []),
    )
    return StagePlan(stage, urls[stage], key, parents)


def _reusable(plan: StagePlan) -> bool:
    if has_checkpoint(plan.url) and read_meta(plan.url, plan.stage).stage_key == plan.key:
        log.info(
            "reusing checkpoint with identical settings, data and parents",
            extra={"stage": plan.stage.value, "url": plan.url},
        )
        return True
    return False


# ---------------------------------------------------------------- per-worker chain


def run_chain_job_on_ray(loop_config: Mapping[str, ChainJob]) -> None:
    """Ray Train's per-worker entry point (Ray passes ``train_loop_config`` as a dict)."""
    from deepsalt.training.distributed import JOB
    from deepsalt.training.runtime import RayWorkerContext

    run_chain_job(loop_config[JOB], RayWorkerContext())


def run_chain_job(job: ChainJob, ctx: WorkerContext) -> None:
    """Plan and train each stage of ``job`` in turn, on every worker.

    A stage is planned only once its parent is written, and re-planned after a worker-group
    restart (``ray.max_failures``), so finished stages are reused and the interrupted one resumes.
    """
    config = job.config
    planned = {plan.stage: plan for plan in job.planned}
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        for stage in job.stages:
            plan = planned.get(stage) or plan_stage(stage, job.data, config, job.urls)
            if _reusable(plan):
                continue
            started = time.perf_counter()
            _train_and_save(plan, job, ctx)
            ctx.barrier()  # every rank plans the next stage from this checkpoint
            if ctx.rank == 0:
                seconds = round(time.perf_counter() - started, 1)
                log.info("stage done", extra={"stage": stage.value, "url": plan.url, "seconds": seconds})
    finally:
        torch.set_num_threads(threads)


def _train_and_save(plan: StagePlan, job: ChainJob, ctx: WorkerContext) -> None:
    config = job.config
    trainer = STAGE_TRAINERS[plan.stage](config, job.data, plan.parents)
    trainer.prepare()
    torch.manual_seed(config.seed)
    model = trainer.build()
    result = fit(
        model,
        trainer.train_set,
        trainer.val_set,
        trainer.loss,
        trainer.val_loss,
        trainer.settings,
        seed=config.seed,
        ctx=ctx,
        resume_url=plan.url,
        resume_key=plan.key,
        stage=plan.stage.value,
        restore_best=trainer.restore_best,
        begin_epoch=trainer.begin_epoch,
    )
    if ctx.rank == 0:
        model.load_state_dict(result.state_dict)
        model.cpu().eval()
        with torch.no_grad():
            weights, output = trainer.finalise(model, result)
        save_checkpoint(
            plan.url,
            weights,
            stage=plan.stage.value,
            config=config.model_dump(mode="json"),
            config_hash=config.config_hash(),
            stage_key=plan.key,
            parents={p.value: parent.meta.checkpoint_id for p, parent in plan.parents.items()},
            metrics={
                "best_val_loss": result.best_val,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                **output.metrics,
            },
            band_axis=output.band_axis,
            normalisation=output.normalisation,
            architecture=output.architecture,
        )
        clear_resume(plan.url)
