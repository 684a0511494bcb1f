"""``run_map``: check the inputs, take the store, map the tiles on Ray, then finish the store.

Everything that can be refused is refused before a pixel is written: a model or covariate
raster that cannot be read, a region without imagery, an output that is a file or a foreign
folder, a store another run is writing (its lease), a store made from other inputs (its product
identity), and a resource request no node of the cluster can hold.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from deepsalt.errors import DeepSaltError, InputDataError, Interrupted, OutputError, explain
from deepsalt.io.stac import SceneRef
from deepsalt.logs import get_logger
from deepsalt.mapping import pyramid, store
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.identity import product_identity, scenes_key
from deepsalt.mapping.lease import StoreLease
from deepsalt.mapping.pipeline import map_tiles, pool_size
from deepsalt.mapping.predictor import InferenceSettings, ModelCard, describe_model
from deepsalt.mapping.progress import ProgressTracker
from deepsalt.mapping.records import TileResult, TileStatus, read_records, write_record
from deepsalt.mapping.stac_item import default_item_url, write_item
from deepsalt.mapping.tiles import Tile, TilePlan, plan_tiles
from deepsalt.mapping.worker import MappingJob

log = get_logger(__name__)


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
    rejected_scenes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Tile → scenes not used on it because their values were mostly unusable."""
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


@contextmanager
def naming(field_name: str, url: str, output: bool = False) -> Iterator[None]:
    """Name the config field and the URL when reading an input (or writing an output) fails."""
    try:
        yield
    except DeepSaltError:
        raise
    except Exception as exc:
        error, verb = (OutputError, "written") if output else (InputDataError, "read")
        raise error(url, f"cannot be {verb} ({field_name}): {explain(exc)[1]}") from exc


def scene_source(config: MapConfig) -> tuple[str, str]:
    """(config field, URL) the scenes come from, for messages."""
    if config.inputs.stac_url is not None:
        return "inputs.stac_url", config.inputs.stac_url
    return "inputs.scenes", ", ".join(entry.url for entry in config.inputs.scenes or ())


def plan(config: MapConfig) -> tuple[TilePlan, dict[str, SceneRef]]:
    """Grid, scenes (STAC search or the listed files) and the tile plan: no pixel is read."""
    from deepsalt.inputs import find_scenes

    grid = Grid.from_config(config.grid, config.region)
    with naming(*scene_source(config)):
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


def covariate_digests(folder_url: str) -> dict[str, str]:
    """Content digest of each covariate raster; a missing raster is named."""
    from deepsalt.io.covariates import covariate_urls
    from deepsalt.io.paths import content_digest

    digests = {}
    for name, url in covariate_urls(folder_url).items():
        with naming("inputs.covariates_url", url):
            try:
                digests[name] = content_digest(url)
            except FileNotFoundError:
                raise InputDataError(url, f"the '{name}' covariate raster is missing") from None
    return digests


