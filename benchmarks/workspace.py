"""The inputs every benchmark shares, made once and cached in a work folder.

A synthetic region (``deepsalt.synth``), its training data, a trained student
(``deepsalt.training``, short epochs: throughput does not depend on how well the model fits) and a
STAC API over the region's items (rustac, the same server the tests use). Regenerated only when
the folder lacks them or their config changed; the region generator and the stages are
deterministic, so a cached copy equals a fresh one.

The full run maps a production-shaped world (:data:`PRODUCTION_WORLD`): twelve EnMAP-sized scenes
(1150² pixels, 218 bands) with clouds, overlapping over a 67 × 127 km region, large enough for
2 × 4 tiles of 1024² on the EPSG:5070 grid. Generating it takes several minutes once; later runs
find it in the work folder. The quick run uses the small demo preset.
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

PRODUCTION_WORLD: dict[str, object] = {
    "size": "default",
    "region_shape": (2250, 4250),
    "scene_shape": (1150, 1150),
    "n_scenes": 12,
    "cloud_fraction": 0.2,
    # Few lab samples: the benchmark needs a trained student of the real architecture, not a good one.
    "n_samples": 150,
    "n_mir_only": 150,
    "n_library": 600,
    # UTM 14N near Albers' central meridian, so the 5070 grid is rotated by under 2° against the
    # scenes (a real reprojection, but the region stays small enough to generate in minutes).
    "world": {"epsg": 32614, "centre_lonlat": (-98.0, 36.5)},
}
"""SynthConfig fields of the production-shaped world (``deepsalt.synth.config.SynthConfig``)."""
QUICK_WORLD: dict[str, object] = {"size": "small"}


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


def prepare(root: Path, name: str, world: dict[str, object]) -> Workspace:
    """The region ``world`` (SynthConfig fields) and a student trained on it, under ``root`` (cached)."""
    from deepsalt.synth import SynthConfig, generate_region, load_region
    from deepsalt.training.pipeline import run_training

    regions = root / "regions" / name
    region = regions / "demo"
    config = SynthConfig.model_validate(world)
    if (region / "region.json").exists() and load_region(str(region)).config_hash != config.config_hash():
        shutil.rmtree(region)
        shutil.rmtree(root / "runs" / name, ignore_errors=True)
    if not (region / "region.json").exists():
        log.info("generating the benchmark region (once)", extra={"world": name, "url": str(region)})
        generate_region(config, str(regions))
    output = str(root / "runs" / name)
    run_training(train_config(output, str(region)))
    return Workspace(root, str(region), output)


def fresh_package_dir(root: Path) -> Path:
    """An empty directory for the run's compiled forward passes (:mod:`deepsalt.compiled`), named in
    the environment before Ray starts so the actors share it. Emptied so that each ``make bench``
    compiles once, cold, in the driver's first tile (before any timed run), and every actor after
    it loads the package, as a user's later runs on the same machine do."""
    from deepsalt.compiled import PACKAGE_DIR_ENV

    folder = root / "compiled"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[PACKAGE_DIR_ENV] = str(folder)
    return folder


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
