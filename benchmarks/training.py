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


def benchmark(
    workspace: Workspace, scratch: Path, epochs: tuple[int, int], warmup: int, repeats: int
) -> dict[str, Any]:
    """Samples/s of every stage (plain loop) and Ray Train's overhead on the student stage."""
    from benchmarks.timing import fit_linear_cost, interleaved
    from deepsalt.training.config import TrainConfig
    from deepsalt.training.pipeline import load_training_data

    scratch.mkdir(parents=True, exist_ok=True)
    data = load_training_data(train_config(workspace.train_output, workspace.region_url))
    short, long = epochs
    per_epoch = {stage: samples_per_epoch(workspace, data, stage) for stage in STAGE_ORDER}
    runs = {f"{stage} plain": stage_run(workspace, data, stage, long, 0, scratch) for stage in STAGE_ORDER}
    runs |= {
        "student plain short": stage_run(workspace, data, "student", short, 0, scratch),
        "student ray short": stage_run(workspace, data, "student", short, 1, scratch),
        "student ray": stage_run(workspace, data, "student", long, 1, scratch),
    }
    work = {name: float(per_epoch[name.split()[0]] * (short if "short" in name else long)) for name in runs}
    t = interleaved(runs, work, warmup=warmup, repeats=repeats)
    plain = fit_linear_cost(
        [short] * repeats + [long] * repeats, [*t["student plain short"].seconds, *t["student plain"].seconds]
    )
    ray = fit_linear_cost(
        [short] * repeats + [long] * repeats, [*t["student ray short"].seconds, *t["student ray"].seconds]
    )
    default_epochs = TrainConfig().student.epochs
    return {
        "stages": {
            stage: {
                "samples_per_epoch": per_epoch[stage],
                "epochs": long,
                "samples_per_s": t[f"{stage} plain"].throughput,
            }
            for stage in STAGE_ORDER
        },
        "ray_overhead": {
            "timings": {
                name: t[name].as_dict()
                for name in ("student plain short", "student ray short", "student plain", "student ray")
            },
            "epochs_short": short,
            "epochs_long": long,
            "overhead_measured": overhead(t["student ray"].median, t["student plain"].median),
            "plain_fixed_s": plain.fixed,
            "plain_epoch_s": plain.per_unit,
            "ray_fixed_s": ray.fixed,
            "ray_epoch_s": ray.per_unit,
            "per_epoch_overhead": overhead(ray.per_unit, plain.per_unit),
            "default_epochs": default_epochs,
            "overhead_default_run": overhead(
                ray.fixed + ray.per_unit * default_epochs, plain.fixed + plain.per_unit * default_epochs
            ),
        },
    }
