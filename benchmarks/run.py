"""``make bench``: run every benchmark family, then write results.json and RESULTS.md.

    .venv/bin/python -m benchmarks.run            # full run (≈ 12 min on 2 cores, once the workspace exists)
    .venv/bin/python -m benchmarks.run --quick    # smoke run: small region, small tiles, one run per figure

Torch and GDAL run one thread per worker everywhere, so a floor measured in this process
compares with one Ray actor or one Ray Train worker.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import cost, machine, report
from benchmarks.report import Target
from deepsalt.logs import get_logger, setup_logging

if TYPE_CHECKING:
    from benchmarks.mapping import Geometry

log = get_logger(__name__)

HERE = Path(__file__).parent
NOTES = HERE / "notes.md"
BUSY_LOAD_PER_CORE = 0.5
"""A 1-minute load average above this per core means other work shared the machine."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small region, no warm-up, one run each"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "deepsalt-bench"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.json and RESULTS.md")
    parser.add_argument(
        "--predictor",
        default=None,
        help="module:Class of the predictor to map with (default: the map config's)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite RESULTS.md (and the targets in results.json) from results.json and notes.md, measuring nothing",
    )
    parser.add_argument(
        "--only",
        choices=("mapping", "training"),
        action="append",
        help="run only these families (repeatable)",
    )
    return parser.parse_args(argv)


@dataclass(frozen=True)
class RunPlan:
    """Sizes and repetitions of one benchmark run."""

    geometry: Geometry
    """Tile, chunk and block sizes of the mapping family."""
    world_name: str
    world: dict[str, Any]
    """``deepsalt synth`` settings of the mapping family's world."""
    warmup: int
    repeats: int
    memory_runs: int
    """Rounds of P and H on 1 actor, and runs of 2P on 2 actors (P's and 2P's actor peaks are compared,
    the median of each)."""
    stage_epochs: int
    overhead_units: tuple[int, int]


def plan(quick: bool) -> RunPlan:
    """Sizes and repetitions: the full run fits in about 15 minutes on 2 shared cores.

    Mapping runs at production shape (tiles of 1024², a 2048² region and one twice its size): its
    steady rates come from many tiles within each run. The runs the memory target compares are
    repeated (three times each: one run's actor peak moves by about ±10 % with the tiles an actor
    draws, as much as the bound), and so is H, whose runs pair with P's for the marginal cost;
    the figures are medians over those rounds. The training family keeps its warm-up and three
    interleaved repeats on the small demo region.
    """
    from benchmarks import mapping, workspace

    if quick:
        return RunPlan(mapping.QUICK, "quick", workspace.QUICK_WORLD, 0, 1, 1, 2, (1, 2))
    return RunPlan(mapping.FULL, "production", workspace.PRODUCTION_WORLD, 1, 3, 3, 10, (1, 5))


