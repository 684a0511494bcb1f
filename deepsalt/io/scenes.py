"""One reader per scene format, chosen by the format a :class:`SceneRef` carries.

The mapping asks three things of a scene, whatever its sensor: its band layout (which stored band
is which wavelength, how stored values become reflectance, what marks an empty pixel), a
description of a local file (footprint, time) when scenes come as a list of files rather than from
a STAC API, and, for formats GDAL cannot warp by itself, the stored values on the scene's grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from deepsalt.io.cube import GriddedCube, SpectralLayout
from deepsalt.io.emit import EmitCube, describe_emit, emit_layout
from deepsalt.io.enmap import describe_enmap, enmap_layout
from deepsalt.io.envi import describe_envi, envi_layout
from deepsalt.io.formats import SceneFormat
from deepsalt.io.prisma import PrismaCube, describe_prisma, prisma_layout
from deepsalt.io.stac import SceneRef


@dataclass(frozen=True)
class FormatReader:
    """How to read one format; ``open_cube`` is None where GDAL reads and warps the file itself."""

    layout: Callable[[SceneRef], SpectralLayout]
    describe: Callable[[str], SceneRef]
    open_cube: Callable[[str], GriddedCube] | None = None


READERS: dict[SceneFormat, FormatReader] = {
    SceneFormat.ENMAP_L2A: FormatReader(enmap_layout, describe_enmap),
    SceneFormat.ENVI: FormatReader(lambda scene: envi_layout(scene.spectral_href), describe_envi),
    SceneFormat.EMIT_L2A: FormatReader(
        lambda scene: emit_layout(scene.spectral_href), describe_emit, EmitCube
    ),
    SceneFormat.PRISMA_L2D: FormatReader(
        lambda scene: prisma_layout(scene.spectral_href), describe_prisma, PrismaCube
    ),
}


def spectral_layout(scene: SceneRef) -> SpectralLayout:
    """The band layout of ``scene`` (reads headers or metadata, never pixels)."""
    return READERS[scene.format].layout(scene)


def describe_scene(url: str, scene_format: SceneFormat) -> SceneRef:
    """A SceneRef for the file at ``url`` (reads headers only)."""
    return READERS[SceneFormat(scene_format)].describe(url)


def cube_opener(scene_format: SceneFormat) -> Callable[[str], GriddedCube] | None:
    """What opens a scene of this format on its own grid, or None when GDAL reads it directly."""
    return READERS[scene_format].open_cube
