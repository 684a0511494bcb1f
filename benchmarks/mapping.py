"""Mapping throughput: the floors, end-to-end ``run_map``, the dask alternative, 1 vs 2 actors.

All cases map the same tiles of the same grid (EPSG:5070 at 30 m, so every case reprojects the
UTM scenes), and all run single-threaded per worker (torch and GDAL one thread each), so a floor
measured in the driver compares with one actor:

- **read floor (a)**: warp every scene that overlaps a tile (spectral cube, quality layers) onto
  the tile with rasterio's WarpedVRT, decode int16 → float32 reflectance, warp the covariates.
  Nothing else: no compositing, no model, no writes.
- **model floor (b)**: ``StudentPredictor.predict`` on the clear pixels of those tiles, already in
  memory (first scene with data per pixel, on the student's bands), in ``batch_pixels`` batches.
- **end-to-end (c)**: ``deepsalt.mapping.run_map`` into a fresh Zarr store, including Ray Data
  actor start-up, pyramid, STAC item and consolidation.
- **the usual alternative**: rioxarray ``reproject_match`` of each scene onto the grid,
  ``combine_first`` into a mosaic, covariates likewise, then ``xarray.map_blocks`` with the same
  predictor under dask's threaded scheduler and ``to_zarr``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import LinearCost, Timing, fit_linear_cost, floor_ratio, interleaved
from deepsalt.logs import get_logger

log = get_logger(__name__)

GRID_CRS = "EPSG:5070"
CHUNK, SHARD = 64, 128
"""128-pixel tiles, so even the small benchmark region is cut into several tiles (work units)."""
TILE_MAPPER = "TileMapper"
"""Ray names the actor processes after this class (see benchmarks.memory)."""


RESOLUTION = 30.0
LARGE_TILES, SMALL_TILES = (2, 2), (1, 2)
"""Regions as (rows, cols) of whole tiles: the small one still gives each of 2 actors a tile."""


def centred_tile_bounds(
    centre: tuple[float, float], tiles: tuple[int, int], tile: int = SHARD, resolution: float = RESOLUTION
) -> tuple[float, float, float, float]:
    """Grid-CRS bounds of ``tiles`` (rows, cols) whole tiles around ``centre``, on pixel edges.

    Whole tiles make every block of both regions the same size, so per-actor memory compares
    like with like; the centre is snapped to the pixel grid so snapping adds no partial tile.
    """
    rows, cols = tiles
    if rows < 1 or cols < 1:
        raise ValueError(f"need at least one tile each way, got {tiles}")
    cx, cy = (round(c / resolution) * resolution for c in centre)
    half_w, half_h = cols * tile * resolution / 2, rows * tile * resolution / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


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


def map_case(
    name: str,
    bounds: Sequence[float],
    stac_url: str,
    covariates_url: str,
    model: dict[str, Any],
    out: Path,
) -> MapCase:
    """Plan the tiles of ``bounds`` (grid CRS; no pixel is read); ``model`` is the map config's model section."""
    from deepsalt.mapping import MapConfig
    from deepsalt.mapping.run import plan

    config = MapConfig.model_validate(
        {
            "region": {"bounds": list(bounds)},
            "grid": {"crs": GRID_CRS, "resolution": RESOLUTION, "chunk": CHUNK, "shard": SHARD},
            "inputs": {"stac_url": stac_url, "covariates_url": covariates_url},
            "model": {**model, "block": SHARD},
            "output": {"url": str(out / f"{name}.zarr")},
            "ray": {"num_actors": 1, "num_cpus": 1.0, "retries": 0},
        }
    )
    tile_plan, scenes = plan(config)
    return MapCase(name, config, tile_plan.tiles, scenes, tile_plan.grid)


# ---------------------------------------------------------------- (a) read floor


