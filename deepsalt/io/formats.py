"""The scene formats DeepSalt reads, named once so that a scene's format can travel with it."""

from __future__ import annotations

from enum import StrEnum


class SceneFormat(StrEnum):
    """How a scene's reflectance is stored (the value is what configs and STAC items say)."""

    ENMAP_L2A = "enmap-l2a"  # DLR GeoTIFF/COG + METADATA.XML, or any GeoTIFF with wavelength tags
    ENVI = "envi"  # AVIRIS-NG / AVIRIS-3 reflectance: ENVI header (.hdr) + binary cube
    EMIT_L2A = "emit-l2a"  # NASA EMIT L2A reflectance NetCDF (swath + geometry lookup table)
    PRISMA_L2D = "prisma-l2d"  # ASI PRISMA L2D HDF5-EOS (geocoded VNIR and SWIR cubes)
