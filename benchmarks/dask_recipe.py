"""The usual alternative: rioxarray mosaic + dask ``map_blocks`` + ``to_zarr``, run in a child process.

The recipe is what a user would write with the same predictor: ``reproject_match`` of each scene
onto the grid (nearest neighbour), ``combine_first`` into one mosaic in the compositor's scene
order, the covariates likewise (bilinear), then ``xarray.map_blocks`` with the predictor under
dask's threaded scheduler and ``to_zarr``. It reads no quality layers (no cloud compositing) and
writes no pyramid, so it does less work per pixel than DeepSalt, but it holds the whole mosaic
in memory: ``reproject_match`` loads every scene and makes a float64 copy of the region per
scene, so its peak memory grows with the region.

It runs in a child process so that its peak resident memory (``VmHWM``) is its own, and the
parent stops it when it passes a memory budget: on a shared machine a recipe that does not fit
must not push other work out of memory. A run stopped that way is reported with the memory it
had reached and when.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.memory import high_water_mark

MEMORY_SHARE = 0.6
"""Share of the memory available when the benchmark starts that the recipe may use."""


@dataclass(frozen=True)
class RecipeRun:
    """One run of the recipe: wall seconds of the work (imports and model load excluded), its
    peak resident bytes, and whether it finished within the memory budget."""

    region: str
    pixels: int
    seconds: float | None
    peak_bytes: int
    finished: bool
    budget_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def memory_budget(held_bytes: int = 0) -> int:
    """:data:`MEMORY_SHARE` of the memory available now, counting the benchmark's own locked input
    pages (``held_bytes``, :class:`benchmarks.page_cache.HeldFiles`) as available: unlocked, they are
    page cache the kernel would hand over."""
    return int((psutil.virtual_memory().available + held_bytes) * MEMORY_SHARE)


def run_in_child(
    config: dict[str, Any], region: str, pixels: int, budget_bytes: int, timeout_s: float
) -> RecipeRun:
    """Run the recipe for the map config ``config`` (a ``MapConfig`` as JSON) in a fresh process."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(config, child), daemon=True)
    process.start()
    watched = psutil.Process(process.pid)
    peak, stopped, seconds = 0, False, None
    deadline = time.monotonic() + timeout_s
    while process.is_alive():
        try:
            peak = max(peak, high_water_mark(watched))
        except psutil.NoSuchProcess:
            break
        if peak > budget_bytes or time.monotonic() > deadline:
            stopped = True
            process.kill()
            break
        if parent.poll(0.2):
            message = parent.recv()
            if isinstance(message, BaseException):
                process.join()
                raise RuntimeError(f"the dask recipe failed on {region}") from message
            seconds, peak = message["seconds"], max(peak, message["peak_bytes"])
    process.join()
    if seconds is None and not stopped and parent.poll(1.0):
        message = parent.recv()
        if isinstance(message, BaseException):
            raise RuntimeError(f"the dask recipe failed on {region}") from message
        seconds, peak = message["seconds"], max(peak, message["peak_bytes"])
    return RecipeRun(region, pixels, seconds, peak, seconds is not None and not stopped, budget_bytes)


def _child(config: dict[str, Any], pipe: Any) -> None:
    """In the child: single-threaded torch and GDAL per dask worker, then time the recipe."""
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["GDAL_NUM_THREADS"] = "1"
    try:
        import torch

        torch.set_num_threads(1)
        from deepsalt.mapping import MapConfig

        run = recipe(MapConfig.model_validate(config))
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        pipe.send({"seconds": seconds, "peak_bytes": high_water_mark(psutil.Process())})
    except BaseException as exc:  # sent to the parent, which raises it with the region named
        pipe.send(exc)


def recipe(config: Any) -> Any:
    """The recipe for one map config, ready to run (predictor loaded and warmed, plan made)."""
    import rioxarray
    import xarray as xr
    from rasterio.enums import Resampling

    from deepsalt.io.covariates import covariate_urls
    from deepsalt.io.paths import gdal_path
    from deepsalt.io.ssurgo import survey_on_grid
    from deepsalt.mapping.composite import rank_scenes
    from deepsalt.mapping.predictor import InferenceSettings, load_predictor
    from deepsalt.mapping.run import plan
    from deepsalt.spectra import ENMAP_NODATA, BandTable

    tile_plan, scenes_by_id = plan(config)
    grid = tile_plan.grid
    settings = InferenceSettings(config.model.batch_pixels, config.model.precision, config.model.compiles(0))
    predictor = load_predictor(config.model.predictor, config.model.student_url, settings)
    target = np.asarray(predictor.wavelength, dtype=float)
    warm = np.full((4096, target.size), 0.2, np.float32)
    predictor.predict(warm, np.ones((4096, 8), np.float32))  # compiles, when the map would
    template = (
        xr.DataArray(
            np.zeros(grid.shape, np.float32),
            coords={"y": grid.y_coords(), "x": grid.x_coords()},
            dims=("y", "x"),
        )
        .rio.write_crs(grid.crs)
        .rio.write_transform(grid.transform)
    )
    scenes = rank_scenes(list(scenes_by_id.values()))
    chunk = config.grid.chunk
    scratch = Path(config.output.url).parent

    def predict_block(ds: xr.Dataset) -> xr.Dataset:
        refl = ds["reflectance"].transpose("y", "x", "band").to_numpy().reshape(-1, target.size)
        cov = ds["covariates"].transpose("y", "x", "covariate").to_numpy().reshape(-1, 8)
        survey = ds["survey"].to_numpy().reshape(-1)
        out = predictor.predict(refl.astype(np.float32), cov.astype(np.float32), survey)
        shape = (ds.sizes["y"], ds.sizes["x"])
        return xr.Dataset(
            {k: (("y", "x"), v.reshape(shape)) for k, v in out.items()}, coords={"y": ds.y, "x": ds.x}
        )

    def run() -> None:
        import dask

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
                for url in covariate_urls(config.inputs.covariates_url).values()
            ],
            dim="covariate",
        )
        survey = np.full(grid.shape, np.nan, np.float32)
        if config.inputs.survey_url is not None:
            survey = survey_on_grid(config.inputs.survey_url, grid.crs, grid.transform, grid.shape).ece
        ds = xr.Dataset(
            {
                "reflectance": mosaic.drop_vars("spatial_ref"),
                "covariates": covariates.drop_vars("spatial_ref"),
                "survey": (("y", "x"), survey),
            }
        ).chunk({"band": -1, "covariate": -1, "y": chunk, "x": chunk})
        empty = xr.DataArray(
            np.zeros(grid.shape, np.float32), coords={"y": template.y, "x": template.x}, dims=("y", "x")
        ).chunk(chunk)
        result = xr.map_blocks(
            predict_block, ds, template=xr.Dataset({k: empty for k in ("ece", "ece_std", "domain_score")})
        )
        url = scratch / f"dask-{uuid.uuid4().hex[:8]}.zarr"
        try:
            with dask.config.set(scheduler="threads", num_workers=2):
                result.rio.write_crs(grid.crs).to_zarr(url, mode="w", compute=True)
        finally:
            shutil.rmtree(url, ignore_errors=True)

    return run
