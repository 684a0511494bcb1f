"""Training throughput: samples/s per stage, and Ray Train (1 worker) against the plain loop.

Each run trains for a fixed number of epochs (patience above the epoch count, so early stopping
never cuts a run short) into fresh checkpoint URLs, through the functions the CLI uses. The Ray
Train comparison trains the whole chain (SAU → teacher → student, one Ray Train run, as
``deepsalt train`` does) at two lengths, in "chain units": the default epochs of every stage
divided by their greatest common divisor, so the default chain is a whole number of units. The
two lengths separate Ray Train's fixed start-up from its per-unit cost, so the overhead can be
stated for the default run.
"""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.timing import LinearCost
from benchmarks.workspace import Workspace, train_config

STAGE_ORDER = ("sau", "teacher", "student")


def exact_epochs_config(
    workspace: Workspace, output: str, epochs: dict[str, int], num_workers: int = 0
) -> Any:
    """Benchmark config training each listed stage ``epochs[stage]`` epochs exactly (no early stop)."""
    base = train_config(workspace.train_output, workspace.region_url)
    stages = {
        stage: getattr(base, stage).model_dump() | {"epochs": n, "patience": n + 1}
        for stage, n in epochs.items()
    }
    return train_config(
        output, workspace.region_url, **stages, ray={"num_workers": num_workers, "cpus_per_worker": 1.0}
    )


def samples_per_epoch(workspace: Workspace, data: Any, stage: str) -> int:
    """Training rows one epoch of ``stage`` visits (the stage's own split and row filters)."""
    from deepsalt.training.config import Stage
    from deepsalt.training.stages import STAGE_TRAINERS, plan_stage

    config = train_config(workspace.train_output, workspace.region_url)
    urls = {s: config.stage_url(s) for s in Stage}
    # The stage trainers own the row filters; asking them avoids restating those rules here.
    planned = plan_stage(Stage(stage), data, config, urls)
    trainer = STAGE_TRAINERS[planned.stage](config, data, planned.parents)
    trainer.prepare()
    return len(trainer.train_set)


def stage_run(workspace: Workspace, data: Any, stage: str, epochs: int, scratch: Path) -> Callable[[], None]:
    """One call = one fresh in-process training of ``stage`` on the workspace's parents (then deleted)."""
    from deepsalt.training.stages import train_stages

    config = exact_epochs_config(workspace, workspace.train_output, {stage: epochs})
    parents = {"sau": config.stage_url("sau"), "teacher": config.stage_url("teacher")}

    def run() -> None:
        url = scratch / f"{stage}-{uuid.uuid4().hex[:8]}"
        try:
            train_stages(data, config, [stage], parents | {stage: str(url)})
        finally:
            shutil.rmtree(url, ignore_errors=True)

    return run


