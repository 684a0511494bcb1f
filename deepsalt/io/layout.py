"""The DLR EnMAP L2A product layout: which file of a product folder/zip is which.

DLR names every file ``<product id>-<KIND>[_COG].TIF|XML``; kinds used here are SPECTRAL_IMAGE,
METADATA and the QL_QUALITY_* masks. The same names appear as STAC asset hrefs.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from deepsalt.errors import InputDataError
from deepsalt.io import paths

# Mask name (as exposed by open_enmap_quality / SceneRef.quality_hrefs) → DLR file kind.
QUALITY_KINDS: dict[str, str] = {
    "cloud": "QL_QUALITY_CLOUD",
    "cloud_shadow": "QL_QUALITY_CLOUDSHADOW",
    "haze": "QL_QUALITY_HAZE",
    "cirrus": "QL_QUALITY_CIRRUS",
    "snow": "QL_QUALITY_SNOW",
    "classes": "QL_QUALITY_CLASSES",
    "testflags": "QL_QUALITY_TESTFLAGS",
}
_KIND_TO_NAME = {kind: name for name, kind in QUALITY_KINDS.items()}
_FILE = re.compile(r"-(SPECTRAL_IMAGE|METADATA|QL_QUALITY_[A-Z]+?)(?:_COG)?\.(?:TIFF?|XML)$", re.IGNORECASE)


def file_role(name: str) -> str | None:
    """'spectral', 'metadata', a quality mask name, or None for any other file."""
    match = _FILE.search(posixpath.basename(name))
    if not match:
        return None
    kind = match.group(1).upper()
    if kind == "SPECTRAL_IMAGE":
        return "spectral"
    if kind == "METADATA":
        return "metadata"
    return _KIND_TO_NAME.get(kind)


@dataclass(frozen=True)
class EnmapProduct:
    """Where the parts of one product live: ``spectral``/``quality`` as GDAL paths, ``metadata`` as
    an fsspec URL; ``url`` is what the user passed (used in every error message)."""

    url: str
    spectral: str
    metadata: str | None = None
    quality: dict[str, str] = field(default_factory=dict)


def locate_product(url: str) -> EnmapProduct:
    """Find the files of a product given as folder, .zip, or GeoTIFF (a DLR SPECTRAL_IMAGE finds
    its sibling METADATA.XML and masks; any other GeoTIFF stands alone)."""
    lower = url.lower().rstrip("/")
    if lower.endswith(".zip"):
        members = paths.list_zip_members(url)
        return _assemble(
            url,
            {m: paths.zip_member_gdal_path(url, m) for m in members},
            {m: paths.zip_member_url(url, m) for m in members},
        )
    if lower.endswith((".tif", ".tiff")):
        if file_role(url) != "spectral":
            return EnmapProduct(url=url, spectral=paths.gdal_path(url))
        files = _siblings_of(url)
        return _assemble(url, {f: paths.gdal_path(f) for f in files}, {f: f for f in files})
    files = paths.list_files(url)
    return _assemble(url, {f: paths.gdal_path(f) for f in files}, {f: f for f in files})


def _siblings_of(url: str) -> list[str]:
    """The files of the product a DLR SPECTRAL_IMAGE belongs to: listed where the store lists
    folders, else probed by name (plain HTTP servers, e.g. DLR's download service, do not list)."""
    prefix = _product_prefix(url)
    try:
        listed = paths.siblings(url)
    except (OSError, NotImplementedError, ValueError):
        listed = []
    if listed:
        return [f for f in listed if _product_prefix(f) == prefix]
    stem = url[: url.rfind("/") + 1] + prefix
    candidates = [f"{stem}-METADATA.XML"] + [
        f"{stem}-{kind}{cog}.TIF" for kind in QUALITY_KINDS.values() for cog in ("_COG", "")
    ]
    return [url, *(c for c in candidates if paths.exists(c))]


def _product_prefix(name: str) -> str:
    return _FILE.split(posixpath.basename(name))[0]


def _assemble(url: str, gdal: dict[str, str], fsspec_urls: dict[str, str]) -> EnmapProduct:
    roles: dict[str, list[str]] = {}
    for name in gdal:
        role = file_role(name)
        if role:
            roles.setdefault(role, []).append(name)
    spectral = roles.get("spectral", [])
    if len(spectral) != 1:
        found = "no" if not spectral else f"{len(spectral)}"
        raise InputDataError(
            url, f"{found} *-SPECTRAL_IMAGE.TIF files found; an EnMAP L2A product holds exactly one"
        )
    metadata = roles.get("metadata", [])
    return EnmapProduct(
        url=url,
        spectral=gdal[spectral[0]],
        metadata=fsspec_urls[metadata[0]] if metadata else None,
        quality={role: gdal[names[0]] for role, names in roles.items() if role in QUALITY_KINDS},
    )
