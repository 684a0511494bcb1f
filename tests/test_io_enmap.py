"""deepsalt.io.open_enmap / open_enmap_quality on the real Potsdam tile, DLR-layout products built
from its pixels (folder, zip, S3), and one test per kind of bad input."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import s3fs
from rasterio.crs import CRS

from deepsalt.errors import InputDataError
from deepsalt.io import open_enmap, open_enmap_quality
from deepsalt.io.enmap import StoredScaling
from deepsalt.spectra import ENMAP_NODATA, BandTable
from tests.support.enmap_fixtures import METADATA_XML, TILE

PRODUCT_ID = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_001_V010302_20230628T165614Z"

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def tile_pixels() -> tuple[np.ndarray, dict]:
    with rasterio.open(TILE) as ds:
        return ds.read(), ds.profile


def metadata_xml(table: BandTable) -> str:
    """A METADATA.XML with DLR's bandCharacterisation structure for ``table``."""
    bands = "".join(
        f'<bandID number="{i + 1}"><wavelengthCenterOfBand>{w}</wavelengthCenterOfBand>'
        f"<FWHMOfBand>{f}</FWHMOfBand><GainOfBand>0.0001</GainOfBand><OffsetOfBand>0</OffsetOfBand></bandID>"
        for i, (w, f) in enumerate(zip(table.wavelength, table.fwhm, strict=True))
    )
    return f"<level_X><specific><bandCharacterisation>{bands}</bandCharacterisation></specific></level_X>"


def write_product(folder: Path, metadata: str | None = "match", wavelength_shift: float = 0.5) -> Path:
    """A DLR-layout product from the real tile: int16 SPECTRAL_IMAGE without band tags, a
    METADATA.XML (band centres shifted so a test can tell where they came from), a cloud mask
    (left half) and quality classes (top row water)."""
    product = folder / PRODUCT_ID
    product.mkdir(parents=True)
    stored, profile = tile_pixels()
    profile.update(dtype="int16", tiled=True, blockxsize=16, blockysize=16, compress="deflate")
    with rasterio.open(product / f"{PRODUCT_ID}-SPECTRAL_IMAGE.TIF", "w", **profile) as ds:
        ds.write(stored.astype(np.int16))
    if metadata == "match":
        table = BandTable.from_band_tags(str(TILE))
        shifted = BandTable(table.wavelength + wavelength_shift, table.fwhm, table.good)
        (product / f"{PRODUCT_ID}-METADATA.XML").write_text(metadata_xml(shifted))
    elif metadata == "real":  # the authentic DLR file: 218 bands
        (product / f"{PRODUCT_ID}-METADATA.XML").write_bytes(gzip.decompress(METADATA_XML.read_bytes()))
    mask_profile = {**profile, "count": 1, "dtype": "uint8", "nodata": None}
    cloud = np.zeros((32, 32), np.uint8)
    cloud[:, :16] = 1
    classes = np.ones((32, 32), np.uint8)
    classes[0, :] = 2
    for kind, values in (("QL_QUALITY_CLOUD", cloud), ("QL_QUALITY_CLASSES", classes)):
        with rasterio.open(product / f"{PRODUCT_ID}-{kind}.TIF", "w", **mask_profile) as ds:
            ds.write(values, 1)
    return product