class ReadFloor:
    """Read + decode + reproject of a case's tiles; optionally keeps the model's input pixels."""

    def __init__(self, case: MapCase, target_wavelength: np.ndarray):
        self.case = case
        self.target = np.asarray(target_wavelength, dtype=float)
        self.scene_pixels = 0
        """Scene pixels whose spectral cube the last pass read (for per-scene-pixel costs)."""

    def __call__(self) -> None:
        self.scene_pixels = 0
        for tile in self.case.tiles:
            self.read_tile(tile, keep=False)

    def model_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(reflectance (n, student bands), covariates (n, 8)) of every tile's clear pixels."""
        parts = [self.read_tile(tile, keep=True) for tile in self.case.tiles]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def read_tile(self, tile: Any, keep: bool) -> tuple[np.ndarray, np.ndarray]:
        """Scenes in the compositor's rank order, each read only while it can still fill a pixel.

        A scene's quality layers are always read (they say where it has data); its spectral cube
        only when it holds data for a pixel no earlier scene filled. The compositor must read at
        least this much (it reads on past cloud too), so this is a lower bound for any mosaic.
        """
        import rasterio
        from rasterio.vrt import WarpedVRT

        from deepsalt.io.covariates import covariate_urls, covariates_on_grid
        from deepsalt.io.paths import gdal_path
        from deepsalt.mapping.composite import (
            CLASS_BACKGROUND,
            CLASSES,
            QUALITY_NODATA,
            layer_name,
            rank_scenes,
        )
        from deepsalt.spectra import ENMAP_NODATA, BandTable, scale_reflectance

        grid, shape = self.case.grid, (tile.height, tile.width)
        transform = grid.window_transform(tile.y0, tile.x0)
        warp = {"crs": grid.crs, "transform": transform, "height": shape[0], "width": shape[1]}

        def warped(stack: ExitStack, href: str, nodata: float) -> np.ndarray:
            src = stack.enter_context(rasterio.open(gdal_path(href)))
            return stack.enter_context(WarpedVRT(src, nodata=nodata, **warp)).read()

        covariates = covariates_on_grid(
            covariate_urls(self.case.config.inputs.covariates_url), grid.crs, transform, shape
        )
        need = np.ones(shape, dtype=bool)
        pixels: list[np.ndarray] = []
        positions: list[np.ndarray] = []
        for scene in rank_scenes([self.case.scenes[s] for s in tile.scenes]):
            if not need.any():
                break
            with ExitStack() as stack:
                quality = {
                    layer_name(k): warped(stack, h, QUALITY_NODATA)[0] for k, h in scene.quality_hrefs.items()
                }
                classes = quality.get(CLASSES)
                candidates = (
                    need
                    if classes is None
                    else need & (classes != CLASS_BACKGROUND) & (classes != QUALITY_NODATA)
                )
                if not candidates.any():
                    continue
                raw = warped(stack, scene.spectral_href, ENMAP_NODATA)
                self.scene_pixels += tile.n_pixels
            table = scene.bands or BandTable.from_metadata_xml(scene.metadata_href)
            reflectance = scale_reflectance(raw, ENMAP_NODATA, table.gain, table.offset)
            bands = np.abs(table.wavelength[None, :] - self.target[:, None]).argmin(axis=1)
            take = candidates & np.isfinite(reflectance[bands]).all(axis=0)
            need &= ~take
            if keep:
                positions.append(np.flatnonzero(take))
                pixels.append(reflectance[bands][:, take].T)
        if not keep:
            return np.zeros((0, self.target.size), np.float32), np.zeros((0, 8), np.float32)
        flat_cov = covariates.reshape(covariates.shape[0], -1).T
        cov = np.concatenate([flat_cov[p] for p in positions]) if positions else flat_cov[:0]
        return (np.concatenate(pixels) if pixels else np.zeros((0, self.target.size), np.float32)), cov


# ---------------------------------------------------------------- (b) model floor


