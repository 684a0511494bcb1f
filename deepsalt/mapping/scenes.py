"""The scenes of a mapping run: found in a STAC API, or described from a list of files."""

from __future__ import annotations

from collections.abc import Sequence

from deepsalt.errors import InputDataError
from deepsalt.io.scenes import describe_scene
from deepsalt.io.stac import SceneRef, search_scenes
from deepsalt.mapping.config import InputsConfig


def find_scenes(inputs: InputsConfig, bbox: Sequence[float], datetime: str | None) -> list[SceneRef]:
    """STAC search over ``bbox``/``datetime``, or every listed file (headers read, no pixels).

    Listed files are taken as given (no date or cloud filter: the user chose them); those outside
    the region simply get no tile.
    """
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
