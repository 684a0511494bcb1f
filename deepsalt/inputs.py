"""Where a run's data come from: imagery (a STAC API or scene files), covariates, the soil survey,
and for training the lab tables; one settings model per role, shared by ``deepsalt train`` and
``deepsalt map`` so one inputs file serves both (``--inputs``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from deepsalt.config import FrozenModel
from deepsalt.errors import InputDataError
from deepsalt.io.formats import SceneFormat
from deepsalt.io.paths import AbsolutePath
from deepsalt.io.stac import SceneRef

_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")  # 2024 or 2024-05, as STAC APIs accept


def _instant(text: str) -> datetime | None:
    """One end of a STAC datetime range (RFC 3339 date or time, a year, a month; empty or '..' = open)."""
    if text in ("", ".."):
        return None
    partial = _PARTIAL_DATE.match(text)
    if partial:
        return datetime(int(partial.group(1)), int(partial.group(2) or 1), 1, tzinfo=UTC)
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def check_datetime_range(value: str | None) -> str | None:
    """A STAC datetime range, e.g. ``2024-05-01/2024-09-30`` (a single date, year or month is fine)."""
    if value is None:
        return None
    parts = value.split("/")
    try:
        if len(parts) > 2:
            raise ValueError("more than one '/'")
        ends = [_instant(part.strip()) for part in parts]
    except ValueError as exc:
        raise ValueError(
            f"'{value}' is not a date or date range (RFC 3339, e.g. 2024-05-01/2024-09-30): {exc}"
        ) from None
    if len(ends) == 2 and ends[0] and ends[1] and ends[0] > ends[1]:
        raise ValueError(f"'{value}' ends before it starts")
    return value


class SceneFile(FrozenModel):
    """One scene given as a file instead of found in a STAC API."""

    url: AbsolutePath
    format: SceneFormat = SceneFormat.ENMAP_L2A


class ImageryInputs(FrozenModel):
    """Where the imagery and covariates come from: a STAC API (the main way), or a list of files."""

    stac_url: str | None = None
    collection: str = "ENMAP_HSI_L2A"
    max_cloud_cover: float | None = Field(None, ge=0, le=100)
    scenes: tuple[SceneFile, ...] | None = Field(None, description="scene files, when there is no STAC API")
    covariates_url: AbsolutePath = Field(description="folder holding <name>.tif per covariate")
    survey_url: AbsolutePath | None = Field(
        None, description="SSURGO export (map-unit key raster + tables): the survey ECe the student reads"
    )

    @field_validator("stac_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"'{value}' is not the http(s):// address of a STAC API")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ImageryInputs:
        if (self.stac_url is None) == (self.scenes is None):
            raise ValueError(
                "give exactly one of inputs.stac_url (a STAC API) or inputs.scenes (a list of files)"
            )
        if self.scenes is not None and not self.scenes:
            raise ValueError("inputs.scenes is empty")
        return self


class TrainingInputs(ImageryInputs):
    """A user's own data for training: lab tables, imagery, covariates and the soil survey.

    The scenes are searched over the samples' area (their bounding box plus the pairing radius)
    and ``datetime``; each sample is paired with its clear pixel and the pairing report says what
    was paired, skipped and why.
    """

    lab: tuple[AbsolutePath, ...] = Field(
        min_length=1,
        description="lab tables (OSSL/KSSL-style CSV) or OPUS files of the samples: coordinates, depth, ECe",
    )
    library: tuple[str, ...] = Field(
        (), description="lab library tables: MIR spectra with measured ECe, anywhere"
    )
    datetime: str | None = Field(None, description="STAC datetime range of the scenes; default any date")
    survey_url: AbsolutePath = Field(description="SSURGO export (map-unit key raster + tables)")

    @field_validator("datetime")
    @classmethod
    def _date_range(cls, value: str | None) -> str | None:
        return check_datetime_range(value)


def find_scenes(inputs: ImageryInputs, bbox: Sequence[float], datetime: str | None) -> list[SceneRef]:
    """STAC search over ``bbox``/``datetime``, or every listed file (headers read, no pixels).

    Listed files are taken as given (no date or cloud filter: the user chose them); those outside
    the region simply get no tile.
    """
    from deepsalt.io.scenes import describe_scene
    from deepsalt.io.stac import search_scenes

    if inputs.scenes is None:
        assert inputs.stac_url is not None  # the config allows exactly one source
        return search_scenes(
            inputs.stac_url,
            bbox,
            datetime=datetime,
            max_cloud_cover=inputs.max_cloud_cover,
            collection=inputs.collection,
        )
    scenes = [describe_scene(entry.url, entry.format) for entry in inputs.scenes]
    seen: dict[str, str] = {}
    for scene in scenes:
        if scene.id in seen:
            raise InputDataError(
                scene.spectral_href, f"has the same scene id '{scene.id}' as {seen[scene.id]}"
            )
        seen[scene.id] = scene.spectral_href
    return scenes