def zip_folder(product: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(product.iterdir()):
            zf.write(path, f"{product.name}/{path.name}")  # DLR zips hold the product folder
    return target


# --- the real tile -------------------------------------------------------------------------------


def test_potsdam_tile_opens_lazily_with_band_table_and_reflectance():
    scene = open_enmap(str(TILE))
    assert scene.dims == ("band", "y", "x") and scene.shape == (224, 32, 32)
    assert isinstance(scene.data, da.Array)  # nothing read yet
    assert scene.dtype == np.float32
    assert float(scene.wavelength[0]) == pytest.approx(418.24)
    assert float(scene.fwhm[0]) == pytest.approx(6.99561)
    assert int((~scene.good_band).sum()) == 6
    assert scene.rio.crs == CRS.from_epsg(32633)
    assert scene.rio.transform() == rasterio.Affine(30.0, 0.0, 366015.0, 0.0, -30.0, 5809965.0)
    assert scene.rio.bounds() == (366015.0, 5809005.0, 366975.0, 5809965.0)
    values = scene.values
    assert values[0, 0, 0] == pytest.approx(0.0318)  # stored 318.0
    assert values[99, 5, 7] == pytest.approx(tile_pixels()[0][99, 5, 7] / 10000, rel=1e-6)
    assert np.isnan(values[~scene.good_band.values]).all()  # bad bands hold nodata
    good = values[scene.good_band.values]
    assert np.isfinite(good).all() and good.min() >= 0 and good.max() <= 1


def test_window_read_matches_file():
    scene = open_enmap(str(TILE), chunks={"band": -1, "y": 8, "x": 8})
    assert scene.data.chunksize == (224, 8, 8)
    window = scene.isel(y=slice(8, 16), x=slice(20, 24)).values
    stored = tile_pixels()[0][:, 8:16, 20:24]
    np.testing.assert_allclose(window, np.where(stored == ENMAP_NODATA, np.nan, stored / 10000), rtol=1e-6)


def test_quality_of_single_geotiff_is_all_clear():
    quality = open_enmap_quality(str(TILE))
    assert set(quality.data_vars) == {
        "cloud",
        "cloud_shadow",
        "haze",
        "cirrus",
        "snow",
        "water",
        "background",
    }
    assert quality.cloud.shape == (32, 32) and quality.cloud.dtype == bool
    assert not any(bool(quality[name].any()) for name in quality.data_vars)
    assert quality.rio.crs == CRS.from_epsg(32633)


# --- DLR layout: folder, zip, sibling lookup, S3 ------------------------------------------------


def check_dlr_product(url: str) -> None:
    scene = open_enmap(url)
    # band centres come from METADATA.XML (shifted by 0.5 nm), not from anywhere else
    assert float(scene.wavelength[0]) == pytest.approx(418.74)
    stored = tile_pixels()[0]
    np.testing.assert_allclose(
        scene.values, np.where(stored == ENMAP_NODATA, np.nan, stored.astype(np.int16) * 1e-4), rtol=1e-6
    )
    quality = open_enmap_quality(url)
    assert quality.cloud.values[:, :16].all() and not quality.cloud.values[:, 16:].any()
    assert quality.water.values[0].all() and not quality.water.values[1:].any()
    assert not quality.haze.values.any() and not quality.background.values.any()


def test_dlr_folder(tmp_path: Path):
    check_dlr_product(str(write_product(tmp_path)))


def test_dlr_zip(tmp_path: Path):
    product = write_product(tmp_path / "unpacked")
    check_dlr_product(str(zip_folder(product, tmp_path / f"{PRODUCT_ID}.ZIP")))


def test_dlr_spectral_image_finds_its_siblings(tmp_path: Path):
    product = write_product(tmp_path)
    check_dlr_product(str(product / f"{PRODUCT_ID}-SPECTRAL_IMAGE.TIF"))


def test_s3_folder_zip_and_geotiff(tmp_path: Path, s3):
    product = write_product(tmp_path / "local")
    fs = s3.filesystem()
    fs.put(str(product), f"{s3.bucket}/scenes/{PRODUCT_ID}", recursive=True)
    fs.put(str(zip_folder(product, tmp_path / "p.zip")), f"{s3.bucket}/zips/p.zip")
    fs.put(str(TILE), f"{s3.bucket}/tiles/tile.tif")
    check_dlr_product(s3.url(f"scenes/{PRODUCT_ID}"))
    check_dlr_product(s3.url("zips/p.zip"))
    scene = open_enmap(s3.url("tiles/tile.tif"))
    assert float(scene.wavelength[0]) == pytest.approx(418.24)
    assert float(scene[0, 0, 0]) == pytest.approx(0.0318)


def test_http_spectral_image_finds_siblings_by_name(tmp_path: Path, s3):
    """Plain HTTP (here: the S3 server's path-style URLs) cannot list a folder; the METADATA.XML
    and masks are found by their DLR names instead."""
    product = write_product(tmp_path / "local")
    public = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint}, s3_additional_kwargs={"ACL": "public-read"}
    )
    public.put(str(product), f"{s3.bucket}/scenes/{PRODUCT_ID}", recursive=True)
    check_dlr_product(f"{s3.endpoint}/{s3.bucket}/scenes/{PRODUCT_ID}/{PRODUCT_ID}-SPECTRAL_IMAGE.TIF")


# --- bad inputs: each error names the file and the problem ---------------------------------------


def test_truncated_geotiff(tmp_path: Path):
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(TILE.read_bytes()[:-1000])  # loses part of the block stored last
    with pytest.raises(
        InputDataError, match=r"truncated\.tif: the image is truncated or corrupt: .*expected 4096"
    ):
        open_enmap(str(bad))


def test_corrupt_geotiff(tmp_path: Path):
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    with pytest.raises(InputDataError, match=r"corrupt\.tif: cannot read raster"):
        open_enmap(str(bad))