def survey_digest(folder_url: str) -> str:
    """One content digest over every file of a SSURGO export (key raster and tables)."""
    import fsspec

    from deepsalt.io.paths import content_digest

    with naming("inputs.survey_url", folder_url):
        fs, root = fsspec.core.url_to_fs(folder_url)
        files = sorted(p for p in fs.find(root) if not fs.isdir(p))
        if not files:
            raise InputDataError(folder_url, "no SSURGO export here (no files)")
        parts = [f"{p.removeprefix(root)}={content_digest(fs.unstrip_protocol(p))}" for p in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def check_outputs(config: MapConfig, url: str, item_url: str) -> None:
    """Refuse outputs that exist as the wrong kind of thing, before any work."""
    import fsspec

    with naming("output.url", url, output=True):
        store.check_output(url)
    for field_name, target, want_folder in (
        ("output.stac_item_url", item_url, False),
        ("output.quicklook_dir", config.output.quicklook_dir, True),
    ):
        if target is None:
            continue
        with naming(field_name, target, output=True):
            fs, path = fsspec.core.url_to_fs(target)
            if fs.exists(path) and fs.isdir(path) != want_folder:
                kind = "a file" if want_folder else "a folder"
                raise OutputError(target, f"exists and is {kind} ({field_name})")


def run_map(config: MapConfig, restart: bool = False) -> MapSummary:
    """Map the configured region into ``config.output.url``; resumes an interrupted run.

    ``restart`` discards an existing store made from other inputs instead of refusing it.
    """
    url = config.output.url.rstrip("/")
    item_url = config.output.stac_item_url or default_item_url(url)
    with naming("model.student_url", config.model.student_url):
        model = describe_model(config.model.predictor, config.model.student_url)
    covariates = covariate_digests(config.inputs.covariates_url)
    if config.inputs.survey_url is not None:
        covariates = {**covariates, "survey": survey_digest(config.inputs.survey_url)}
    elif model.lineage.get("survey_input"):
        log.warning(
            "the student reads the survey's ECe but inputs.survey_url is not set: it predicts without it",
            extra={"student_url": config.model.student_url},
        )
    tile_plan, scenes = plan(config)
    if not tile_plan.tiles:
        field_name, source = scene_source(config)
        raise InputDataError(
            source,
            "no scene covers the region"
            + (
                f" in {config.region.datetime}"
                if config.region.datetime and config.inputs.scenes is None
                else ""
            )
            + f"; nothing to map (check region and {field_name}"
            + (", region.datetime and inputs.max_cloud_cover)" if config.inputs.scenes is None else ")"),
        )
    check_outputs(config, url, item_url)
    with ExitStack() as stack:
        with naming("output.url", url, output=True):
            lease = stack.enter_context(StoreLease(url))
        stack.enter_context(store.own_entries_quiet())
        summary = _run(config, url, item_url, tile_plan, scenes, model, covariates, lease, restart)
    return summary


def _run(
    config: MapConfig,
    url: str,
    item_url: str,
    tile_plan: TilePlan,
    scenes: Mapping[str, SceneRef],
    model: ModelCard,
    covariates: Mapping[str, str],
    lease: StoreLease,
    restart: bool,
) -> MapSummary:
    """The run once its inputs are checked and the store's lease is held."""
    from deepsalt.io.covariates import covariate_urls
    from deepsalt.ray_setup import init_ray, require_resources

    grid = tile_plan.grid
    init_ray(config.ray.address, log_to_driver=False)
    require_resources(
        {"CPU": config.ray.num_cpus, "GPU": config.ray.num_gpus},
        pool_size(config.ray, tile_plan.tiles),
        {"CPU": "ray.num_cpus", "GPU": "ray.num_gpus"},
    )
    identity = product_identity(config, grid, model, covariates)
    attrs = store.base_attrs(identity, config.config_hash(), model.lineage)
    with naming("output.url", url, output=True):
        resumed = store.create_or_check(url, grid, config.grid.chunk, config.grid.shard, attrs, restart)
        records = read_records(url) if resumed else {}
        record_empty_tiles(url, tile_plan.empty, records, resumed)
    keys = {tile.id: scenes_key(scenes[s] for s in tile.scenes) for tile in tile_plan.tiles}
    todo = [t for t in tile_plan.tiles if t.id not in records or not records[t.id].is_current(keys[t.id])]
    changed = sum(t.id in records and records[t.id].status.finished for t in todo)
    skipped = len(tile_plan.tiles) - len(todo)
    log.info(
        "resuming" if skipped else "starting",
        extra={"tiles_todo": len(todo), "tiles_skipped": skipped, "tiles_with_changed_scenes": changed},
    )
    job = MappingJob(
        store_url=url,
        grid=grid,
        scenes=scenes,
        covariate_urls=covariate_urls(config.inputs.covariates_url),
        survey_url=config.inputs.survey_url,
        predictor=config.model.predictor,
        student_url=config.model.student_url,
        block=config.model.block,
        inference=inference_settings(config, todo),
        retries=config.ray.retries,
    )
    started = time.monotonic()
    progress = ProgressTracker(total=len(todo))

    def on_result(result: TileResult) -> None:
        lease.check()
        progress.update(result)

    try:
        with progress:
            results = map_tiles(job, todo, config.ray, on_result)
        seconds = time.monotonic() - started
        shapes = finish_store(url, grid, config.grid.chunk, config.grid.shard, config.output.pyramid_min_size)
        write_item(item_url, url, grid, config, model.lineage, attrs["product_hash"])
        if config.output.quicklook_dir:
            from deepsalt.mapping.quicklook import write_quicklooks

            write_quicklooks(url, config.output.quicklook_dir)
    except KeyboardInterrupt:
        raise Interrupted(stopped_message(url, tile_plan, keys)) from None
    done = [r for r in results if r.status is TileStatus.DONE]
    summary = MapSummary(
        store_url=url,
        stac_item_url=item_url,
        tiles_total=tile_plan.n_tiles,
        tiles_done=len(done),
        tiles_skipped=skipped,
        tiles_empty=len(tile_plan.empty),
        failures={r.tile: r.error for r in results if r.status is TileStatus.FAILED},
        rejected_scenes={r.tile: r.rejected_scenes for r in results if r.rejected_scenes},
        pixels=sum(r.pixels for r in done),
        predicted=sum(r.predicted for r in results),
        seconds=seconds,
        pyramid_shapes=tuple(shapes),
    )
    log.info(
        "map finished", extra={"summary": summary.__dict__ | {"pixels_per_s": round(summary.pixels_per_s)}}
    )
    return summary


def inference_settings(config: MapConfig, todo: Sequence[Tile]) -> InferenceSettings:
    """The model section's batch and precision, and whether the actors compile for this much work."""
    actors = max(pool_size(config.ray, todo), 1)
    pixels_per_actor = sum(tile.n_pixels for tile in todo) // actors
    return InferenceSettings(
        batch_pixels=config.model.batch_pixels,
        precision=config.model.precision,
        compile=config.model.compiles(pixels_per_actor),
    )


def stopped_message(url: str, tile_plan: TilePlan, keys: Mapping[str, str]) -> str:
    """What a stopped run leaves: the finished tiles as the store records them, and how to go on."""
    try:
        records = read_records(url)
    except Exception:  # the store itself may be what failed; say what is certain
        return (
            f"{url}: stopped; the finished tiles are kept in the store. Run the same command again to resume"
        )
    finished = sum(t.id in records and records[t.id].is_current(keys[t.id]) for t in tile_plan.tiles)
    total = len(tile_plan.tiles)
    return (
        f"{url}: stopped; {finished} of {total} tiles with imagery are finished and kept in the store, "
        f"{total - finished} still to map. Run the same command again to resume"
    )


def record_empty_tiles(
    url: str, empty: tuple[Tile, ...], records: Mapping[str, TileResult], resumed: bool
) -> None:
    """Record the tiles no scene covers; clear those that held a map before the scenes changed.

    A fresh store already holds fill values there. In a resumed store a tile that was mapped
    (or half-written by a killed run) from scenes that have since left the catalogue is reset.
    """
    for tile in empty:
        record = records.get(tile.id)
        if record is not None and record.status is TileStatus.NO_IMAGERY:
            continue
        if resumed:
            store.clear_tile(url, tile)
        write_record(url, TileResult(tile=tile.id, status=TileStatus.NO_IMAGERY, pixels=tile.n_pixels))


def finish_store(
    url: str, grid: Grid, chunk: int, shard: int, pyramid_min_size: int
) -> list[tuple[int, int]]:
    """Pyramid with its multiscales layout, then consolidated metadata (last, once)."""
    shapes = pyramid.build_pyramid(url, grid, chunk, shard, pyramid_min_size)
    store.consolidate(url)
    return shapes
