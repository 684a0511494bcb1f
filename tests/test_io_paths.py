"""URL → GDAL path mapping and DLR file-name roles."""

from __future__ import annotations

import pytest

from deepsalt.errors import InputDataError
from deepsalt.io.layout import file_role
from deepsalt.io.paths import gdal_path, zip_member_gdal_path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/data/x.tif", "/data/x.tif"),
        ("file:///data/x.tif", "/data/x.tif"),
        ("s3://bucket/a/x.tif", "/vsis3/bucket/a/x.tif"),
        ("gs://bucket/x.tif", "/vsigs/bucket/x.tif"),
        ("https://host/a/x.tif", "/vsicurl/https://host/a/x.tif"),
    ],
)
def test_gdal_path(url: str, expected: str):
    assert gdal_path(url) == expected


def test_zip_member_on_s3():
    assert (
        zip_member_gdal_path("s3://b/p.zip", "P/P-SPECTRAL_IMAGE.TIF")
        == "/vsizip//vsis3/b/p.zip/P/P-SPECTRAL_IMAGE.TIF"
    )


def test_memory_urls_are_refused_for_rasters():
    with pytest.raises(
        InputDataError, match=r"memory://scene\.tif: rasters cannot be read from 'memory://' URLs"
    ):
        gdal_path("memory://scene.tif")


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("ID-SPECTRAL_IMAGE.TIF", "spectral"),
        ("ID-SPECTRAL_IMAGE_COG.TIF", "spectral"),
        ("https://h/ID-METADATA.XML", "metadata"),
        ("ID-QL_QUALITY_CLOUD.TIF", "cloud"),
        ("ID-QL_QUALITY_CLOUD_COG.TIF", "cloud"),
        ("ID-QL_QUALITY_CLOUDSHADOW_COG.TIF", "cloud_shadow"),
        ("ID-QL_QUALITY_CLASSES.TIF", "classes"),
        ("ID-QL_VNIR_COG.TIF", None),
        ("ID-QL_PIXELMASK_COG.TIF", None),
        ("enmap_potsdam_tile_128_0.tif", None),
    ],
)
def test_dlr_file_roles(name: str, role: str | None):
    assert file_role(name) == role
