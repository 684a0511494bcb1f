"""Mapping at production shape: physical floors, own-code floors, end-to-end, dask, 1 vs 2 actors.

Geometry (full run): tiles of 1024² pixels, one Zarr shard each (chunks 512²), blocks of 512²,
on EPSG:5070 at 30 m over UTM scenes (every case reprojects). The production-shaped region **P**
is 2 × 2 tiles (2048² pixels) under nine overlapping cloudy scenes; **2P** is P and the 2 × 2
tiles east of it; **H** is P's western column (2 tiles). Torch and GDAL run one thread per worker
everywhere, so what the driver measures on one thread compares with one actor.

- **Physical floors** (:mod:`benchmarks.floors`) for P: (a) decompressing the source tiles the
  mapping read, (b) the student's counted FLOPs over the pixels it predicted at this core's GEMM
  rate, (c) encoding and writing P's output arrays.
- **Own-code floors** for P, each part of the actors' code alone on one thread: the read path (an
  actor's ``map_tile`` with the model call replaced by a recorder: reading, decoding, placing,
  compositing, band conversion, covariates, survey), the predictor on pixels already in memory, and
  ``store.write_tile``.
- **End-to-end**: ``run_map`` into a fresh store (Ray Data actors, pyramid, STAC item,
  consolidation). One actor maps P and then H in rounds, as many as the memory comparison asks:
  each round measures the host's GEMM rate and decode times first (:class:`floors.HostRates`), and
  its P and H are compared with those floors. A round's P and H give the marginal cost (fixed
  start-up removed by the fit); the tile completion records give each actor's steady rate (first
  tile, with the actor's start and the compile of its forward pass, left out). Each figure is the
  median over the rounds. Each round also maps P on two actors: their speed on the tiles they time
  against the same round's lone actor on those tiles gives the scaling. Two actors on 2P (the same
  4 tiles per actor as one actor on P) give the memory comparison. Each cost is compared with the
  physical floors of the tiles it was measured on.
- **The usual alternative** (:mod:`benchmarks.dask_recipe`) on P, or on the largest part of P it
  can hold in memory.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import floors, page_cache
from benchmarks.timing import fit_linear_cost
from deepsalt.logs import get_logger

log = get_logger(__name__)

GRID_CRS = "EPSG:5070"
RESOLUTION = 30.0
TILE_MAPPER = "TileMapper"
"""Ray names the actor processes after this class (see benchmarks.memory)."""
MODEL_SAMPLE = 1 << 18
"""Pixels the own-code model floor predicts (from the read floor's inputs): enough for a stable rate."""


@dataclass(frozen=True)
class Geometry:
    """Tile, chunk and block sizes, and P as (rows, cols) of tiles."""

    tile: int
    chunk: int
    block: int
    production: tuple[int, int]


FULL = Geometry(tile=1024, chunk=512, block=512, production=(2, 2))
QUICK = Geometry(tile=128, chunk=64, block=64, production=(1, 2))


def centred_tile_bounds(
    centre: tuple[float, float], tiles: tuple[int, int], tile: int, resolution: float = RESOLUTION
) -> tuple[float, float, float, float]:
    """Grid-CRS bounds of ``tiles`` (rows, cols) whole tiles around ``centre``, on pixel edges.

    Whole tiles make every block of every region the same size, so per-actor memory compares
    like with like; the centre is snapped to the pixel grid so snapping adds no partial tile.
    """
    rows, cols = tiles
    if rows < 1 or cols < 1:
        raise ValueError(f"need at least one tile each way, got {tiles}")
    cx, cy = (round(c / resolution) * resolution for c in centre)
    half_w, half_h = cols * tile * resolution / 2, rows * tile * resolution / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def north_west(
    bounds: Sequence[float], tiles: tuple[int, int], of: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The north-western ``tiles`` (rows, cols) of the ``of`` (rows, cols) tiles of ``bounds``."""
    west, south, east, north = bounds
    return (
        west,
        north - (north - south) * tiles[0] / of[0],
        west + (east - west) * tiles[1] / of[1],
        north,
    )


def region_centre(bbox_lonlat: Sequence[float]) -> tuple[float, float]:
    """Centre of a lon/lat box in the grid CRS."""
    from pyproj import Transformer

    lon, lat = (bbox_lonlat[0] + bbox_lonlat[2]) / 2, (bbox_lonlat[1] + bbox_lonlat[3]) / 2
    return Transformer.from_crs("EPSG:4326", GRID_CRS, always_xy=True).transform(lon, lat)


@dataclass(frozen=True)
class MapCase:
    """One region to map: its config (output URL replaced per run), tile plan and scenes."""

    name: str
    config: Any  # deepsalt.mapping.MapConfig
    tiles: tuple[Any, ...]
    scenes: dict[str, Any]
    grid: Any

    @property
    def pixels(self) -> int:
        return sum(t.n_pixels for t in self.tiles)

    def with_actors(self, n: int) -> MapCase:
        ray = self.config.ray.model_copy(update={"num_actors": n, "num_cpus": 1.0})
        return MapCase(
            self.name, self.config.model_copy(update={"ray": ray}), self.tiles, self.scenes, self.grid
        )


@dataclass(frozen=True)
class Inputs:
    """Where the benchmark region's inputs are."""

    stac_url: str
    covariates_url: str
    survey_url: str | None
    model: dict[str, Any]
    """The map config's model section (student URL, predictor, compile)."""


def map_case(name: str, bounds: Sequence[float], inputs: Inputs, geometry: Geometry, out: Path) -> MapCase:
    """Plan the tiles of ``bounds`` (grid CRS; no pixel is read)."""
    from deepsalt.mapping import MapConfig
    from deepsalt.mapping.run import plan

    config = MapConfig.model_validate(
        {
            "region": {"bounds": list(bounds)},
            "grid": {
                "crs": GRID_CRS,
                "resolution": RESOLUTION,
                "chunk": geometry.chunk,
                "shard": geometry.tile,
            },
            "inputs": {
                "stac_url": inputs.stac_url,
                "covariates_url": inputs.covariates_url,
                "survey_url": inputs.survey_url,
            },
            "model": {**inputs.model, "block": geometry.block},
            "output": {"url": str(out / f"{name}.zarr")},
            "ray": {"num_actors": 1, "num_cpus": 1.0, "retries": 0},
        }
    )
    tile_plan, scenes = plan(config)
    return MapCase(name, config, tile_plan.tiles, scenes, tile_plan.grid)


# ---------------------------------------------------------------- the actors' code, in this process


@dataclass
class ReadPass:
    """What one pass of the actors' read path over a case's tiles did."""

    seconds: float
    predicted: dict[str, int]
    """Pixels predicted per tile id."""
    decoded: int
    """Source tiles decoded, counting a tile decoded again after the cache dropped it."""
    sources: dict[str, frozenset[floors.SourceTile]]
    """Distinct (file, tile row, tile col) each tile read."""
    sample: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Up to :data:`MODEL_SAMPLE` predicted pixels' (reflectance, covariates, survey)."""
    outputs: list[dict[str, np.ndarray]]


def mapping_job(case: MapCase) -> Any:
    """The job the actors of ``case`` get (as ``run_map`` builds it)."""
    from deepsalt.io.covariates import covariate_urls
    from deepsalt.mapping.run import inference_settings
    from deepsalt.mapping.worker import MappingJob

    config = case.config
    return MappingJob(
        store_url=config.output.url,
        grid=case.grid,
        scenes=case.scenes,
        covariate_urls=covariate_urls(config.inputs.covariates_url),
        survey_url=config.inputs.survey_url,
        predictor=config.model.predictor,
        student_url=config.model.student_url,
        block=config.model.block,
        inference=inference_settings(config, case.tiles),
        retries=0,
    )


class RecordingCache:
    """A :class:`BlockCache` that also remembers which source tiles each output tile read."""

    def __init__(self) -> None:
        from deepsalt.mapping.tiff_blocks import BlockCache

        self.cache = BlockCache()
        self.tile = ""
        """The output tile being mapped (set by the caller)."""
        self.sources: dict[str, set[floors.SourceTile]] = {}

    def get(self, key: Any, load: Callable[[], np.ndarray]) -> np.ndarray:
        self.sources.setdefault(self.tile, set()).add(key)
        return self.cache.get(key, load)

    @property
    def decoded(self) -> int:
        return self.cache.decoded


def read_pass(mapper: Any, tiles: Sequence[Any]) -> ReadPass:
    """``map_tile`` over ``tiles`` with the model call replaced by a recorder (timed without it)."""
    recorder = RecordingCache()
    mapper.cache = recorder
    sample: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    kept = 0

    def record(reflectance: np.ndarray, covariates: np.ndarray, survey: np.ndarray) -> dict[str, np.ndarray]:
        nonlocal kept
        if kept < MODEL_SAMPLE:
            take = min(len(reflectance), MODEL_SAMPLE - kept)
            sample.append((reflectance[:take].copy(), covariates[:take].copy(), survey[:take].copy()))
            kept += take
        nan = np.full(len(reflectance), np.nan, np.float32)
        return {"ece": nan, "ece_std": nan, "domain_score": nan}

    original, mapper._predict = mapper._predict, record
    predicted, outputs = {}, []
    start = time.perf_counter()
    try:
        for tile in tiles:
            recorder.tile = tile.id
            arrays, predicted[tile.id], _ = mapper.map_tile(tile)
            outputs.append({"quality": arrays["quality"]})
    finally:
        mapper._predict = original
    seconds = time.perf_counter() - start
    arrays = tuple(np.concatenate([s[i] for s in sample]) for i in range(3))
    sources = {tile: frozenset(keys) for tile, keys in recorder.sources.items()}
    return ReadPass(seconds, predicted, recorder.decoded, sources, arrays, outputs)  # type: ignore[arg-type]


def model_seconds(predictor: Any, sample: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """Wall seconds of ``predictor.predict`` over pixels in memory (after one warm call)."""
    reflectance, covariates, survey = sample
    predictor.predict(reflectance[:4096], covariates[:4096], survey[:4096])
    start = time.perf_counter()
    predictor.predict(reflectance, covariates, survey)
    return time.perf_counter() - start


MATRIX_OPS = ("linear", "addmm", "::mm", "bmm", "matmul")
"""Substrings of the torch profiler's op names that are matrix products (oneDNN's fused linear when
compiled, ``aten::addmm`` and friends when not)."""


@dataclass(frozen=True)
class ForwardSplit:
    """Where the student's forward pass spends its time: matrix products against everything else."""

    seconds: float
    """Self time of every op the profiler saw over the forward passes."""
    matrix_s: float
    """Self time of the matrix products (:data:`MATRIX_OPS`)."""
    rest_top: tuple[tuple[str, float], ...]
    """The other ops with the most self time, (name, seconds)."""

    def as_dict(self, flops: float, gemm_flops_per_s: float) -> dict[str, Any]:
        """With the matrix products' rate: ``flops`` counted over the pixels the split ran on."""
        rate = flops / self.matrix_s if self.matrix_s else None
        return {
            "seconds": self.seconds,
            "matrix_s": self.matrix_s,
            "matrix_share": self.matrix_s / self.seconds if self.seconds else None,
            "matrix_flops_per_s": rate,
            "matrix_share_of_gemm": rate / gemm_flops_per_s if rate else None,
            "rest_top": [{"op": name, "seconds": sec} for name, sec in self.rest_top],
        }


def split_forward(self_times_us: dict[str, float], top: int = 8) -> ForwardSplit:
    """Op name → self time (µs) from the torch profiler → the split (seconds)."""
    is_matrix = {name: any(op in name for op in MATRIX_OPS) for name in self_times_us}
    matrix = sum(us for name, us in self_times_us.items() if is_matrix[name])
    rest = sorted(((n, us) for n, us in self_times_us.items() if not is_matrix[n]), key=lambda kv: -kv[1])
    return ForwardSplit(
        sum(self_times_us.values()) / 1e6, matrix / 1e6, tuple((name, us / 1e6) for name, us in rest[:top])
    )


def forward_split(predictor: Any, sample: tuple[np.ndarray, np.ndarray, np.ndarray]) -> ForwardSplit:
    """:func:`model_seconds`'s call under torch's profiler: the matrix products' self time against the
    rest (compiled, the elementwise kernels run as the compiled graph's own self time).

    The model floor counts only the products' FLOPs at the GEMM rate; this shows how far the products
    themselves are from it and how much the layer norms, activations and the mixture add. A
    predictor running a compiled package (:mod:`deepsalt.compiled`) calls its kernels out of the
    profiler's sight, so the split profiles the same traced forward compiled in this process
    (``torch.compile``: the same inductor kernels and oneDNN products, entered through Python).
    """
    import copy

    from torch.profiler import ProfilerActivity, profile

    from deepsalt.compiled import PackagedForward
    from deepsalt.predict import CompiledForward

    forward = getattr(predictor, "forward", None)
    if isinstance(forward, CompiledForward) and isinstance(forward.compiled, PackagedForward):
        predictor = copy.copy(predictor)
        predictor.forward = CompiledForward(forward.traced, fallback=forward.plain)
        model_seconds(predictor, tuple(x[:4096] for x in sample))  # compiles, outside the profile
    reflectance, covariates, survey = sample
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        predictor.predict(reflectance, covariates, survey)
    return split_forward({event.key: event.self_cpu_time_total for event in prof.key_averages()})


def store_write_seconds(case: MapCase, arrays: Sequence[dict[str, np.ndarray]], scratch: Path) -> float:
    """Wall seconds of ``store.write_tile`` for every tile of ``case`` into a fresh store skeleton."""
    from deepsalt.mapping import store

    url = str(scratch / f"write-{uuid.uuid4().hex[:8]}.zarr")
    config = case.config
    store.create_or_check(url, case.grid, config.grid.chunk, config.grid.shard, {"product_identity": {}})
    try:
        start = time.perf_counter()
        for tile, tile_arrays in zip(case.tiles, arrays, strict=True):
            store.write_tile(url, tile, tile_arrays)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(url, ignore_errors=True)


def tile_profile(mapper: Any, tile: Any, top: int = 12) -> list[dict[str, Any]]:
    """Where one tile's time goes in the actor's code (pyinstrument, self time per function)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.002)
    profiler.start()
    mapper.map_tile(tile)
    return self_times(profiler.stop(), top)


def self_times(session: Any, top: int = 12) -> list[dict[str, Any]]:
    """The ``top`` functions by self time in a pyinstrument session, with their share of it."""
    totals: dict[str, float] = {}

    def walk(frame: Any) -> None:
        if not frame.is_synthetic:  # pyinstrument's own [self] / [await] frames
            name = f"{frame.function} ({Path(frame.file_path or '').name}:{frame.line_no})"
            totals[name] = totals.get(name, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child)

    walk(session.root_frame())
    rows = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [{"function": name, "seconds": s, "share": s / session.duration} for name, s in rows]


# ---------------------------------------------------------------- end-to-end under Ray


def end_to_end(
    case: MapCase,
    scratch: Path,
    on_records: Callable[[dict[str, Any]], Any] | None = None,
    on_store: Callable[[str], Any] | None = None,
) -> Callable[[], Any]:
    """``run_map`` into a fresh store each call (deleted afterwards); fails on any failed tile.
    Each call returns the seconds ``run_map`` took.

    ``on_records`` sees the store's tile completion records (which actor, when), ``on_store`` the
    store's URL, before deletion; neither is in the seconds returned (reading a store back is no
    part of mapping it).
    """
    from deepsalt.mapping import run_map
    from deepsalt.mapping.records import read_records

    def run() -> float:
        url = scratch / f"{case.name}-{uuid.uuid4().hex[:8]}.zarr"
        output = case.config.output.model_copy(update={"url": str(url), "stac_item_url": str(url) + ".json"})
        try:
            start = time.perf_counter()
            summary = run_map(case.config.model_copy(update={"output": output}))
            seconds = time.perf_counter() - start
            if on_records is not None:
                on_records(read_records(str(url)))
            if on_store is not None:
                on_store(str(url))
        finally:
            shutil.rmtree(url, ignore_errors=True)
            Path(str(url) + ".json").unlink(missing_ok=True)
        if not summary.ok or summary.tiles_done != len(case.tiles):
            raise RuntimeError(f"benchmark map {case.name} failed: {summary.failures}")
        return seconds

    return run


@dataclass(frozen=True)
class ActorTiles:
    """One mapping actor of one run: its memory samples and the tiles it finished, in order."""

    series: tuple[tuple[float, int], ...]
    """(wall time, peak resident bytes so far), from :class:`benchmarks.memory.ActorMemory`."""
    done: tuple[float, ...]
    """Wall times of its tile completion records, in order."""
    predicted: tuple[int, ...]
    """Pixels predicted in each of those tiles (a tile's working set grows with them)."""
    tiles: tuple[str, ...] = ()
    """Ids of those tiles."""

    @property
    def peak(self) -> int:
        return self.series[-1][1]

    def peak_after(self, tiles: int) -> int:
        """Peak resident bytes once it had finished ``tiles`` tiles."""
        from benchmarks.memory import peak_at

        if not 1 <= tiles <= len(self.done):
            raise ValueError(f"the actor finished {len(self.done)} tiles, not {tiles}")
        return peak_at(list(self.series), self.done[tiles - 1])


def actor_tiles(series: dict[int, list[tuple[float, int]]], records: dict[str, Any]) -> list[ActorTiles]:
    """Join memory samples (by pid) with the completion records (``worker`` = host:pid, ``time``)."""
    from datetime import datetime

    done: dict[int, list[tuple[float, int, str]]] = {}
    for record in records.values():
        pid = int(record.worker.rsplit(":", 1)[1])  # a deepsalt.mapping.records.TileResult
        when = datetime.fromisoformat(record.time).timestamp()
        done.setdefault(pid, []).append((when, record.predicted, record.tile))
    actors = []
    for pid, samples in series.items():
        tiles = sorted(done.get(pid, []))
        actors.append(
            ActorTiles(
                tuple(samples),
                tuple(t for t, _, _ in tiles),
                tuple(n for _, n, _ in tiles),
                tuple(tile for _, _, tile in tiles),
            )
        )
    return actors


def steady_tiles(run: list[ActorTiles]) -> list[str]:
    """The tiles :func:`steady_px_s` times: each actor's tiles after its first."""
    return [tile for a in run if len(a.done) > 1 and a.done[-1] > a.done[0] for tile in a.tiles[1:]]


def same_tiles(smaller: MapCase, larger: MapCase) -> None:
    """Check that every tile of ``smaller`` is the tile of ``larger`` with its id (same pixels)."""
    windows = {t.id: (t.y0, t.x0, t.height, t.width) for t in larger.tiles}
    if smaller.grid.transform != larger.grid.transform or any(
        windows.get(t.id) != (t.y0, t.x0, t.height, t.width) for t in smaller.tiles
    ):
        raise RuntimeError(f"the tiles of {smaller.name} are not tiles of {larger.name}")


def steady_px_s(run: list[ActorTiles], pixels_per_tile: int) -> float | None:
    """Pixels/s of a run between each actor's first and last tile completion, summed over actors.

    Leaves out actor start-up and the first tile, so it is the rate a long run settles at; None
    when no actor finished two tiles.
    """
    rates = [
        (len(a.done) - 1) * pixels_per_tile / (a.done[-1] - a.done[0])
        for a in run
        if len(a.done) > 1 and a.done[-1] > a.done[0]
    ]
    return sum(rates) if rates else None


def steady_tile_seconds(actor: ActorTiles) -> dict[str, float]:
    """Seconds each of an actor's tiles after its first took: from the completion before it to its own."""
    return {
        tile: end - start
        for tile, start, end in zip(actor.tiles[1:], actor.done, actor.done[1:], strict=False)
    }


def matched_speed(alone: Sequence[ActorTiles], together: Sequence[ActorTiles]) -> float | None:
    """Throughput of the actors of ``together`` against the lone actor of ``alone``, on the same tiles.

    Each actor's speed is the lone actor's seconds on the steady tiles it shares with it, divided by
    its own seconds on them; the throughput is the sum of the speeds. Tiles differ in cost (a tile
    under 9 scenes decodes twice the bytes of one under 4), and which tiles an actor times as steady
    depends on how many actors share the region (each actor's first tile is left out), so rates over
    different tiles compare the tiles as much as the actors. None unless every actor that finished
    a tile has a steady tile the lone actor timed too.
    """
    reference: dict[str, float] = {}
    for actor in alone:
        reference.update(steady_tile_seconds(actor))
    speeds = []
    for actor in together:
        if not actor.done:
            continue
        own = {tile: s for tile, s in steady_tile_seconds(actor).items() if tile in reference}
        if not own or sum(own.values()) <= 0:
            return None
        speeds.append(sum(reference[tile] for tile in own) / sum(own.values()))
    return sum(speeds) if speeds else None


def scaling_figures(ones: Sequence[Watched], twos: Sequence[Watched], pixels_per_tile: int) -> dict[str, Any]:
    """Two actors against one on P, round by round: each two-actor run against the one-actor run
    of its own round, since the host's speed moves between rounds by more than the target's margin
    (``benchmarks/notes.md``); the ratio is the median of the rounds' ratios.

    The ratio is :func:`matched_speed`, on the tiles both runs time. The ratio of the runs' steady
    rates (``rate_ratio``) is kept beside it: on P it sets the two actors' second tiles against the
    lone actor's last three, which include the costliest tile of P.
    """
    per_round = []
    for one, two in zip(ones, twos, strict=True):
        rate_one, rate_two = (
            steady_px_s(one.actors, pixels_per_tile),
            steady_px_s(two.actors, pixels_per_tile),
        )
        per_round.append(
            {
                "one_actor_steady_px_s": rate_one,
                "two_actors_steady_px_s": rate_two,
                "two_actors_s": two.seconds,
                "ratio": matched_speed(one.actors, two.actors),
                "rate_ratio": rate_two / rate_one if rate_one and rate_two else None,
                "one_actor_tile_s": tile_seconds(one.actors),
                "two_actors_tile_s": tile_seconds(two.actors),
            }
        )
    return {
        "rounds": per_round,
        **{
            key: median_of([r[key] for r in per_round])
            for key in ("two_actors_steady_px_s", "two_actors_s", "ratio", "rate_ratio")
        },
    }


def tile_seconds(run: Sequence[ActorTiles]) -> list[dict[str, float]]:
    """Each actor's steady tiles and their seconds (:func:`steady_tile_seconds`), for the record."""
    return [steady_tile_seconds(actor) for actor in run if actor.done]


def one_actor_figures(
    runs: Sequence[Watched], pixels_per_tile: int, run_floors: Sequence[floors.TileFloors]
) -> dict[str, Any]:
    """P on one actor over its repeated runs: each run's time, steady rate, and that rate against the
    floors of the tiles it covers, measured beside it (``run_floors``, one per run); and the median
    of each over the runs.

    One run's start-up and steady rate move by several per cent from run to run (actor start,
    compile, the host's speed), as much as the margins of the targets, so the figures are medians
    of the runs the memory comparison makes anyway.
    """
    if len(runs) != len(run_floors):
        raise ValueError(f"{len(runs)} runs but {len(run_floors)} sets of floors")
    per_run = []
    for run, tile_floors in zip(runs, run_floors, strict=True):
        rate = steady_px_s(run.actors, pixels_per_tile)
        tiles = steady_tiles(run.actors)
        floor = tile_floors.per_pixel(tiles) if rate else None
        per_run.append(
            {
                "seconds": run.seconds,
                "steady_px_s": rate,
                "steady_tiles": tiles,
                "steady_floor_s_per_pixel": floor,
                "ratio_steady": (1 / rate) / floor if rate and floor else None,
            }
        )
    return {
        "runs": per_run,
        **{key: median_of([r[key] for r in per_run]) for key in ("seconds", "steady_px_s", "ratio_steady")},
        "steady_floor_s_per_pixel": median_of([r["steady_floor_s_per_pixel"] for r in per_run]),
    }


def marginal_figures(
    pairs: Sequence[tuple[Watched, Watched, floors.TileFloors]], larger: MapCase, smaller: MapCase
) -> dict[str, Any]:
    """The marginal cost per pixel of ``larger`` over ``smaller`` from each round's pair of runs
    (larger, smaller, the floors measured beside them), against the floor of what ``larger``'s
    tiles add; and the median of each over the rounds.
    """
    same_tiles(smaller, larger)
    big, small = [t.id for t in larger.tiles], [t.id for t in smaller.tiles]
    per_run = []
    for larger_run, smaller_run, tile_floors in pairs:
        cost = fit_linear_cost([smaller.pixels, larger.pixels], [smaller_run.seconds, larger_run.seconds])
        floor = tile_floors.marginal_per_pixel(big, small)
        per_run.append(
            {
                "seconds": smaller_run.seconds,
                "larger_seconds": larger_run.seconds,
                "s_per_pixel": cost.per_unit,
                "fixed_s": cost.fixed,
                "floor_s_per_pixel": floor,
                "ratio": cost.per_unit / floor,
            }
        )
    return {
        "runs": per_run,
        **{
            key: median_of([r[key] for r in per_run])
            for key in ("seconds", "s_per_pixel", "fixed_s", "ratio")
        },
        "floor_s_per_pixel": median_of([r["floor_s_per_pixel"] for r in per_run]),
    }


@dataclass
class Watched:
    """A run of ``run_map`` with its wall seconds and its actors (memory and tile completions)."""

    seconds: float
    actors: list[ActorTiles]


def watched_run(case: MapCase, scratch: Path, on_store: Callable[[str], Any] | None = None) -> Watched:
    """One ``run_map`` of ``case`` with its actors' memory and tile completions recorded.

    The scenes of ``case``'s tiles are read just before (untimed), so the run starts with them in
    the page cache even on a host whose cache cannot hold every scene of the benchmark's world
    (seen here, ``benchmarks/notes.md``): without it, a run after a larger one read from disk.
    """
    from benchmarks.memory import ActorMemory

    records: dict[str, Any] = {}
    run = end_to_end(case, scratch, on_records=records.update, on_store=on_store)
    warm_page_cache(case_scenes(case))
    with ActorMemory(TILE_MAPPER) as memory:
        seconds = run()
    return Watched(seconds, actor_tiles(memory.series, records))


def memory_figures(runs: dict[str, list[list[ActorTiles]]], scenes: dict[str, int]) -> dict[str, Any]:
    """Peaks per actor of each run, and the production region against twice its tiles.

    ``runs`` holds, per case, the actors of each of its runs: ``production`` (P on 1 actor: 4
    tiles) and ``double`` (2P on 2 actors: 4 tiles each), the same tiles per actor, and any other
    cases to show beside them. An actor's peak is set by the heaviest tile it maps, so the figure
    that says whether memory grows with the region compares cases at the same tiles per actor: the
    median over runs of each run's largest actor peak. Each run's largest actor is listed with its
    tiles (``scenes``: scenes per tile id) and its peak after each, to show which tile set it.
    """
    found = {name: [[a for a in run if a.done] for run in case] for name, case in runs.items()}
    empty = [name for name, case in found.items() if not all(case)]
    if empty:
        raise RuntimeError(f"no '{TILE_MAPPER}' actor that finished a tile was seen in the {empty} runs")
    figures = {}
    for name, case in found.items():
        per_run = [{i: a.peak for i, a in enumerate(run)} for run in case]
        figure = actor_peaks_mb(per_run)
        figure["run_max_mb"] = [actor_peaks_mb([run])["max_mb"] for run in per_run]
        figure["median_max_mb"] = float(np.median(figure["run_max_mb"]))
        figure["largest_actors"] = [largest_actor(run, scenes) for run in case]
        figures[name] = figure
    return {
        "runs": figures,
        "tiles_per_actor": {name: [len(a.done) for a in case[0]] for name, case in found.items()},
        "heaviest_tile_predicted": {
            name: max(max(a.predicted) for run in case for a in run) for name, case in found.items()
        },
        "growth_same_tiles": figures["double"]["median_max_mb"] / figures["production"]["median_max_mb"] - 1,
    }


def largest_actor(run: list[ActorTiles], scenes: dict[str, int]) -> dict[str, Any]:
    """The actor of ``run`` with the highest peak: its tiles in order, their scenes, and its peak
    (MB) once each was finished."""
    actor = max(run, key=lambda a: a.peak)
    return {
        "tiles": list(actor.tiles),
        "scenes": [scenes[t] for t in actor.tiles],
        "peak_after_mb": [round(actor.peak_after(k) / 1024**2, 1) for k in range(1, len(actor.done) + 1)],
    }


def actor_peaks_mb(runs: list[dict[int, int]]) -> dict[str, Any]:
    """Per-actor peaks (MB) over the runs, and the largest."""
    values = [round(v / 1024**2, 1) for run in runs for v in run.values()]
    if not values:
        raise RuntimeError(f"no '{TILE_MAPPER}' actor process was seen; cannot report its memory")
    return {"per_actor_mb": values, "max_mb": max(values)}


def median_of(values: list[float | None]) -> float | None:
    """Median of the values that were measured (None: none were)."""
    found = [v for v in values if v is not None]
    return float(np.median(found)) if found else None


def read_level0(url: str, tiles: Sequence[Any]) -> list[dict[str, np.ndarray]]:
    """Each tile's output arrays from a finished store (the write floors' input)."""
    import zarr

    from deepsalt.mapping.store import VARIABLES

    arrays = []
    for tile in tiles:
        ys, xs = tile.slices()
        arrays.append(
            {v.name: np.asarray(zarr.open_array(url, path=v.name, mode="r")[ys, xs]) for v in VARIABLES}
        )
    return arrays


def case_scenes(case: MapCase) -> list[Any]:
    """The scenes ``case``'s tiles read, each once, in the order the tiles name them."""
    return [case.scenes[s] for s in dict.fromkeys(s for tile in case.tiles for s in tile.scenes)]


def scene_files(scenes: Sequence[Any]) -> list[str]:
    """Local paths of the scenes' spectral and quality files (the benchmark's world is on disk)."""
    import fsspec

    paths = []
    for scene in scenes:
        for href in (scene.spectral_href, *scene.quality_hrefs.values()):
            fs, path = fsspec.core.url_to_fs(href)
            if "file" not in fs.protocol:
                raise ValueError(f"{href}: the benchmark's scenes must be local files")
            paths.append(path)
    return paths


def warm_page_cache(scenes: Sequence[Any]) -> int:
    """Read every scene file once (untimed) so no run pays the first read from disk; bytes read."""
    return page_cache.warm(scene_files(scenes))


# ---------------------------------------------------------------- the family


def benchmark(
    bbox: Sequence[float],
    inputs: Inputs,
    geometry: Geometry,
    scratch: Path,
    student_url: str,
    memory_runs: int = 1,
) -> dict[str, Any]:
    """Every mapping measurement, in an order that lets each use what the one before made."""
    scratch.mkdir(parents=True, exist_ok=True)
    rows, cols = geometry.production
    double = centred_tile_bounds(region_centre(bbox), (rows, 2 * cols), geometry.tile)
    production = north_west(double, (rows, cols), (rows, 2 * cols))
    half_cols = max(cols // 2, 1)
    cases = {
        "production": map_case("production", production, inputs, geometry, scratch),
        "half": map_case(
            "half", north_west(double, (rows, half_cols), (rows, 2 * cols)), inputs, geometry, scratch
        ),
        "double": map_case("double", double, inputs, geometry, scratch),
    }
    expected = {"production": rows * cols, "half": rows * max(cols // 2, 1), "double": 2 * rows * cols}
    for name, case in cases.items():
        if len(case.tiles) != expected[name]:
            raise RuntimeError(
                f"region {name} has {len(case.tiles)} tiles with imagery, not {expected[name]}"
            )
    log.info("mapping benchmark", extra={name: case.pixels for name, case in cases.items()})
    # P's scenes stay in memory for every run; the other runs warm theirs (watched_run).
    with page_cache.HeldFiles(scene_files(case_scenes(cases["production"]))) as held:
        results = measure(
            cases, production, inputs, geometry, scratch, student_url, memory_runs, held.locked_bytes
        )
    results["page_cache"] = {"locked_bytes": held.locked_bytes, "not_locked": held.not_locked}
    return results


def measure(
    cases: dict[str, MapCase],
    production: Sequence[float],
    inputs: Inputs,
    geometry: Geometry,
    scratch: Path,
    student_url: str,
    memory_runs: int,
    held_bytes: int,
) -> dict[str, Any]:
    """The measurements of :func:`benchmark` on its regions (P = ``production``, H, 2P); P's scenes
    are held in memory (``held_bytes``)."""
    from benchmarks.dask_recipe import memory_budget, run_in_child
    from deepsalt.mapping.worker import TileMapper

    rows, cols = geometry.production
    p = cases["production"]
    # Physical and own-code floors for P, in this process, one thread.
    flops = floors.student_flops_per_pixel(student_url)
    mapper = TileMapper(mapping_job(p))
    first_profile = tile_profile(mapper, p.tiles[0])  # cold: waits for the compile
    read = read_pass(mapper, p.tiles)
    # A tile after others, as an actor maps it in the steady state (compiled, caches in use).
    steady_tile = p.tiles[1 % len(p.tiles)]
    profile = tile_profile(mapper, steady_tile)
    stored = floors.stored_tiles(set().union(*read.sources.values()))
    gemm = floors.gemm_flops_per_s()  # beside the own-code model floor it is compared with
    own_model_s = model_seconds(mapper.predictor, read.sample)
    sample_pixels = len(read.sample[0])
    split = forward_split(mapper.predictor, read.sample).as_dict(flops * sample_pixels, gemm)
    predicted = sum(read.predicted.values())

    # End-to-end, under Ray: P then H on one actor, then P on two, in rounds, each after its own
    # host rates.
    half_case = cases["half"]
    outputs: list[dict[str, np.ndarray]] = []
    rounds: list[tuple[floors.HostRates, Watched, Watched]] = []
    two_runs: list[Watched] = []
    for k in range(memory_runs):
        rates = floors.HostRates.measure(stored)
        keep = (lambda url: outputs.extend(read_level0(url, p.tiles))) if k == 0 else None
        rounds.append((rates, watched_run(p, scratch, on_store=keep), watched_run(half_case, scratch)))
        two_runs.append(watched_run(p.with_actors(2), scratch))
    first_rates = rounds[0][0]
    base_floors = floors.TileFloors(
        pixels={t.id: t.n_pixels for t in p.tiles},
        sources=read.sources,
        predicted=read.predicted,
        decode_s=first_rates.decode_s,
        model_s_per_pixel=flops / first_rates.gemm_flops_per_s,
        write_s=dict(
            zip(
                (t.id for t in p.tiles),
                floors.write_seconds(outputs, geometry.chunk, scratch / "write-floor"),
                strict=True,
            )
        ),
    )
    run_floors = [base_floors.at(rates, flops) for rates, _, _ in rounds]
    p_floor = run_floors[0].parts(t.id for t in p.tiles)
    own_write_s = store_write_seconds(p, outputs, scratch)
    # The memory comparison's 2P runs (P's are the rounds').
    doubles = [watched_run(cases["double"].with_actors(2), scratch) for _ in range(memory_runs)]
    p_runs = [run for _, run, _ in rounds]
    half_runs = [run for _, _, run in rounds]

    # The dask recipe on P, else on the largest part of P it can hold.
    budget = memory_budget(held_bytes)
    dask_runs = []
    for name, bounds in (
        ("production", production),
        ("one tile", north_west(production, (1, 1), (rows, cols))),
    ):
        # Parts of P: their scenes are held in memory already.
        case = map_case(f"dask-{name.replace(' ', '-')}", bounds, inputs, geometry, scratch)
        result = run_in_child(case.config.model_dump(mode="json"), name, case.pixels, budget, timeout_s=900)
        dask_runs.append(result)
        if result.finished:
            break

    tile_px = geometry.tile**2
    ones = one_actor_figures(p_runs, tile_px, run_floors)
    marginal = marginal_figures(list(zip(p_runs, half_runs, run_floors, strict=True)), p, half_case)
    steady_one = ones["steady_px_s"]
    scaling = scaling_figures(p_runs, two_runs, tile_px)
    steady_two = scaling["two_actors_steady_px_s"]
    steady_two_double = steady_px_s(doubles[0].actors, tile_px)
    floor_s = p_floor["sum_s"]
    # P's average floor per pixel over the rounds, for the comparison used until 2026-11-30.
    p_average = median_of([tf.per_pixel(t.id for t in p.tiles) for tf in run_floors])
    held = next((r for r in dask_runs if r.finished), None)
    return {
        "geometry": {
            "tile": geometry.tile,
            "chunk": geometry.chunk,
            "block": geometry.block,
            "crs": GRID_CRS,
        },
        "regions": {name: describe_case(case) for name, case in cases.items()},
        "floors": {
            "gemm_flops_per_s": first_rates.gemm_flops_per_s,
            "student_flops_per_pixel": flops,
            "predicted_pixels": predicted,
            "decode_s": p_floor["decode_s"],
            "decoded_tiles": len(stored.blobs),
            "decoded_tiles_per_output_tile": sum(len(sources) for sources in read.sources.values()),
            "stored_bytes": stored.stored_bytes,
            "decoded_bytes": stored.decoded_bytes,
            "model_s": p_floor["model_s"],
            "write_s": p_floor["write_s"],
            "sum_s": floor_s,
            "sum_s_per_pixel": floor_s / p.pixels,
            "average_s_per_pixel": p_average,
            "per_tile": {
                t.id: {
                    "scenes": len(t.scenes),
                    "predicted": read.predicted[t.id],
                    **{k: v / t.n_pixels for k, v in run_floors[0].parts([t.id]).items()},
                }
                for t in p.tiles
            },
            "steady_tiles": steady_tiles(p_runs[0].actors),
            "steady_s_per_pixel": ones["steady_floor_s_per_pixel"],
            "marginal_s_per_pixel": marginal["floor_s_per_pixel"],
            "rounds": [
                {"gemm_flops_per_s": rates.gemm_flops_per_s, **tf.parts(t.id for t in p.tiles)}
                for (rates, _, _), tf in zip(rounds, run_floors, strict=True)
            ],
        },
        "own_code": {
            "read_s": read.seconds,
            "read_tiles_decoded": read.decoded,
            "model_s_per_predicted_pixel": own_model_s / sample_pixels,
            "model_s": own_model_s / sample_pixels * predicted,
            "model_sample_pixels": sample_pixels,
            "gemm_flops_per_s": gemm,
            "model_share_of_gemm": flops * sample_pixels / own_model_s / gemm,
            "write_s": own_write_s,
        },
        "forward_split": split,
        "profile_first_tile": first_profile,
        "profile_steady_tile": {"tile": steady_tile.id, "self_times": profile},
        "end_to_end": {
            "one_actor_s": ones["seconds"],
            "one_actor_runs": ones["runs"],
            "half_one_actor_s": marginal["seconds"],
            "marginal_runs": marginal["runs"],
            "two_actors_s": scaling["two_actors_s"],
            "double_two_actors_s": doubles[0].seconds,
            "one_actor_px_s": p.pixels / ones["seconds"],
            "one_actor_steady_px_s": steady_one,
            "one_actor_marginal_px_s": 1 / marginal["s_per_pixel"],
            "one_actor_fixed_s": marginal["fixed_s"],
            "two_actors_steady_px_s": steady_two,
            "double_two_actors_steady_px_s": steady_two_double,
            "ratio_steady": ones["ratio_steady"],
            "ratio_marginal": marginal["ratio"],
            "ratio_steady_p_average_floor": (1 / steady_one) / p_average if steady_one else None,
            "ratio_marginal_p_average_floor": marginal["s_per_pixel"] / p_average,
            "ratio_as_measured": (ones["seconds"] / p.pixels) / p_average,
            "tiles_per_actor": {
                name: [len(a.done) for a in run.actors]
                for name, run in (
                    ("one", p_runs[0]),
                    ("half", half_runs[0]),
                    ("two", two_runs[0]),
                    ("double_two", doubles[0]),
                )
            },
        },
        "scaling": {
            "steady_ratio": scaling["ratio"],
            "rate_ratio": scaling["rate_ratio"],
            "rounds": scaling["rounds"],
            "steady_ratio_double": steady_two_double / steady_one
            if steady_one and steady_two_double
            else None,
        },
        "alternative": {
            "runs": [r.as_dict() for r in dask_runs],
            "held_region": held.region if held else None,
            "dask_px_s": held.pixels / held.seconds if held and held.seconds else None,
            "ratio_steady": steady_two / (held.pixels / held.seconds)
            if held and held.seconds and steady_two
            else None,
        },
        "memory": memory_figures(
            {
                "production": [r.actors for r in p_runs],
                "double": [r.actors for r in doubles],
                "half": [r.actors for r in half_runs],
                "production_two": [r.actors for r in two_runs],
            },
            {t.id: len(t.scenes) for t in cases["double"].tiles},
        ),
        "predictor": predictor_settings(mapper.predictor, p.config),
    }


def describe_case(case: MapCase) -> dict[str, Any]:
    return {
        "grid_shape": list(case.grid.shape),
        "crs": GRID_CRS,
        "tiles": len(case.tiles),
        "pixels": case.pixels,
        "scenes": len(case.scenes),
        "scenes_per_tile": [len(t.scenes) for t in case.tiles],
        "scene_cloud_cover": sorted(round(s.cloud_cover or 0.0, 1) for s in case.scenes.values()),
    }


def predictor_settings(predictor: Any, config: Any) -> dict[str, Any]:
    """Batch, precision, compile and device settings in force."""
    return {
        "class": type(predictor).__module__ + "." + type(predictor).__qualname__,
        "device": str(getattr(predictor, "device", "cpu")),
        "batch_pixels": getattr(predictor, "batch_size", config.model.batch_pixels),
        "precision": str(config.model.precision),
        "compile": str(config.model.compile),
        "block": config.model.block,
        "n_bands": int(np.asarray(predictor.wavelength).size),
    }
