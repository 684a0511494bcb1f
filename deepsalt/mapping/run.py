"""``run_map``: plan, create or resume the store, map the tiles on Ray, then finish the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from deepsalt.logs import get_logger
from deepsalt.mapping import pyramid, store
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.pipeline import ensure_ray, map_tiles
from deepsalt.mapping.progress import ProgressTracker
from deepsalt.mapping.stac_item import default_item_url, write_item
from deepsalt.mapping.tiles import TilePlan, plan_tiles
from deepsalt.mapping.worker import MappingJob, load_predictor

log = get_logger(__name__)

FINISHED = ("done", "no_imagery")


@dataclass(frozen=True)
class MapSummary:
    """What a run did; ``ok`` is False when any tile failed (the CLI exits non-zero)."""

    store_url: str
    stac_item_url: str
    tiles_total: int
    tiles_done: int
    tiles_skipped: int
    tiles_empty: int
    failures: dict[str, str] = field(default_factory=dict)
    pixels: int = 0
    predicted: int = 0
    seconds: float = 0.0
    pyramid_shapes: tuple[tuple[int, int], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def pixels_per_s(self) -> float:
        return self.pixels / self.seconds if self.seconds > 0 else 0.0


def plan(config: MapConfig) -> tuple[TilePlan, dict]:
    """Grid, scenes (STAC search or the listed files) and the tile plan: no pixel is read."""
    from deepsalt.mapping.scenes import find_scenes

    grid = Grid.from_config(config.grid, config.region)
    scenes = find_scenes(config.inputs, grid.bounds_lonlat(), config.region.datetime)
    tile_plan = plan_tiles(
        grid, config.grid.shard, config.grid.tile_shards, {s.id: tuple(s.bbox) for s in scenes}
    )
    log.info(
        "planned",
        extra={
            "grid_shape": grid.shape,
            "crs": grid.crs.to_string(),
            "scenes": len(scenes),
            "tiles": len(tile_plan.tiles),
            "tiles_without_imagery": len(tile_plan.empty),
        },
    )
    return tile_plan, {s.id: s for s in scenes}


def run_map(config: MapConfig) -> MapSummary:
    """Map the configured region into ``config.output.url``; resumes an interrupted run."""
    from deepsalt.io.covariates import covariate_urls

    url = config.output.url.rstrip("/")
    tile_plan, scenes = plan(config)
    grid = tile_plan.grid
    predictor = load_predictor(config.model.predictor, config.model.student_url)
    lineage = {"checkpoint_id": predictor.checkpoint_id, **dict(predictor.lineage)}
    attrs = store.base_attrs(config.product_hash(), config.config_hash(), lineage)
    store.create_or_check(url, grid, config.grid.chunk, config.grid.shard, attrs)

    records = store.read_records(url)
    for tile in tile_plan.empty:
        if tile.id not in records:
            store.write_record(url, tile, "no_imagery")
    todo = [t for t in tile_plan.tiles if records.get(t.id, {}).get("status") not in FINISHED]
    skipped = len(tile_plan.tiles) - len(todo)
    log.info("resuming" if skipped else "starting", extra={"tiles_todo": len(todo), "tiles_skipped": skipped})

    job = MappingJob(
        store_url=url,
        grid=grid,
        scenes=scenes,
        covariate_urls=covariate_urls(config.inputs.covariates_url),
        predictor=config.model.predictor,
        student_url=config.model.student_url,
        block=config.model.block,
        batch_pixels=config.model.batch_pixels,
        retries=config.ray.retries,
    )
    ensure_ray(config.ray.address)
    started = time.monotonic()
    with ProgressTracker(total=len(todo)) as progress:
        rows = map_tiles(job, todo, config.ray, progress.update)
    seconds = time.monotonic() - started

    shapes = finish_store(url, grid, config.grid.chunk, config.grid.shard, config.output.pyramid_min_size)
    item_url = config.output.stac_item_url or default_item_url(url)
    write_item(item_url, url, grid, config, lineage)
    if config.output.quicklook_dir:
        from deepsalt.mapping.quicklook import write_quicklooks

        write_quicklooks(url, config.output.quicklook_dir)
    summary = MapSummary(
        store_url=url,
        stac_item_url=item_url,
        tiles_total=tile_plan.n_tiles,
        tiles_done=sum(r["status"] == "done" for r in rows),
        tiles_skipped=skipped,
        tiles_empty=len(tile_plan.empty),
        failures={r["tile"]: r["error"] for r in rows if r["status"] != "done"},
        pixels=sum(int(r["pixels"]) for r in rows if r["status"] == "done"),
        predicted=sum(int(r["predicted"]) for r in rows),
        seconds=seconds,
        pyramid_shapes=tuple(shapes),
    )
    log.info(
        "map finished", extra={"summary": summary.__dict__ | {"pixels_per_s": round(summary.pixels_per_s)}}
    )
    return summary


def finish_store(
    url: str, grid: Grid, chunk: int, shard: int, pyramid_min_size: int
) -> list[tuple[int, int]]:
    """Pyramid with its multiscales layout, then consolidated metadata (last, once)."""
    shapes = pyramid.build_pyramid(url, grid, chunk, shard, pyramid_min_size)
    store.consolidate(url)
    return shapes
