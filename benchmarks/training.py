"""Training throughput: samples/s per stage, and Ray Train (1 worker) against the plain loop.

Each run trains a stage for a fixed number of epochs (patience above the epoch count, so early
stopping never cuts a run short) into a fresh checkpoint URL, through the public stage functions
the CLI uses. Runs at two epoch counts separate Ray Train's fixed start-up from its per-epoch
cost, so the overhead can be stated for a run of any length.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.timing import LinearCost
from benchmarks.workspace import Workspace, train_config

STAGE_ORDER = ("sau", "teacher", "student")


def stage_config(workspace: Workspace, stage: str, epochs: int, num_workers: int) -> Any:
    """Benchmark config: ``epochs`` exactly (no early stop), in-process or on Ray Train workers."""
    base = train_config(workspace.train_output, workspace.region_url)
    settings = {"epochs": epochs, "patience": epochs + 1}
    return train_config(
        workspace.train_output,
        workspace.region_url,
        **{stage: getattr(base, stage).model_dump() | settings},
        ray={"num_workers": num_workers, "cpus_per_worker": 1.0},
    )


def samples_per_epoch(workspace: Workspace, data: Any, stage: str) -> int:
    """Training rows one epoch of ``stage`` visits (the stage's own split and row filters)."""
    from deepsalt.training import stages

    config = train_config(workspace.train_output, workspace.region_url)
    parents = {"sau": config.stage_url("sau"), "teacher": config.stage_url("teacher")}
    # The stage classes own the row filters; asking them avoids restating those rules here.
    cls = {"sau": stages._SAUStage, "teacher": stages._TeacherStage, "student": stages._StudentStage}[stage]
    return len(cls(config, data, parents).train_set)


def stage_run(
    workspace: Workspace, data: Any, stage: str, epochs: int, num_workers: int, scratch: Path
) -> Callable[[], None]:
    """One call = one fresh training of ``stage`` (checkpoint deleted afterwards)."""
    from deepsalt.training.stages import train_sau, train_student, train_teacher

    config = stage_config(workspace, stage, epochs, num_workers)
    sau, teacher = config.stage_url("sau"), config.stage_url("teacher")

    def run() -> None:
        url = scratch / f"{stage}-{num_workers}w-{uuid.uuid4().hex[:8]}"
        try:
            if stage == "sau":
                train_sau(data, config, str(url))
            elif stage == "teacher":
                train_teacher(data, config, sau, str(url))
            else:
                train_student(data, config, sau, teacher, str(url))
        finally:
            shutil.rmtree(url, ignore_errors=True)

    return run


def overhead(ray_seconds: float, plain_seconds: float) -> float:
    """Ray Train's extra wall time as a share of the plain loop's (target ≤ 0.15)."""
    return ray_seconds / plain_seconds - 1.0


def projected_overhead(ray: LinearCost, plain: LinearCost, epochs: int) -> float:
    """Overhead of a whole ``epochs``-epoch run: start-up and per-epoch costs from the fits."""
    return overhead(ray.fixed + ray.per_unit * epochs, plain.fixed + plain.per_unit * epochs)


def epochs_to_target(ray: LinearCost, plain: LinearCost, bound: float = 0.15) -> float | None:
    """Fewest epochs whose run overhead is within ``bound`` (None: the per-epoch cost alone exceeds it).

    Solves ``ray.fixed + ray.per_unit·E ≤ (1 + bound)·(plain.fixed + plain.per_unit·E)`` for E.
    """
    margin = (1 + bound) * plain.per_unit - ray.per_unit
    if margin <= 0:
        return None
    return max(0.0, (ray.fixed - (1 + bound) * plain.fixed) / margin)


def benchmark(
    workspace: Workspace,
    scratch: Path,
    stage_epochs: int,
    overhead_epochs: tuple[int, int],
    warmup: int,
    repeats: int,
) -> dict[str, Any]:
    """Samples/s of every stage (plain loop) and Ray Train's overhead on the student stage.

    The overhead runs span many epochs (``overhead_epochs``) so the per-epoch difference is well
    above the ±2 s jitter of Ray Train's end-of-run detection (its controller polls every 2 s).
    """
    from benchmarks.timing import fit_linear_cost, interleaved
    from deepsalt.training.config import TrainConfig
    from deepsalt.training.pipeline import load_training_data
    from deepsalt.training.runtime import REPORT_INTERVAL_S

    scratch.mkdir(parents=True, exist_ok=True)
    data = load_training_data(train_config(workspace.train_output, workspace.region_url))
    short, long = overhead_epochs
    per_epoch = {stage: samples_per_epoch(workspace, data, stage) for stage in STAGE_ORDER}
    epochs = {f"{stage} plain": stage_epochs for stage in STAGE_ORDER}
    epochs |= {
        f"student {way} {size}": n
        for way in ("plain", "ray")
        for size, n in (("short", short), ("long", long))
    }
    runs = {
        name: stage_run(workspace, data, name.split()[0], n, int("ray" in name), scratch)
        for name, n in epochs.items()
    }
    work = {name: float(per_epoch[name.split()[0]] * n) for name, n in epochs.items()}
    t = interleaved(runs, work, warmup=warmup, repeats=repeats)
    sizes = [short] * repeats + [long] * repeats
    plain, ray = (
        fit_linear_cost(sizes, [*t[f"student {way} short"].seconds, *t[f"student {way} long"].seconds])
        for way in ("plain", "ray")
    )
    default_epochs = TrainConfig().student.epochs
    return {
        "stages": {
            stage: {
                "samples_per_epoch": per_epoch[stage],
                "epochs": stage_epochs,
                "samples_per_s": t[f"{stage} plain"].throughput,
            }
            for stage in STAGE_ORDER
        },
        "ray_overhead": {
            "timings": {name: t[name].as_dict() for name in epochs if name.count(" ") == 2},
            "epochs_short": short,
            "epochs_long": long,
            "overhead_measured": overhead(t["student ray long"].median, t["student plain long"].median),
            "plain_fixed_s": plain.fixed,
            "plain_epoch_s": plain.per_unit,
            "ray_fixed_s": ray.fixed,
            "ray_epoch_s": ray.per_unit,
            "startup_s": ray.fixed - plain.fixed,
            "epoch_overhead_s": ray.per_unit - plain.per_unit,
            "per_epoch_overhead": overhead(ray.per_unit, plain.per_unit),
            "report_interval_s": REPORT_INTERVAL_S,
            "default_epochs": default_epochs,
            "overhead_default_run": projected_overhead(ray, plain, default_epochs),
            "epochs_to_target": epochs_to_target(ray, plain),
        },
    }
