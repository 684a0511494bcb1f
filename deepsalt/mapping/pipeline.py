"""The Ray Data pipeline: tiles → actor pool of :class:`TileMapper` → :class:`TileResult` per tile.

Actors write their tiles straight into the store; the driver only sees one small result per tile,
consumed as a stream so progress is live and memory on the driver does not grow with pixels.

Credentials never travel with the work. Ray records an actor's ``runtime_env`` in its session
logs (``runtime_env_agent.log``) and shows it in its dashboard, so only settings that say *where*
and *how* to read (object-store endpoint and region, GDAL options, the name of a profile or the
path of a credentials file) are forwarded. The keys themselves reach the actors through the
nodes' own environment: a local Ray inherits the environment of the process that starts it, a
KubeRay pod gets them from a Kubernetes Secret, a cloud node from its instance role.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

from deepsalt.mapping import rows
from deepsalt.mapping.config import RayConfig
from deepsalt.mapping.records import TileResult
from deepsalt.mapping.tiles import Tile
from deepsalt.mapping.worker import MappingJob, TileMapper

# Settings the actors need to reach the same object stores as the driver, none of them secret.
FORWARDED_ENV = re.compile(
    r"^(GDAL_\w+|CPL_\w+|VSI_\w+|AWS_S3_ENDPOINT|AWS_HTTPS|AWS_VIRTUAL_HOSTING|AWS_REGION|"
    r"AWS_DEFAULT_REGION|AWS_ENDPOINT_URL(_S3)?|AWS_PROFILE|AWS_SHARED_CREDENTIALS_FILE|AWS_CONFIG_FILE|"
    r"AWS_NO_SIGN_REQUEST|AWS_REQUEST_PAYER|GLIBC_TUNABLES)$"
)
SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|PWD|AUTH|HEADER|CREDENTIAL|ACCESS_KEY|SESSION|_KEY$)", re.I)
ACTOR_GDAL_CACHEMAX_MB = 256
"""GDAL's block cache per actor unless the driver sets ``GDAL_CACHEMAX``. GDAL's default is 5 % of
RAM per process, which an actor fills as it reads more tiles' source blocks, so its memory grew
with the number of tiles it mapped. 256 MB still holds about two read blocks of source data (a
512² block of 224 int16 bands is 117 MB), the overlap that neighbouring blocks re-read."""


ACTOR_MALLOC_TUNABLES = ":".join(
    (
        "glibc.malloc.arena_max=1",
        f"glibc.malloc.mmap_threshold={512 * 1024**2}",
        f"glibc.malloc.trim_threshold={1024**3}",
    )
)
"""glibc's allocator in each actor (``GLIBC_TUNABLES``, unless the driver sets its own): freed
arrays are kept for the next block instead of being handed back to the kernel.

Every block allocates and frees arrays of tens to hundreds of MB (a scene's stored values, their
reflectance, the model's batches). glibc serves allocations above its mmap threshold (at most
32 MB by default) from fresh pages and unmaps them on free, so each block paid its page faults
and the kernel's zeroing again, and with transparent huge pages the compaction stalls that come
with them. Ray Data calls the actor from a worker thread, whose own malloc arena cannot hold such
arrays either, so the actor keeps one arena. The price is some peak memory on the heaviest
blocks, where freed space cannot always be reused in place; memory beyond 1 GB freed at the top of
the heap is still returned (``benchmarks/notes.md`` has both measurements). Other C libraries
ignore the variable."""


def forwarded_env() -> dict[str, str]:
    """The driver's non-secret object-store, GDAL and allocator settings, plus per-actor defaults: a
    bounded GDAL cache and an allocator that keeps freed arrays."""
    env = {
        key: value
        for key, value in os.environ.items()
        if FORWARDED_ENV.match(key) and (key.endswith("_FILE") or not SECRET_ENV.search(key))
    }
    env.setdefault("GDAL_CACHEMAX", str(ACTOR_GDAL_CACHEMAX_MB))  # < 100 000: megabytes
    env.setdefault("GLIBC_TUNABLES", ACTOR_MALLOC_TUNABLES)
    return env


def map_tiles(
    job: MappingJob, tiles: Sequence[Tile], settings: RayConfig, on_result: Callable[[TileResult], None]
) -> list[TileResult]:
    """Map ``tiles`` on the actor pool; ``on_result`` sees each tile's result as it arrives."""
    import ray

    if not tiles:
        return []
    ray.data.DataContext.get_current().enable_progress_bars = False
    dataset = ray.data.from_items(rows.tile_rows(tiles), override_num_blocks=len(tiles))
    dataset = dataset.map_batches(
        TileMapper,
        fn_constructor_args=(job,),
        batch_size=1,
        # One tile in flight per actor: a tile is all work and no input, so queueing a second one
        # on an actor gains nothing and let the first actor up take tiles while another idled.
        compute=ray.data.ActorPoolStrategy(size=pool_size(settings, tiles), max_tasks_in_flight_per_actor=1),
        num_cpus=settings.num_cpus,
        num_gpus=settings.num_gpus or None,
        runtime_env={"env_vars": forwarded_env()},
    )
    results = []
    for row in dataset.iter_rows():
        result = rows.result_of(row)
        on_result(result)
        results.append(result)
    return results


def pool_size(settings: RayConfig, tiles: Sequence[Tile]) -> int:
    """Actors to start: never more than there are tiles."""
    return min(settings.num_actors, len(tiles))