def model_floor(
    predictor: Any, reflectance: np.ndarray, covariates: np.ndarray, batch: int
) -> Callable[[], None]:
    """The student's forward pass alone over pixels already in memory."""
    ok = np.isfinite(covariates).all(axis=1)
    reflectance, covariates = reflectance[ok], covariates[ok]

    def run() -> None:
        for i in range(0, len(reflectance), batch):
            predictor.predict(reflectance[i : i + batch], covariates[i : i + batch])

    return run


# ---------------------------------------------------------------- (c) end-to-end


def end_to_end(
    case: MapCase, scratch: Path, on_records: Callable[[dict[str, Any]], Any] | None = None
) -> Callable[[], Any]:
    """``run_map`` into a fresh store each call (deleted afterwards); fails on any failed tile.

    ``on_records`` sees the store's tile completion records (which actor, when) before deletion.
    """
    from deepsalt.mapping import run_map
    from deepsalt.mapping.records import read_records

    def run() -> Any:
        url = scratch / f"{case.name}-{uuid.uuid4().hex[:8]}.zarr"
        output = case.config.output.model_copy(update={"url": str(url), "stac_item_url": str(url) + ".json"})
        try:
            summary = run_map(case.config.model_copy(update={"output": output}))
            if on_records is not None:
                on_records(read_records(str(url)))
        finally:
            shutil.rmtree(url, ignore_errors=True)
            Path(str(url) + ".json").unlink(missing_ok=True)
        if not summary.ok or summary.tiles_done != len(case.tiles):
            raise RuntimeError(f"benchmark map {case.name} failed: {summary.failures}")
        return summary

    return run


# ---------------------------------------------------------------- the usual alternative


def dask_alternative(case: MapCase, predictor: Any, scratch: Path) -> Callable[[], None]:
    """The same predictor the way a user would apply it with rioxarray + dask + ``to_zarr``."""
    import rioxarray
    import xarray as xr
    from rasterio.enums import Resampling

    from deepsalt.io.covariates import covariate_urls
    from deepsalt.io.paths import gdal_path
    from deepsalt.mapping.composite import rank_scenes
    from deepsalt.spectra import ENMAP_NODATA, BandTable

    grid = case.grid
    template = (
        xr.DataArray(
            np.zeros(grid.shape, np.float32),
            coords={"y": grid.y_coords(), "x": grid.x_coords()},
            dims=("y", "x"),
        )
        .rio.write_crs(grid.crs)
        .rio.write_transform(grid.transform)
    )
    target = np.asarray(predictor.wavelength, dtype=float)
    scenes = rank_scenes(list(case.scenes.values()))

    def predict_block(ds: xr.Dataset) -> xr.Dataset:
        refl = ds["reflectance"].transpose("y", "x", "band").to_numpy().reshape(-1, target.size)
        cov = ds["covariates"].transpose("y", "x", "covariate").to_numpy().reshape(-1, 8)
        out = predictor.predict(refl.astype(np.float32), cov.astype(np.float32))
        shape = (ds.sizes["y"], ds.sizes["x"])
        return xr.Dataset(
            {k: (("y", "x"), v.reshape(shape)) for k, v in out.items()}, coords={"y": ds.y, "x": ds.x}
        )

    def run() -> None:
        mosaic = None
        for scene in scenes:
            table = scene.bands or BandTable.from_metadata_xml(scene.metadata_href)
            bands = np.abs(table.wavelength[None, :] - target[:, None]).argmin(axis=1)
            cube = rioxarray.open_rasterio(
                gdal_path(scene.spectral_href), chunks={"band": -1, "y": 512, "x": 512}
            )
            cube = cube.isel(band=bands).rio.reproject_match(template, resampling=Resampling.nearest)
            gain = xr.DataArray(
                table.gain[bands] if table.gain is not None else np.full(bands.size, 1e-4), dims="band"
            )
            offset = xr.DataArray(
                table.offset[bands] if table.offset is not None else np.zeros(bands.size), dims="band"
            )
            scaled = (cube.where(cube != ENMAP_NODATA) * gain + offset).astype(np.float32)
            mosaic = scaled if mosaic is None else mosaic.combine_first(scaled)
        covariates = xr.concat(
            [
                rioxarray.open_rasterio(gdal_path(url), masked=True)
                .squeeze("band", drop=True)
                .rio.reproject_match(template, resampling=Resampling.bilinear)
                for url in covariate_urls(case.config.inputs.covariates_url).values()
            ],
            dim="covariate",
        )
        ds = xr.Dataset(
            {
                "reflectance": mosaic.drop_vars("spatial_ref"),
                "covariates": covariates.drop_vars("spatial_ref"),
            }
        ).chunk({"band": -1, "covariate": -1, "y": CHUNK, "x": CHUNK})
        empty = xr.DataArray(
            np.zeros(grid.shape, np.float32), coords={"y": template.y, "x": template.x}, dims=("y", "x")
        ).chunk(CHUNK)
        result = xr.map_blocks(
            predict_block, ds, template=xr.Dataset({k: empty for k in ("ece", "ece_std", "domain_score")})
        )
        url = scratch / f"dask-{uuid.uuid4().hex[:8]}.zarr"
        try:
            result.rio.write_crs(grid.crs).to_zarr(url, mode="w", compute=True)
        finally:
            shutil.rmtree(url, ignore_errors=True)

    return run


