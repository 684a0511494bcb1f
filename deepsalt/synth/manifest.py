"""``region.json``: what a generated region holds and where, read back with :func:`load_region`.

File paths in the manifest are relative to the region folder, so a region can be copied or
uploaded as a whole; :class:`RegionManifest` resolves them against the URL it was loaded from.
"""

from __future__ import annotations

import json
from typing import Any

import fsspec
from pydantic import Field, ValidationError

from deepsalt.config import FrozenModel
from deepsalt.errors import InputDataError

MANIFEST_NAME = "region.json"


class SceneEntry(FrozenModel):
    """One scene: its id, acquisition time, cloud cover and files by role."""

    id: str
    datetime: str
    cloud_cover: float
    files: dict[str, str] = Field(description="role (spectral, metadata, quality_cloud, ...) → path")


class RegionFiles(FrozenModel):
    truth: str
    lab: str
    library: str | None = Field(None, description="lab library table (MIR + ECe, no pixel)")
    survey: dict[str, str] = Field(
        default_factory=dict,
        description="soil survey: 'export' (SSURGO folder) and derived 'ece'/'sand'/'clay' COGs",
    )
    covariates: dict[str, str]
    scenes: list[SceneEntry]
    stac_collection: str
    stac_items: str


class RegionManifest(FrozenModel):
    """The manifest of one demo region; ``url`` is where it was loaded from (not stored)."""

    name: str
    seed: int
    crs: str
    transform: tuple[float, float, float, float, float, float] = Field(description="GDAL affine a,b,c,d,e,f")
    shape: tuple[int, int]
    bbox_lonlat: tuple[float, float, float, float]
    datetime_range: tuple[str, str]
    scene_ids: list[str]
    files: RegionFiles
    config: dict[str, Any]
    config_hash: str
    generator_version: str
    url: str = Field("", exclude=True)

    def href(self, relative: str) -> str:
        """Absolute URL of a file given relative to the region folder."""
        return f"{self.url.rstrip('/')}/{relative}"

    @property
    def truth_url(self) -> str:
        return self.href(self.files.truth)

    @property
    def lab_url(self) -> str:
        return self.href(self.files.lab)

    def covariate_urls(self) -> dict[str, str]:
        """Covariate name → URL, in the order of ``COVARIATE_NAMES``."""
        return {name: self.href(path) for name, path in self.files.covariates.items()}

    def scene_urls(self, scene_id: str) -> dict[str, str]:
        """Role → URL of one scene's files (``spectral`` is what ``open_enmap`` takes)."""
        for scene in self.files.scenes:
            if scene.id == scene_id:
                return {role: self.href(path) for role, path in scene.files.items()}
        raise KeyError(f"region {self.name} has no scene {scene_id}")

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n"


def load_region(url: str) -> RegionManifest:
    """Read ``<url>/region.json`` (``url``: the region folder, any fsspec URL)."""
    url = url.rstrip("/")
    path = f"{url}/{MANIFEST_NAME}"
    try:
        with fsspec.open(path, "r") as f:
            data = json.load(f)
    except FileNotFoundError as exc:
        raise InputDataError(path, "no region manifest: not a region written by `deepsalt synth`") from exc
    except json.JSONDecodeError as exc:
        raise InputDataError(path, f"region manifest is not valid JSON: {exc}") from exc
    try:
        return RegionManifest.model_validate({**data, "url": url})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputDataError(path, f"invalid region manifest: field '{field}': {err['msg']}") from exc
