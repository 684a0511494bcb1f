"""The inputs every benchmark shares, made once and cached in a work folder.

A demo region (``deepsalt.synth``), its training data, a trained student (``deepsalt.training``,
short epochs: throughput does not depend on how well the model fits) and a STAC API over the
region's items (rustac, the same server the tests use). Regenerated only when the folder lacks
them; the region generator and the stages are deterministic, so a cached copy equals a fresh one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deepsalt.logs import get_logger

log = get_logger(__name__)

# Ray on a shared 2-core machine: no dashboard, no usage report, every port on 127.0.0.1.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # Ray runs its workers at nice 15, the driver (floors, dask alternative, plain loop) at 0: on
    # a shared machine the actors would get a fraction of the CPU the driver-side runs get.
    "RAY_worker_niceness": "0",
}
# Short stages: enough to produce a real checkpoint of the real architecture.
TRAIN_EPOCHS = {"sau": {"epochs": 4}, "teacher": {"epochs": 4}, "student": {"epochs": 4}}


@dataclass(frozen=True)
class Workspace:
    root: Path
    region_url: str
    train_output: str

    @property
    def student_url(self) -> str:
        return f"{self.train_output}/student"


def train_config(workspace_output: str, region_url: str, **overrides):
    """The training config the benchmarks use (quick preset, short stages, in-process by default)."""
    from deepsalt.training.config import TrainConfig

    return TrainConfig.model_validate(
        {"regions": [region_url], "output": workspace_output, "preset": "quick", **TRAIN_EPOCHS, **overrides}
    )


def prepare(root: Path, size: str) -> Workspace:
    """Region of the given synth ``size`` and a trained student under ``root`` (cached)."""
    from deepsalt.synth import SynthConfig, generate_region, load_region
    from deepsalt.training.pipeline import run_training

    regions = root / "regions" / size
    region = regions / "demo"
    config = SynthConfig(size=size)
    if (region / "region.json").exists() and load_region(str(region)).config_hash != config.config_hash():
        shutil.rmtree(region)
    if not (region / "region.json").exists():
        log.info("generating the benchmark region", extra={"size": size, "url": str(region)})
        generate_region(config, str(regions))
    output = str(root / "runs" / size)
    run_training(train_config(output, str(region)))
    return Workspace(root, str(region), output)


def start_ray(num_cpus: int, temp_dir: Path) -> None:
    """One local Ray for every benchmark of the run (actors and Ray Train share it)."""
    import ray

    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    temp_dir.mkdir(parents=True, exist_ok=True)
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        object_store_memory=512 * 1024**2,
        _temp_dir=str(temp_dir),
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False


@contextlib.contextmanager
def stac_api(region_url: str) -> Iterator[str]:
    """A STAC API (rustac) serving the region's collection and items; yields its root URL."""
    from deepsalt.io.stac_server import serve_stac
    from deepsalt.synth import load_region

    manifest = load_region(region_url)
    with serve_stac(
        manifest.href(manifest.files.stac_collection), manifest.href(manifest.files.stac_items)
    ) as root:
        yield root