# ---------------------------------------------------------------- the family, side by side


@dataclass(frozen=True)
class Settings:
    warmup: int
    repeats: int


@dataclass(frozen=True)
class ActorTiles:
    """One mapping actor of one run: its memory samples and the tiles it finished, in order."""

    series: tuple[tuple[float, int], ...]
    """(wall time, peak resident bytes so far), from :class:`benchmarks.memory.ActorMemory`."""
    done: tuple[float, ...]
    """Wall times of its tile completion records, in order."""
    predicted: tuple[int, ...]
    """Pixels predicted in each of those tiles (a tile's working set grows with them)."""

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

    done: dict[int, list[tuple[float, int]]] = {}
    for record in records.values():
        pid = int(record.worker.rsplit(":", 1)[1])  # a deepsalt.mapping.records.TileResult
        when = datetime.fromisoformat(record.time).timestamp()
        done.setdefault(pid, []).append((when, record.predicted))
    actors = []
    for pid, samples in series.items():
        tiles = sorted(done.get(pid, []))
        actors.append(ActorTiles(tuple(samples), tuple(t for t, _ in tiles), tuple(n for _, n in tiles)))
    return actors


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


def watched(case: MapCase, scratch: Path, seen: list[list[ActorTiles]]) -> Callable[[], None]:
    """``run_map`` of ``case`` with its actors' memory and tile completions recorded (one list per call)."""
    from benchmarks.memory import ActorMemory

    records: dict[str, dict[str, Any]] = {}
    run = end_to_end(case, scratch, on_records=records.update)

    def call() -> None:
        records.clear()
        with ActorMemory(TILE_MAPPER) as memory:
            run()
        seen.append(actor_tiles(memory.series, records))

    return call


def memory_figures(
    small: list[list[ActorTiles]], large: list[list[ActorTiles]], large_2: list[list[ActorTiles]]
) -> dict[str, Any]:
    """Peaks per actor, compared between the regions at the same number of tiles per actor.

    One actor maps the small region's 2 tiles, or the large region's 4; two actors map the large
    region's 4, 2 each, the same regime as the small run, so that pair is the fair comparison.
    An actor's peak is set by the heaviest tile it maps (pixels predicted and scenes read in one
    block), so a whole-run 2- vs 4-tile comparison mixes region size with tile content; the growth
    per tile after the first tiles is reported beside it.
    """
    actors = {
        name: [a for run in runs for a in run if a.done]
        for name, runs in (("small", small), ("large", large), ("large_2_actors", large_2))
    }
    if not all(actors.values()):
        empty = [name for name, found in actors.items() if not found]
        raise RuntimeError(f"no '{TILE_MAPPER}' actor that finished a tile was seen in the {empty} runs")
    mb = 1024**2
    warm = min(len(a.done) for a in actors["small"])
    later = [a for a in actors["large"] if len(a.done) > warm]
    figures = {
        name: actor_peaks_mb([{i: a.peak for i, a in enumerate(run)} for run in runs])
        for name, runs in (("small", small), ("large", large), ("large_2_actors", large_2))
    }
    return figures | {
        "tiles_per_actor": {name: [len(a.done) for a in found] for name, found in actors.items()},
        "heaviest_tile_predicted": {
            name: max(max(a.predicted) for a in found) for name, found in actors.items()
        },
        "growth_same_tiles": figures["large_2_actors"]["max_mb"] / figures["small"]["max_mb"] - 1,
        "growth": figures["large"]["max_mb"] / figures["small"]["max_mb"] - 1,
        "warm_tiles": warm,
        "growth_per_tile_mb": (
            float(np.median([(a.peak - a.peak_after(warm)) / (len(a.done) - warm) / mb for a in later]))
            if later
            else None
        ),
    }


