"""Settings of one mapping run (``deepsalt map``), validated before any work starts."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from deepsalt.config import FrozenModel, StageConfig
from deepsalt.inputs import ImageryInputs as InputsConfig
from deepsalt.inputs import check_datetime_range
from deepsalt.io.paths import AbsolutePath
from deepsalt.mapping.predictor import Precision

PositiveInt = Annotated[int, Field(gt=0)]


_Section = FrozenModel


class RegionConfig(_Section):
    """Where to map: lon/lat ``bbox`` or ``bounds`` in the grid CRS (exactly one)."""

    bbox: tuple[float, float, float, float] | None = None
    bounds: tuple[float, float, float, float] | None = None
    datetime: str | None = Field(None, description="STAC datetime range, e.g. 2024-05-01/2024-09-30")

    @field_validator("datetime")
    @classmethod
    def _date_range(cls, value: str | None) -> str | None:
        return check_datetime_range(value)

    @model_validator(mode="after")
    def _one_extent(self) -> RegionConfig:
        if (self.bbox is None) == (self.bounds is None):
            raise ValueError("give exactly one of region.bbox (lon/lat) or region.bounds (grid CRS)")
        extent = self.bbox or self.bounds
        assert extent is not None
        if not (extent[0] < extent[2] and extent[1] < extent[3]):
            raise ValueError("extent must be [min_x, min_y, max_x, max_y] with min < max")
        west, south, east, north = extent
        if self.bbox is not None and not (west >= -180 and east <= 180 and south >= -90 and north <= 90):
            raise ValueError("region.bbox is longitude/latitude: within [-180, -90, 180, 90]")
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


class CompileMode(StrEnum):
    """When the actors compile the model's forward pass (see ``deepsalt.predict.CompiledForward``)."""

    AUTO = "auto"
    """When each actor has enough pixels to repay the compile time (``COMPILE_MIN_PIXELS``)."""
    ALWAYS = "always"
    NEVER = "never"


COMPILE_MIN_PIXELS = 1 << 25
"""Grid pixels per actor from which ``compile: auto`` compiles. Compiling costs tens of seconds the
first time on a machine (later actors load the compiled package, :mod:`deepsalt.compiled`, in
seconds) and saves a few microseconds per predicted pixel (benchmarks/RESULTS.md), so it pays from
about ten million pixels; this keeps a margin for slow compiles and pixels without data."""


class ModelConfig(_Section):
    """The trained student and how to feed it."""

    student_url: AbsolutePath
    predictor: str = Field(
        "deepsalt.predict:StudentPredictor",
        description="module:Class satisfying deepsalt.mapping.predictor.Predictor (load, describe, predict)",
    )
    batch_pixels: PositiveInt | None = Field(
        None,
        description="pixels per forward pass; null: the predictor picks (CPU: cache-sized, GPU: from free memory)",
    )
    block: PositiveInt = Field(512, description="pixels per side read and predicted at once in a tile")
    precision: Precision = Field(
        Precision.FP32, description="fp32, or bf16/fp16 autocast of the matrix products (for GPUs)"
    )
    compile: CompileMode = Field(
        CompileMode.AUTO, description="compile the forward pass: auto (large runs), always or never"
    )

    def compiles(self, pixels_per_actor: int) -> bool:
        """Whether the actors compile, for a run of ``pixels_per_actor`` grid pixels each."""
        if self.compile is CompileMode.AUTO:
            return pixels_per_actor >= COMPILE_MIN_PIXELS
        return self.compile is CompileMode.ALWAYS


class OutputConfig(_Section):
    """Where the map goes and what comes with it."""

    url: AbsolutePath
    stac_item_url: AbsolutePath | None = Field(
        None, description="default: <url without .zarr>.stac-item.json"
    )
    pyramid_min_size: PositiveInt = Field(256, description="stop the pyramid when a level fits in this")
    quicklook_dir: AbsolutePath | None = Field(None, description="write quicklook PNGs here at the end")


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
