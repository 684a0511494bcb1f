"""``*-METADATA.XML`` of a synthetic scene, in the element layout of DLR's EnMAP L2A products.

Only the parts that readers use are written (identification, coverage, timing, quality flags,
the product files and the real ``bandCharacterisation`` band table); the instrument and
processing internals of a real product are left out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from pyproj import Transformer

from deepsalt.synth.library import BAND_TABLE_XML
from deepsalt.synth.scenes import QUALITY_LAYERS, SceneRaster

_ISO = "%Y-%m-%dT%H:%M:%S.000000Z"


def scene_files(scene_id: str) -> dict[str, str]:
    """File names of a scene's product, keyed by role (``spectral``, ``metadata``, ``quality_*``)."""
    files = {"spectral": f"{scene_id}-SPECTRAL_IMAGE.TIF", "metadata": f"{scene_id}-METADATA.XML"}
    for layer in QUALITY_LAYERS:
        files[f"quality_{layer.lower()}"] = f"{scene_id}-QL_QUALITY_{layer}.TIF"
    return files


def corner_lonlat(crs: str, transform, shape: tuple[int, int]) -> dict[str, tuple[float, float]]:
    """(lon, lat) of the scene's corners and centre, for the bounding polygon."""
    h, w = shape
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    pixel = {
        "upper_left": (0, 0),
        "lower_left": (h, 0),
        "lower_right": (h, w),
        "upper_right": (0, w),
        "center": (h / 2, w / 2),
    }
    return {name: to_lonlat.transform(*(transform @ (col, row))) for name, (row, col) in pixel.items()}


def _add(parent: ET.Element, tag: str, text: object = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = str(text)
    return element


def _band_characterisation() -> ET.Element:
    return ET.parse(BAND_TABLE_XML).getroot().find(".//bandCharacterisation")


def _polygon(parent: ET.Element, corners: dict[str, tuple[float, float]], times: Iterable[str]) -> None:
    polygon = _add(parent, "boundingPolygon")
    order = ["upper_left", "lower_left", "lower_right", "upper_right", "upper_left", "center"]
    for frame, time in zip(order, times, strict=True):
        point = _add(polygon, "point")
        _add(point, "frame", frame)
        lon, lat = corners[frame]
        _add(point, "latitude", f"{lat:.7f}", unit="DEG")
        _add(point, "longitude", f"{lon:.7f}", unit="DEG")
        _add(point, "utcTime", time)


def metadata_xml(scene: SceneRaster, crs: str, transform, n_bands: int) -> bytes:
    """The METADATA.XML document of ``scene`` (UTF-8 bytes, deterministic)."""
    plan = scene.plan
    start = plan.acquired.strftime(_ISO)
    stop = plan.acquired.replace(second=min(plan.acquired.second + 4, 59)).strftime(_ISO)
    files = scene_files(plan.id)
    root = ET.Element("level_X")
    meta = _add(root, "metadata")
    schema = _add(meta, "schema")
    _add(schema, "versionSchema", "00.02.00")
    _add(schema, "processingLevel", "L2A")
    _add(meta, "name", files["metadata"])
    _add(meta, "comment", "Synthetic EnMAP Level 2A product of the DeepSalt demo region (not a DLR product)")
    processing = _add(root, "processing")
    _add(processing, "productFormat", "GeoTIFF+Metadata")
    _add(processing, "mapProjection", crs)
    _add(processing, "correctionType", "Land_Mode")
    base = _add(root, "base")
    corners = corner_lonlat(crs, transform, plan.shape)
    _polygon(_add(base, "spatialCoverage"), corners, [start, stop, stop, start, start, start])
    temporal = _add(base, "temporalCoverage")
    _add(temporal, "startTime", start)
    _add(temporal, "stopTime", stop)
    _add(base, "format", "ENMAP_L2A")
    _add(base, "level", "L2A")
    specific = _add(root, "specific")
    flags = _add(specific, "qualityFlag")
    _add(flags, "sceneSZA", f"{90 - plan.sun_elevation:.6f}")
    for tag, key in (
        ("cloudCover", "cloud"),
        ("hazeCover", "haze"),
        ("cloudShadow", "cloud_shadow"),
        ("waterCover", "water"),
    ):
        _add(flags, tag, round(scene.cover[key]))
    _add(flags, "cirrusCover", 0)
    _add(flags, "snowCover", 0)
    _add(specific, "sunElevationAngle", f"{plan.sun_elevation:.6f}")
    _add(specific, "sunAzimuthAngle", f"{plan.sun_azimuth:.6f}")
    specific.append(_band_characterisation())
    _add(specific, "pixelSizeOfOrthoScene", 30)
    _add(specific, "widthOfOrthoScene", plan.shape[1])
    _add(specific, "heightOfOrthoScene", plan.shape[0])
    product = _add(root, "product")
    merge = _add(_add(product, "image"), "merge")
    _add(merge, "channels", n_bands)
    _add(merge, "name", files["spectral"])
    dimension = _add(merge, "dimension")
    _add(dimension, "columns", plan.shape[1])
    _add(dimension, "rows", plan.shape[0])
    info = _add(product, "productFileInformation")
    for name in sorted(files.values()):
        _add(_add(info, "file"), "name", name)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
