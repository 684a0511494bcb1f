"""``generate_region``: build the world and write every file of a demo region.

The region is assembled in a staging folder and only then moved (local) or uploaded (any other
fsspec URL) to ``<out_url>/<region>``, so a failed run leaves no half-written region behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import fsspec
import numpy as np
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from deepsalt import __version__
from deepsalt.io.covariates import COVARIATE_NAMES
from deepsalt.io.ssurgo import NO_MAPUNIT, write_ssurgo, write_survey_cogs
from deepsalt.logs import get_logger
from deepsalt.spectra import ENMAP_NODATA
from deepsalt.synth.cog import write_cog
from deepsalt.synth.config import WORLD_PRESETS, SynthConfig
from deepsalt.synth.covariates import COVARIATE_CRS, COVARIATE_UNITS, covariate_fields
from deepsalt.synth.lab import lab_table, make_library, make_samples
from deepsalt.synth.library import mir_library, surface_library
from deepsalt.synth.manifest import MANIFEST_NAME, RegionFiles, RegionManifest, SceneEntry
from deepsalt.synth.metadata import metadata_xml, scene_files
from deepsalt.synth.scenes import SceneRaster, plan_scenes, render_scene
from deepsalt.synth.stac import collection, scene_item
from deepsalt.synth.survey import Survey, build_survey
from deepsalt.synth.world import PIXEL_M, World, build_world

log = get_logger(__name__)

TRUTH = "truth/ece.tif"
LAB = "lab/lab_samples.csv"
LIBRARY = "lab/library.csv"
COVARIATES = "covariates"
SURVEY_EXPORT = "survey/ssurgo"
SURVEY_DERIVED = "survey"
SURVEY_CRS = "EPSG:5070"  # gNATSGO's grid
SURVEY_COVARIATES = ("sand", "clay")  # texture covariates come from the survey, as in the paper
STAC_COLLECTION = "stac/collection.json"
STAC_ITEMS = "stac/items.ndjson"


def region_url(out_url: str, region: str) -> str:
    """``<out_url>/<region>`` with local paths made absolute (STAC hrefs must be absolute)."""
    protocol = fsspec.core.split_protocol(out_url)[0]
    if protocol in (None, "file"):
        return str(Path(fsspec.core.strip_protocol(out_url)).resolve() / region)
    return f"{out_url.rstrip('/')}/{region}"


@contextmanager
def _staging(final_url: str) -> Iterator[Path]:
    """A local folder that becomes ``final_url`` when the block succeeds (and vanishes if not)."""
    local = fsspec.core.split_protocol(final_url)[0] in (None, "file")
    parent = Path(final_url).parent if local else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".synth-", dir=parent))
    folder.chmod(0o755)  # mkdtemp makes it private; the region is for everyone who reads the parent
    try:
        yield folder
        if local:
            shutil.rmtree(final_url, ignore_errors=True)
            folder.rename(final_url)
        else:
            fs, path = fsspec.core.url_to_fs(final_url)
            if fs.exists(path):
                fs.rm(path, recursive=True)
            fs.put(f"{folder}/", path, recursive=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_covariates(config: SynthConfig, world: World, folder: Path) -> dict[str, str]:
    """Climate rasters (coarse, geographic); soil texture comes from the survey (``_write_survey``)."""
    fields, transform = covariate_fields(world, config.covariate_resolution_deg)
    files = {}
    for name, values in fields.items():
        if name in SURVEY_COVARIATES:
            continue
        files[name] = f"{COVARIATES}/{name}.tif"
        write_cog(
            folder / files[name],
            values,
            COVARIATE_CRS,
            transform,
            np.nan,
            tags={"units": COVARIATE_UNITS[name]},
        )
    return files


def _write_survey(survey: Survey, world: World, folder: Path) -> dict[str, str]:
    """The SSURGO export (Web Soil Survey layout, key raster on gNATSGO's EPSG:5070 30 m grid) and the
    0–30 cm ece/sand/clay COGs derived from it by :mod:`deepsalt.io.ssurgo`, as a user derives them."""
    h, w = world.shape
    left, bottom = world.transform @ (0, h)
    right, top = world.transform @ (w, 0)
    dst_transform, width, height = calculate_default_transform(
        world.crs, SURVEY_CRS, w, h, left, bottom, right, top, resolution=PIXEL_M
    )
    mukey = np.zeros((height, width), np.int32)
    reproject(
        survey.mukey.astype(np.int32),
        mukey,
        src_transform=world.transform,
        src_crs=world.crs,
        dst_transform=dst_transform,
        dst_crs=SURVEY_CRS,
        src_nodata=NO_MAPUNIT,
        dst_nodata=NO_MAPUNIT,
        resampling=Resampling.nearest,
    )
    write_ssurgo(
        folder / SURVEY_EXPORT,
        mukey,
        SURVEY_CRS,
        dst_transform,
        survey.mapunit,
        survey.component,
        survey.chorizon,
    )
    derived = write_survey_cogs(str(folder / SURVEY_EXPORT), str(folder / SURVEY_DERIVED))
    files = {"export": SURVEY_EXPORT} | {
        name: f"{SURVEY_DERIVED}/{Path(url).name}" for name, url in derived.items()
    }
    # The texture covariates are the survey's (as in the paper): the covariate folder that mapping
    # and training read holds them beside the climate rasters.
    for name in SURVEY_COVARIATES:
        shutil.copyfile(folder / files[name], folder / COVARIATES / f"{name}.tif")
    return files


def _write_scene(
    folder: Path, files: dict[str, str], scene: SceneRaster, crs: str, transform: Affine, n_bands: int
) -> None:
    """The DLR product files of one scene: spectral COG, quality masks, METADATA.XML."""
    write_cog(folder / files["spectral"], scene.data, crs, transform, ENMAP_NODATA, overviews=False)
    for layer, mask in scene.quality.items():
        write_cog(folder / files[f"quality_{layer.lower()}"], mask, crs, transform, None)
    (folder / files["metadata"]).write_bytes(metadata_xml(scene, crs, transform, n_bands))
    log.info("scene written", extra={"scene": scene.plan.id, "cloud_cover": round(scene.cover["cloud"], 1)})


def _bbox_lonlat(world: World) -> tuple[float, float, float, float]:
    h, w = world.shape
    left, bottom = world.transform @ (0, h)
    right, top = world.transform @ (w, 0)
    return tuple(round(v, 6) for v in transform_bounds(world.crs, "EPSG:4326", left, bottom, right, top))


def generate_region(config: SynthConfig, out_url: str) -> RegionManifest:
    """Generate region ``config.region`` into ``<out_url>/<config.region>`` and return its manifest."""
    started = time.perf_counter()
    final_url = region_url(out_url, config.region)
    lib = surface_library(config.world.soil_pool)
    mir = mir_library(config.world.mir_pool)
    world = build_world(config, len(lib.soils), lib.salt_names, len(lib.npv))
    plans = plan_scenes(config)
    samples = make_samples(config, world, mir, plans)
    library = make_library(config, {p: WORLD_PRESETS[p]["mir_pool"] for p in WORLD_PRESETS})
    survey = build_survey(config, world)
    log.info(
        "world built", extra={"region": config.region, "seconds": round(time.perf_counter() - started, 2)}
    )

    with _staging(final_url) as folder:
        write_cog(
            folder / TRUTH,
            world.ece,
            world.crs,
            world.transform,
            np.nan,
            tags={"units": "dS/m", "long_name": "ECe"},
        )
        _write_covariates(config, world, folder)
        survey_files = _write_survey(survey, world, folder)
        covariates = {name: f"{COVARIATES}/{name}.tif" for name in COVARIATE_NAMES}
        (folder / LAB).parent.mkdir(parents=True, exist_ok=True)
        lab_table(samples, mir.wavenumber).to_csv(folder / LAB, index=False)
        if config.n_library:
            lab_table(library, mir.wavenumber).to_csv(folder / LIBRARY, index=False)
        entries, items = [], []
        # Scene k is compressed and written (GDAL and numpy release the GIL) while k+1 renders.
        with ThreadPoolExecutor(max_workers=1) as writer:
            pending: Future | None = None
            for plan in plans:
                scene = render_scene(config, world, lib, plan)
                transform = world.transform @ world.transform.translation(plan.col0, plan.row0)
                files = {role: f"scenes/{plan.id}/{name}" for role, name in scene_files(plan.id).items()}
                if pending is not None:
                    pending.result()
                pending = writer.submit(
                    _write_scene, folder, files, scene, world.crs, transform, lib.bands.n_bands
                )
                hrefs = {role: f"{final_url}/{path}" for role, path in files.items()}
                items.append(scene_item(scene, world.crs, transform, lib.bands, hrefs))
                entries.append(
                    SceneEntry(
                        id=plan.id,
                        datetime=items[-1]["properties"]["datetime"],
                        cloud_cover=scene.cover["cloud"],
                        files=files,
                    )
                )
            if pending is not None:
                pending.result()
        (folder / STAC_COLLECTION).parent.mkdir(parents=True, exist_ok=True)
        (folder / STAC_COLLECTION).write_text(json.dumps(collection(items, config.region), indent=1) + "\n")
        (folder / STAC_ITEMS).write_text("".join(json.dumps(item) + "\n" for item in items))
        manifest = RegionManifest(
            name=config.region,
            seed=config.seed,
            crs=world.crs,
            transform=tuple(world.transform)[:6],
            shape=world.shape,
            bbox_lonlat=_bbox_lonlat(world),
            datetime_range=(entries[0].datetime, entries[-1].datetime),
            scene_ids=[e.id for e in entries],
            files=RegionFiles(
                truth=TRUTH,
                lab=LAB,
                library=LIBRARY if config.n_library else None,
                survey=survey_files,
                covariates=covariates,
                scenes=entries,
                stac_collection=STAC_COLLECTION,
                stac_items=STAC_ITEMS,
            ),
            config=config.model_dump(mode="json"),
            config_hash=config.config_hash(),
            generator_version=__version__,
            url=final_url,
        )
        (folder / MANIFEST_NAME).write_text(manifest.to_json())
    log.info(
        "region written",
        extra={"region": config.region, "url": final_url, "seconds": round(time.perf_counter() - started, 2)},
    )
    return manifest