def benchmark(
    bbox: Sequence[float],
    stac_url: str,
    covariates_url: str,
    student_url: str,
    scratch: Path,
    predictor_spec: str | None,
    settings: Settings,
) -> dict[str, Any]:
    """Every mapping measurement, interleaved round-robin so they share the machine's load."""
    from deepsalt.mapping.predictor import load_predictor

    scratch.mkdir(parents=True, exist_ok=True)
    model = {"student_url": student_url} | ({"predictor": predictor_spec} if predictor_spec else {})
    centre = region_centre(bbox)
    large = map_case(
        "large", centred_tile_bounds(centre, LARGE_TILES), stac_url, covariates_url, model, scratch
    )
    small = map_case(
        "small", centred_tile_bounds(centre, SMALL_TILES), stac_url, covariates_url, model, scratch
    )
    predictor = load_predictor(large.config.model.predictor, student_url)
    read = ReadFloor(large, predictor.wavelength)
    reflectance, covariates = read.model_inputs()
    seen: dict[str, list[list[ActorTiles]]] = {"small": [], "large": [], "small_2": [], "large_2": []}
    runs = {
        "read_floor": read,
        "model_floor": model_floor(predictor, reflectance, covariates, large.config.model.batch_pixels),
        "dask_alternative": dask_alternative(large, predictor, scratch),
        "dask_alternative_small": dask_alternative(small, predictor, scratch),
        "map_1_actor": watched(large, scratch, seen["large"]),
        "map_1_actor_small": watched(small, scratch, seen["small"]),
        "map_2_actors": watched(large.with_actors(2), scratch, seen["large_2"]),
        "map_2_actors_small": watched(small.with_actors(2), scratch, seen["small_2"]),
    }
    work = {name: float(small.pixels if name.endswith("_small") else large.pixels) for name in runs}
    log.info("mapping benchmark", extra={"large_pixels": large.pixels, "small_pixels": small.pixels})
    # Warm-up: the in-process workloads (imports, first calls, page cache) and Ray Data's first
    # pipeline; every map run starts its own actors, so a warm-up per map case would add nothing.
    for _ in range(settings.warmup):
        for name in ("read_floor", "model_floor", "dask_alternative", "map_1_actor_small"):
            runs[name]()
    for runs_so_far in seen.values():
        runs_so_far.clear()
    t = interleaved(runs, work, warmup=0, repeats=settings.repeats)
    a, b, c = t["read_floor"].per_unit, t["model_floor"].per_unit, t["map_1_actor"].per_unit
    one, two = marginal_cost(t, "map_1_actor"), marginal_cost(t, "map_2_actors")
    dask = marginal_cost(t, "dask_alternative")
    return {
        "regions": {case.name: describe_case(case) for case in (large, small)},
        "model_pixels": len(reflectance),
        "read_scene_pixels": read.scene_pixels,
        "timings": {name: timing.as_dict() for name, timing in t.items()},
        "floors": {
            "read_px_s": 1 / a,
            "model_px_s": 1 / b,
            "end_to_end_px_s": 1 / c,
            "ratio_total": floor_ratio(c, a, b),
            "end_to_end_fixed_s": one.fixed,
            "end_to_end_marginal_px_s": 1 / one.per_unit,
            "ratio_marginal": floor_ratio(one.per_unit, a, b),
        },
        "alternative": {
            "deepsalt_2_actors_px_s": t["map_2_actors"].throughput,
            "dask_px_s": t["dask_alternative"].throughput,
            "ratio": t["map_2_actors"].throughput / t["dask_alternative"].throughput,
            "deepsalt_2_actors_marginal_px_s": 1 / two.per_unit,
            "dask_marginal_px_s": 1 / dask.per_unit,
            "dask_fixed_s": dask.fixed,
            "ratio_marginal": dask.per_unit / two.per_unit,
            # What 2 actors would reach running exactly at the floors and scaling perfectly.
            "ratio_at_floors": dask.per_unit / ((a + b) / 2),
        },
        "scaling": {
            "1_actor_px_s": t["map_1_actor"].throughput,
            "2_actors_px_s": t["map_2_actors"].throughput,
            "ratio": t["map_2_actors"].throughput / t["map_1_actor"].throughput,
            "1_actor_marginal_px_s": 1 / one.per_unit,
            "2_actors_marginal_px_s": 1 / two.per_unit,
            "2_actors_fixed_s": two.fixed,
            "ratio_marginal": one.per_unit / two.per_unit,
            "tiles_per_actor": {
                size: [sorted(len(a.done) for a in run) for run in seen[f"{size}_2"]]
                for size in ("small", "large")
            },
            "1_actor_steady_px_s": median_of([steady_px_s(run, SHARD**2) for run in seen["large"]]),
            "2_actors_steady_px_s": median_of([steady_px_s(run, SHARD**2) for run in seen["large_2"]]),
        },
        "memory": memory_figures(seen["small"], seen["large"], seen["large_2"]),
        "predictor": predictor_settings(predictor, large.config),
    }


