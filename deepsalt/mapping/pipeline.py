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


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}


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
        compute=ray.data.ActorPoolStrategy(size=min(settings.num_actors, len(tiles))),
        num_cpus=settings.num_cpus,
        num_gpus=settings.num_gpus or None,
        runtime_env={"env_vars": forwarded_env()},
    )
    rows = []
    for row in dataset.iter_rows():
        on_row(row)
        rows.append(row)
    return rows
