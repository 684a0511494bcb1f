"""The Ray Data pipeline: tile descriptors → actor pool of :class:`TileMapper` → status rows.

Actors write their tiles straight into the store; the driver only sees one small row per tile,
consumed as a stream so progress is live and memory on the driver does not grow with pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from deepsalt.mapping.config import RayConfig
from deepsalt.mapping.tiles import Tile
from deepsalt.mapping.worker import MappingJob, TileMapper, tile_item

# Environment the actors need to reach the same object stores as the driver (never logged).
FORWARDED_ENV_PREFIXES = ("AWS_", "GDAL_", "CPL_", "VSI_", "FSSPEC_")
ACTOR_GDAL_CACHEMAX_MB = 256
"""GDAL's block cache per actor unless the driver sets ``GDAL_CACHEMAX``. GDAL's default is 5 % of
RAM per process (1.2 GB on a 24 GB node), which an actor fills as it reads more tiles' source
blocks, so its memory grew with the number of tiles it mapped. 256 MB still holds about two read
blocks of source data (512² pixels × 224 int16 bands ≈ 117 MB), the overlap neighbouring blocks
re-read."""


def forwarded_env() -> dict[str, str]:
    """The driver's object-store and GDAL settings, plus a bounded GDAL cache for each actor."""
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    env.setdefault("GDAL_CACHEMAX", str(ACTOR_GDAL_CACHEMAX_MB))  # < 100 000: megabytes
    return env


def ensure_ray(address: str | None) -> None:
    """Join ``address`` (or start a local Ray) unless this process is already connected."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)


def map_tiles(
    job: MappingJob, tiles: Sequence[Tile], settings: RayConfig, on_row: Callable[[dict[str, Any]], None]
) -> list[dict[str, Any]]:
    """Map ``tiles`` on the actor pool; ``on_row`` sees each status row as it arrives."""
    import ray

    if not tiles:
        return []
    ray.data.DataContext.get_current().enable_progress_bars = False
    dataset = ray.data.from_items([tile_item(t) for t in tiles], override_num_blocks=len(tiles))
    dataset = dataset.map_batches(
        TileMapper,
        fn_constructor_args=(job,),
        batch_size=1,
        # One tile in flight per actor: a tile is all work and no input, so queueing a second one
        # on an actor gains nothing and let the first actor up take tiles while another idled.
        compute=ray.data.ActorPoolStrategy(
            size=min(settings.num_actors, len(tiles)), max_tasks_in_flight_per_actor=1
        ),
        num_cpus=settings.num_cpus,
        num_gpus=settings.num_gpus or None,
        runtime_env={"env_vars": forwarded_env()},
    )
    rows = []
    for row in dataset.iter_rows():
        on_row(row)
        rows.append(row)
    return rows
