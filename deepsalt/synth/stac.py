"""STAC collection and items for the synthetic scenes, shaped like DLR's ``ENMAP_HSI_L2A`` items.

Asset keys, roles and the per-band ``eo:bands`` (centre wavelength and FWHM in nm, gain/offset)
follow the items DLR's catalogue serves, so the same search code finds real and demo scenes.
"""

from __future__ import annotations

from typing import Any

from deepsalt.spectra import ENMAP_NODATA, BandTable
from deepsalt.synth.metadata import corner_lonlat
from deepsalt.synth.scenes import SceneRaster

COLLECTION = "ENMAP_HSI_L2A"
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.0.0/schema.json",
]
_TIFF = "image/tiff; application=geotiff; profile=cloud-optimized"
_QUALITY_ROLES = {
    "quality_classes": ["quality"],
    "quality_cloud": ["quality", "cloud"],
    "quality_cloudshadow": ["quality", "cloud-shadow"],
    "quality_haze": ["quality", "haze"],
    "quality_cirrus": ["quality", "cirrus"],
    "quality_snow": ["quality", "snow"],
}
# DLR's key for the cloud-shadow asset has an underscore the file name does not.
_ASSET_KEYS = {"quality_cloudshadow": "quality_cloud_shadow"}


def _iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def scene_item(
    scene: SceneRaster, crs: str, transform, bands: BandTable, hrefs: dict[str, str]
) -> dict[str, Any]:
    """One STAC item; ``hrefs`` maps file roles (see ``metadata.scene_files``) to absolute URLs."""
    plan = scene.plan
    corners = corner_lonlat(crs, transform, plan.shape)
    ring = [
        list(corners[k]) for k in ("upper_left", "lower_left", "lower_right", "upper_right", "upper_left")
    ]
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    h, w = plan.shape
    left, top = transform.c, transform.f
    right, bottom = left + w * transform.a, top + h * transform.e
    epsg = int(crs.split(":")[1])
    proj = {
        "proj:epsg": epsg,
        "proj:shape": [h, w],
        "proj:transform": [
            transform.a,
            transform.b,
            transform.c,
            transform.d,
            transform.e,
            transform.f,
            0.0,
            0.0,
            1.0,
        ],
        "proj:bbox": [left, bottom, right, top],
    }
    eo_bands = [
        {
            "name": i + 1,
            "center_wavelength": float(bands.wavelength[i]),
            "full_width_half_max": float(bands.fwhm[i]),
            "enmap:gain_of_band": float(bands.gain[i]) if bands.gain is not None else 0.0001,
            "enmap:offset_of_band": float(bands.offset[i]) if bands.offset is not None else 0.0,
        }
        for i in range(bands.n_bands)
    ]
    assets: dict[str, Any] = {
        "metadata": {
            "href": hrefs["metadata"],
            "type": "application/xml",
            "title": "Metadata",
            "roles": ["metadata"],
        },
        "image": {
            "href": hrefs["spectral"],
            "type": _TIFF,
            "title": "Spectral Image",
            "eo:bands": eo_bands,
            "roles": ["data"],
            **proj,
        },
    }
    for role, roles in _QUALITY_ROLES.items():
        assets[_ASSET_KEYS.get(role, role)] = {
            "href": hrefs[role],
            "type": _TIFF,
            "title": role.replace("_", " ").capitalize(),
            "roles": roles,
            **proj,
        }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": _EXTENSIONS,
        "id": plan.id,
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {
            "datetime": _iso(plan.acquired),
            "start_datetime": _iso(plan.acquired),
            "end_datetime": _iso(plan.acquired),
            "platform": "enmap",
            "eo:instrument": "HSI",
            "processing:level": "L2A",
            "eo:cloud_cover": round(scene.cover["cloud"], 2),
            "eo:snow_cover": 0,
            "view:sun_azimuth": round(plan.sun_azimuth, 6),
            "view:sun_elevation": round(plan.sun_elevation, 6),
            "proj:epsg": epsg,
            "enmap:haze_cover": round(scene.cover["haze"], 2),
            "enmap:cloud_shadow": round(scene.cover["cloud_shadow"], 2),
            "enmap:water_cover": round(scene.cover["water"], 2),
            "enmap:nodata": str(ENMAP_NODATA),
            "enmap:processingDate": _iso(plan.processed),
        },
        "links": [],
        "assets": assets,
    }


def collection(items: list[dict[str, Any]], region: str) -> dict[str, Any]:
    """The ``ENMAP_HSI_L2A`` collection holding ``items`` (extent from the items)."""
    bboxes = [item["bbox"] for item in items]
    times = sorted(item["properties"]["datetime"] for item in items)
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "title": "EnMAP HSI L2A (DeepSalt synthetic demo region)",
        "description": f"Synthetic EnMAP L2A scenes of the DeepSalt demo region '{region}'.",
        "license": "Apache-2.0",
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        min(b[0] for b in bboxes),
                        min(b[1] for b in bboxes),
                        max(b[2] for b in bboxes),
                        max(b[3] for b in bboxes),
                    ]
                ]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "links": [],
    }