def test_no_metadata_and_no_wavelength_tags(tmp_path: Path):
    product = write_product(tmp_path, metadata=None)
    with pytest.raises(
        InputDataError,
        match=r"SPECTRAL_IMAGE\.TIF\]: no wavelength/fwhm tags on band\(s\) 1-224 and no METADATA\.XML",
    ):
        open_enmap(str(product))


def test_band_count_disagrees_with_band_table(tmp_path: Path):
    product = write_product(tmp_path, metadata="real")
    with pytest.raises(
        InputDataError, match=r"the image has 224 bands but the band table from .*-METADATA\.XML lists 218"
    ):
        open_enmap(str(product))


def write_tile_copy(path: Path, **changes) -> Path:
    stored, profile = tile_pixels()
    with rasterio.open(TILE) as src:
        tags = [src.tags(b) for b in range(1, src.count + 1)]
    profile.update(changes)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(stored)
        for band, band_tags in enumerate(tags, start=1):
            ds.update_tags(band, **band_tags)
    return path


def test_missing_crs(tmp_path: Path):
    path = write_tile_copy(tmp_path / "nocrs.tif", crs=None)
    with pytest.raises(InputDataError, match=r"nocrs\.tif: the image has no CRS"):
        open_enmap(str(path))


def test_unknown_crs(tmp_path: Path):
    path = write_tile_copy(
        tmp_path / "localcrs.tif", crs=CRS.from_wkt('LOCAL_CS["site grid",UNIT["metre",1]]')
    )
    with pytest.raises(
        InputDataError, match=r"localcrs\.tif: the image's CRS is not a known geographic or projected CRS"
    ):
        open_enmap(str(path))


def test_all_nodata_scene(tmp_path: Path):
    path = tmp_path / "empty.tif"
    write_tile_copy(path)
    with rasterio.open(path, "r+") as ds:
        ds.write(np.full((224, 32, 32), ENMAP_NODATA, np.float32))
    with pytest.raises(InputDataError, match=r"empty\.tif: every pixel of band 1 \(418\.2 nm\) is nodata"):
        open_enmap(str(path))


def test_scene_with_one_valid_pixel_opens(tmp_path: Path):
    # 16 px blocks: the centre block holds only nodata, the one valid pixel is in a corner
    path = write_tile_copy(tmp_path / "sparse.tif", tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "r+") as ds:
        band = np.full((32, 32), ENMAP_NODATA, np.float32)
        band[0, 0] = 1234.0
        ds.write(np.broadcast_to(band, (224, 32, 32)))
    scene = open_enmap(str(path))
    assert float(scene[0, 0, 0]) == pytest.approx(0.1234)
    assert int(scene[0].notnull().sum()) == 1


def test_folder_without_spectral_image(tmp_path: Path):
    folder = tmp_path / "not_a_product"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(InputDataError, match=r"not_a_product: no \*-SPECTRAL_IMAGE\.TIF files found"):
        open_enmap(str(folder))


def test_corrupt_zip(tmp_path: Path):
    bad = tmp_path / "product.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputDataError, match=r"product\.zip: not a readable zip archive"):
        open_enmap(str(bad))


def test_missing_path(tmp_path: Path):
    with pytest.raises(InputDataError, match=r"nowhere: not found"):
        open_enmap(str(tmp_path / "nowhere"))


def test_quality_layer_on_another_grid(tmp_path: Path):
    product = write_product(tmp_path)
    with rasterio.open(
        product / f"{PRODUCT_ID}-QL_QUALITY_CLOUD.TIF", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
        crs="EPSG:32633", transform=rasterio.Affine(120.0, 0, 366015.0, 0, -120.0, 5809965.0),
    ) as ds:  # fmt: skip
        ds.write(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(
        InputDataError, match=r"quality layer 'cloud' is 8x8 px but the spectral image is 32x32"
    ):
        open_enmap_quality(str(product))


def test_the_scaling_of_chosen_bands_scales_each_by_its_own_gain_and_offset():
    scaling = StoredScaling("scene.tif", -1.0, np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.1, 0.2, 0.3]))
    chosen = scaling.select(np.array([3, 1]))
    stored = np.array([[0.1, 0.2], [-1.0, 0.3]], dtype=np.float32)  # (pixels, chosen bands)
    reflectance = chosen.reflectance(stored.T[:, :, None])[:, :, 0].T
    np.testing.assert_allclose(reflectance, [[0.7, 0.5], [np.nan, 0.7]], rtol=1e-6)  # nodata → NaN
