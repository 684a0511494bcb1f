"""Settings of one mapping run (``deepsalt map``), validated before any work starts."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from deepsalt.config import StageConfig
from deepsalt.io.formats import SceneFormat

PositiveInt = Annotated[int, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionConfig(_Section):
    """Where to map: lon/lat ``bbox`` or ``bounds`` in the grid CRS (exactly one)."""

    bbox: tuple[float, float, float, float] | None = None
    bounds: tuple[float, float, float, float] | None = None
    datetime: str | None = Field(None, description="STAC datetime range, e.g. 2024-05-01/2024-09-30")

    @model_validator(mode="after")
    def _one_extent(self) -> RegionConfig:
        if (self.bbox is None) == (self.bounds is None):
            raise ValueError("give exactly one of region.bbox (lon/lat) or region.bounds (grid CRS)")
        extent = self.bbox or self.bounds
        assert extent is not None
        if not (extent[0] < extent[2] and extent[1] < extent[3]):
            raise ValueError("extent must be [min_x, min_y, max_x, max_y] with min < max")
        return self


class GridConfig(_Section):
    """The output grid: a projected CRS, a pixel size, and the Zarr chunk/shard layout."""

    crs: str = "EPSG:5070"
    resolution: float = Field(30.0, gt=0)
    chunk: PositiveInt = 512
    shard: PositiveInt = 4096
    tile_shards: PositiveInt = Field(1, description="a tile is tile_shards x tile_shards whole shards")

    @model_validator(mode="after")
    def _check(self) -> GridConfig:
        try:
            crs = CRS.from_user_input(self.crs)
        except CRSError as exc:
            raise ValueError(f"grid.crs '{self.crs}' is not a CRS: {exc}") from exc
        if not crs.is_projected:
            raise ValueError(
                f"grid.crs '{self.crs}' is geographic; the map needs a projected CRS in metres "
                "(e.g. EPSG:5070 for the conterminous US, or a UTM zone)"
            )
        if self.shard % self.chunk:
            raise ValueError(f"grid.shard ({self.shard}) must be a multiple of grid.chunk ({self.chunk})")
        return self


class SceneFile(_Section):
    """One scene given as a file instead of found in a STAC API."""

    url: str
    format: SceneFormat = SceneFormat.ENMAP_L2A


class InputsConfig(_Section):
    """Where the imagery and covariates come from: a STAC API (the main way), or a list of files."""

    stac_url: str | None = None
    collection: str = "ENMAP_HSI_L2A"
    max_cloud_cover: float | None = Field(None, ge=0, le=100)
    scenes: tuple[SceneFile, ...] | None = Field(None, description="scene files, when there is no STAC API")
    covariates_url: str = Field(description="folder holding <name>.tif per covariate")

    @model_validator(mode="after")
    def _one_source(self) -> InputsConfig:
        if (self.stac_url is None) == (self.scenes is None):
            raise ValueError(
                "give exactly one of inputs.stac_url (a STAC API) or inputs.scenes (a list of files)"
            )
        if self.scenes is not None and not self.scenes:
            raise ValueError("inputs.scenes is empty")
        return self


class ModelConfig(_Section):
    """The trained student and how to feed it."""

    student_url: str
    predictor: str = Field(
        "deepsalt.predict:StudentPredictor",
        description="module:Class with .load(url, device) and .predict(reflectance, covariates)",
    )
    batch_pixels: PositiveInt = 65536
    block: PositiveInt = Field(512, description="pixels per side read and predicted at once in a tile")


class OutputConfig(_Section):
    """Where the map goes and what comes with it."""

    url: str
    stac_item_url: str | None = Field(None, description="default: <url without .zarr>.stac-item.json")
    pyramid_min_size: PositiveInt = Field(256, description="stop the pyramid when a level fits in this")
    quicklook_dir: str | None = Field(None, description="write quicklook PNGs here at the end")


class RayConfig(_Section):
    """How the work is spread: actor pool size and per-actor resources."""

    address: str | None = Field(None, description="None = start or join a local Ray")
    num_actors: PositiveInt = 2
    num_cpus: float = Field(0.5, gt=0)
    num_gpus: float = Field(0.0, ge=0)
    retries: int = Field(2, ge=0, description="extra attempts per tile before it is recorded failed")


class MapConfig(StageConfig):
    """Everything ``deepsalt map`` needs (see configs/map.yaml)."""

    region: RegionConfig
    grid: GridConfig = GridConfig()
    inputs: InputsConfig
    model: ModelConfig
    output: OutputConfig
    ray: RayConfig = RayConfig()

    def product_hash(self) -> str:
        """Hash of the settings that decide the pixels; a resumed run must match it.

        The STAC API's address is left out: the same catalogue served from another address (a
        mirror, or the demo's local server on a fresh port) decides the same pixels.
        """
        inputs = (
            self.inputs if self.inputs.stac_url is None else self.inputs.model_copy(update={"stac_url": ""})
        )
        return _ProductKey(region=self.region, grid=self.grid, inputs=inputs, model=self.model).config_hash()


class _ProductKey(StageConfig):
    """The pixel-deciding part of a MapConfig (output place and Ray resources excluded)."""

    region: RegionConfig
    grid: GridConfig
    inputs: InputsConfig
    model: ModelConfig