def median_of(values: list[float | None]) -> float | None:
    """Median of the values that were measured (None: none were)."""
    found = [v for v in values if v is not None]
    return float(np.median(found)) if found else None


def marginal_cost(timings: dict[str, Timing], name: str) -> LinearCost:
    """Fixed and per-pixel cost of a map run from its small- and large-region runs."""
    small, large = timings[f"{name}_small"], timings[name]
    return fit_linear_cost(
        [small.work] * len(small.seconds) + [large.work] * len(large.seconds),
        [*small.seconds, *large.seconds],
    )


def actor_peaks_mb(runs: list[dict[int, int]]) -> dict[str, Any]:
    """Per-actor peaks (MB) over the measured runs, and the largest."""
    values = [round(v / 1024**2, 1) for run in runs for v in run.values()]
    if not values:
        raise RuntimeError(f"no '{TILE_MAPPER}' actor process was seen; cannot report its memory")
    return {"per_actor_mb": values, "max_mb": max(values)}


def describe_case(case: MapCase) -> dict[str, Any]:
    return {
        "grid_shape": list(case.grid.shape),
        "crs": GRID_CRS,
        "tiles": len(case.tiles),
        "tile_size": SHARD,
        "pixels": case.pixels,
        "scene_tile_reads": sum(len(t.scenes) for t in case.tiles),
        "scenes_per_pixel": sum(len(t.scenes) * t.n_pixels for t in case.tiles) / case.pixels,
    }


def predictor_settings(predictor: Any, config: Any) -> dict[str, Any]:
    """Batch and device settings in force (documented in RESULTS.md for the GPU path)."""
    return {
        "class": type(predictor).__module__ + "." + type(predictor).__qualname__,
        "device": str(getattr(predictor, "device", "cpu")),
        "batch_pixels": config.model.batch_pixels,
        "block": config.model.block,
        "n_bands": int(np.asarray(predictor.wavelength).size),
    }