def chain_unit() -> tuple[dict[str, int], int]:
    """Epochs per stage in one chain unit, and the default chain's length in units."""
    from deepsalt.training.config import TrainConfig

    defaults = {stage: getattr(TrainConfig(), stage).epochs for stage in STAGE_ORDER}
    units = math.gcd(*defaults.values())
    return {stage: n // units for stage, n in defaults.items()}, units


def chain_run(
    workspace: Workspace, data: Any, units: int, num_workers: int, scratch: Path
) -> Callable[[], None]:
    """One call = one fresh training of the whole chain, ``units`` chain units long."""
    from deepsalt.training.pipeline import run_training

    per_unit, _ = chain_unit()
    epochs = {stage: n * units for stage, n in per_unit.items()}

    def run() -> None:
        output = scratch / f"chain-{num_workers}w-{uuid.uuid4().hex[:8]}"
        config = exact_epochs_config(workspace, str(output), epochs, num_workers)
        try:
            run_training(config, data)
        finally:
            shutil.rmtree(output, ignore_errors=True)

    return run


def overhead(ray_seconds: float, plain_seconds: float) -> float:
    """Ray Train's extra wall time as a share of the plain loop's (target ≤ 0.15)."""
    return ray_seconds / plain_seconds - 1.0


def projected_overhead(ray: LinearCost, plain: LinearCost, units: float) -> float:
    """Overhead of a whole ``units``-long run: start-up and per-unit costs from the fits."""
    return overhead(ray.fixed + ray.per_unit * units, plain.fixed + plain.per_unit * units)


def units_to_target(ray: LinearCost, plain: LinearCost, bound: float = 0.15) -> float | None:
    """Shortest run (in units) whose overhead is within ``bound`` (None: the per-unit cost alone exceeds it).

    Solves ``ray.fixed + ray.per_unit·U ≤ (1 + bound)·(plain.fixed + plain.per_unit·U)`` for U.
    """
    margin = (1 + bound) * plain.per_unit - ray.per_unit
    if margin <= 0:
        return None
    return max(0.0, (ray.fixed - (1 + bound) * plain.fixed) / margin)


def benchmark(
    workspace: Workspace,
    scratch: Path,
    stage_epochs: int,
    overhead_units: tuple[int, int],
    warmup: int,
    repeats: int,
) -> dict[str, Any]:
    """Samples/s of every stage (plain loop) and Ray Train's overhead on the whole chain.

    The overhead runs span several chain units (``overhead_units``) so the per-unit difference is
    well above the jitter of Ray Train's start-up and end-of-run detection.
    """
    from benchmarks.timing import fit_linear_cost, interleaved
    from deepsalt.training.pipeline import load_training_data
    from deepsalt.training.runtime import REPORT_INTERVAL_S

    scratch.mkdir(parents=True, exist_ok=True)
    data, _ = load_training_data(train_config(workspace.train_output, workspace.region_url))
    short, long = overhead_units
    per_unit, default_units = chain_unit()
    per_epoch = {stage: samples_per_epoch(workspace, data, stage) for stage in STAGE_ORDER}
    runs = {
        f"{stage} plain": stage_run(workspace, data, stage, stage_epochs, scratch) for stage in STAGE_ORDER
    }
    work = {f"{stage} plain": float(per_epoch[stage] * stage_epochs) for stage in STAGE_ORDER}
    unit_samples = sum(per_epoch[stage] * n for stage, n in per_unit.items())
    for way, workers in (("plain", 0), ("ray", 1)):
        for size, units in (("short", short), ("long", long)):
            runs[f"chain {way} {size}"] = chain_run(workspace, data, units, workers, scratch)
            work[f"chain {way} {size}"] = float(unit_samples * units)
    t = interleaved(runs, work, warmup=warmup, repeats=repeats)
    sizes = [short] * repeats + [long] * repeats
    plain, ray = (
        fit_linear_cost(sizes, [*t[f"chain {way} short"].seconds, *t[f"chain {way} long"].seconds])
        for way in ("plain", "ray")
    )
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
            "timings": {name: t[name].as_dict() for name in runs if name.startswith("chain ")},
            "unit_epochs": per_unit,
            "units_short": short,
            "units_long": long,
            "overhead_measured": overhead(t["chain ray long"].median, t["chain plain long"].median),
            "plain_fixed_s": plain.fixed,
            "plain_unit_s": plain.per_unit,
            "ray_fixed_s": ray.fixed,
            "ray_unit_s": ray.per_unit,
            "startup_s": ray.fixed - plain.fixed,
            "unit_overhead_s": ray.per_unit - plain.per_unit,
            "per_unit_overhead": overhead(ray.per_unit, plain.per_unit),
            "report_interval_s": REPORT_INTERVAL_S,
            "default_units": default_units,
            "default_plain_s": plain.fixed + plain.per_unit * default_units,
            "overhead_default_run": projected_overhead(ray, plain, default_units),
            "units_to_target": units_to_target(ray, plain),
        },
    }