def single_threaded() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["GDAL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    if "mapping" in results:
        m = results["mapping"]
        e, alt = m["end_to_end"], m["alternative"]
        if e.get("ratio_steady") is not None:
            found.append(
                Target(
                    "end-to-end per-pixel cost / physical floors (a) + (b) + (c), steady state (1 actor)",
                    e["ratio_steady"],
                    2.0,
                    True,
                )
            )
        found.append(
            Target(
                "end-to-end per-pixel cost / physical floors (a) + (b) + (c), marginal (1 actor)",
                e["ratio_marginal"],
                2.0,
                True,
            )
        )
        found.append(
            Target(
                "student forward / this core's fp32 GEMM rate",
                m["own_code"]["model_share_of_gemm"],
                0.30,
                False,
            )
        )
        if alt.get("ratio_steady") is not None:
            found.append(
                Target(
                    f"DeepSalt 2 actors (steady state) / dask recipe with 2 threads ({alt['held_region']})",
                    alt["ratio_steady"],
                    2.0,
                    False,
                )
            )
        if m["scaling"].get("steady_ratio") is not None:
            found.append(Target("2 actors / 1 actor, steady state", m["scaling"]["steady_ratio"], 1.8, False))
        found.append(
            Target(
                "actor peak memory, twice the tiles at the same tiles per actor (change)",
                m["memory"]["growth_same_tiles"],
                0.10,
                True,
                absolute=True,
            )
        )
    if "training" in results:
        o = results["training"]["ray_overhead"]
        found += [
            # Judged on a user's whole default-length chain: start-up is paid once per run, so a
            # short benchmark run overstates it and the per-epoch figure alone hides it.
            Target(
                "Ray Train overhead, projected default chain (SAU → teacher → student; the target)",
                o["overhead_default_run"],
                0.15,
                True,
            ),
            Target(
                "Ray Train overhead per chain unit, start-up excluded", o["per_unit_overhead"], 0.15, True
            ),
            Target(
                f"Ray Train overhead, {o['units_long']}-unit chain as measured",
                o["overhead_measured"],
                0.15,
                True,
            ),
        ]
    return [t.as_dict() for t in found]


def cost_results(mapping: dict[str, Any]) -> dict[str, Any]:
    """The western-US projection from this run's per-pixel mapping figures."""
    f, own, e = mapping["floors"], mapping["own_code"], mapping["end_to_end"]
    pixels = mapping["regions"]["production"]["pixels"]
    read_s, model_s = own["read_s"] / pixels, own["model_s"] / pixels
    steady = e.get("one_actor_steady_px_s")
    measured = cost.Measured(
        read_s_per_pixel=read_s,
        model_s_per_pixel_cpu=model_s,
        flops_per_pixel=f["student_flops_per_pixel"] * f["predicted_pixels"] / pixels,
        stored_bytes_per_pixel=f["stored_bytes"] / pixels,
        pipeline_overhead=(1 / steady) / (read_s + model_s) if steady else 1.0,
    )
    workload = cost.Workload()
    nodes = (cost.GPU_NODE, cost.CPU_NODE)
    return {
        "workload": workload.__dict__,
        "measured": measured.__dict__,
        "node_notes": [
            f"{n.name}: {n.cores} cores reading, {n.bandwidth_bytes_s / 1e9:.1f} GB/s object-store reads"
            + (
                f", GPU {n.gpu_flops / 1e12:.0f} TFLOP/s peak (bf16, model.precision: bf16) at "
                f"{n.gpu_efficiency:.0%} efficiency"
                if n.gpus
                else ", cores share reading and inference"
            )
            for n in nodes
        ],
        "projections": [cost.project(n, workload, measured).as_dict() for n in nodes],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()
    if args.render_only:
        path = args.out / "results.json"
        stored = report.read_json(path)
        stored["targets"] = targets(stored)  # derived from the stored figures, so kept in step
        report.write_json(stored, path)
        write_summary(stored, args.out)
        return
    families = set(args.only or ("mapping", "training"))
    settings = plan(args.quick)
    single_threaded()
    from benchmarks import workspace as ws

    run = RunInfo(args, settings)
    ws.fresh_package_dir(args.workdir)
    ws.start_ray(num_cpus=os.cpu_count() or 2, temp_dir=args.workdir / "ray")
    results = kept_families(args.out / "results.json", families)
    if "mapping" in families:
        from benchmarks import mapping
        from deepsalt.synth import load_region

        space = ws.prepare(args.workdir, settings.world_name, settings.world)
        manifest = load_region(space.region_url)
        model = {"student_url": space.student_url, "compile": "always"}
        if args.predictor:
            model["predictor"] = args.predictor
        with ws.stac_api(space.region_url) as stac_url:
            inputs = mapping.Inputs(
                stac_url, manifest.href("covariates"), manifest.href(manifest.files.survey["export"]), model
            )
            results["mapping"] = mapping.benchmark(
                manifest.bbox_lonlat,
                inputs,
                settings.geometry,
                args.workdir / "maps",
                space.student_url,
                settings.memory_runs,
            )
        results["mapping"]["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["cost"] = cost_results(results["mapping"])
        run.write(results)  # a family's figures are kept even if a later family fails
    if "training" in families:
        from benchmarks import training

        space = ws.prepare(args.workdir, "small", {"size": "small"})
        results["training"] = training.benchmark(
            space,
            args.workdir / "train",
            settings.stage_epochs,
            settings.overhead_units,
            settings.warmup,
            settings.repeats,
        )
        results["training"]["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        run.write(results)


FAMILY_KEYS = {"mapping": ("mapping", "cost"), "training": ("training",)}


def kept_families(path: Path, rerun: set[str]) -> dict[str, Any]:
    """Figures of the families not rerun this time, from an earlier results.json (each keeps its
    own ``measured_at``), so ``--only`` refreshes one family without dropping the others."""
    if not path.exists():
        return {}
    earlier = report.read_json(path)
    keys = [key for family, keys in FAMILY_KEYS.items() if family not in rerun for key in keys]
    return {key: earlier[key] for key in keys if key in earlier}


class RunInfo:
    """When and where the run happened; writes results.json and RESULTS.md with that context."""

    def __init__(self, args: argparse.Namespace, settings: RunPlan):
        self.args, self.settings = args, settings
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self.clock = time.monotonic()
        self.machine = machine.describe() | {"fresh_memory": machine.fresh_memory().as_dict()}
        self.cpu_at_start = machine.cpu_seconds()

    def meta(self) -> dict[str, Any]:
        load_now = [round(x, 2) for x in os.getloadavg()]
        # The load at the start only: by the end the 1-minute load counts the benchmark's own runs.
        busy = self.machine["load_average_1_5_15"][0] > BUSY_LOAD_PER_CORE * (os.cpu_count() or 1)
        return {
            "started": self.started,
            "seconds": round(time.monotonic() - self.clock, 1),
            "quick": self.args.quick,
            "warmup": self.settings.warmup,
            "repeats": self.settings.repeats,
            "machine": self.machine | {"load_average_end": load_now},
            "under_load": busy,
            "steal_share": machine.steal_share(self.cpu_at_start, machine.cpu_seconds()),
        }

    def write(self, results: dict[str, Any]) -> None:
        out = self.args.out
        full = {"meta": self.meta(), "targets": targets(results), **results}
        out.mkdir(parents=True, exist_ok=True)
        report.write_json(full, out / "results.json")
        write_summary(full, out)
        log.info("benchmarks written", extra={"out": str(out), "seconds": full["meta"]["seconds"]})


def write_summary(results: dict[str, Any], out: Path) -> None:
    """RESULTS.md from the results and the hand-written findings in notes.md."""
    notes = NOTES.read_text() if NOTES.exists() else ""
    (out / "RESULTS.md").write_text(report.render(results, notes))


def with_the_actors_allocator() -> None:
    """Re-execute this run once under the allocator settings the mapping actors get
    (``deepsalt.mapping.pipeline.ACTOR_MALLOC_TUNABLES``), unless ``GLIBC_TUNABLES`` is set already.

    glibc reads them when a process starts. Measured under the default allocator, the floors, the
    in-process own-code figures and the dask recipe's child would pay page faults the actors no
    longer pay, and the actors would be compared with inflated floors (``notes.md`` has the
    figures). Every process of the run uses the same allocator instead.
    """
    from deepsalt.mapping.pipeline import ACTOR_MALLOC_TUNABLES

    if platform.libc_ver()[0] != "glibc" or "GLIBC_TUNABLES" in os.environ:
        return
    os.environ["GLIBC_TUNABLES"] = ACTOR_MALLOC_TUNABLES
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run", *sys.argv[1:]])


if __name__ == "__main__":
    with_the_actors_allocator()
    main()
