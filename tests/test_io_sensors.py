"""Readers of the other imaging spectrometers on files written in the agencies' layouts.

The ground under every file is the real Potsdam tile (EnMAP L2A reflectance on its usable bands),
seen through each instrument's bands; so a reader is right when it gives back that ground, on the
right wavelengths, scale, nodata and place.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from deepsalt.errors import InputDataError
from deepsalt.io.emit import EmitCube, emit_layout
from deepsalt.io.envi import envi_layout
from deepsalt.io.formats import SceneFormat
from deepsalt.io.prisma import PrismaCube, prisma_layout
from deepsalt.io.scenes import describe_scene
from tests.support.sensor_files import (
    EMPTY,
    FILL,
    PRISMA_SCALE,
    Ground,
    aviris_ng_bands,
    emit_bands,
    potsdam_ground,
    prisma_lists,
    write_emit,
    write_envi,
    write_prisma,
)


@pytest.fixture(scope="module")
def ground() -> Ground:
    return potsdam_ground()


# --- AVIRIS-NG / AVIRIS-3 ENVI ----------------------------------------------------------------------


def test_envi_band_table_scale_nodata_and_place(ground: Ground, tmp_path: Path):
    binary = write_envi(tmp_path, "ang20230724t104526", ground)
    layout = envi_layout(str(binary))
    expected = aviris_ng_bands()
    np.testing.assert_allclose(layout.table.wavelength, expected.wavelength, atol=1e-6)
    np.testing.assert_allclose(layout.table.fwhm, 5.8)
    assert layout.table.good.tolist() == expected.good.tolist()  # bbl
    assert (
        np.all(layout.table.gain == 1.0) and layout.nodata == FILL
    )  # float32 reflectance, data ignore value
    scene = describe_scene(
        str(binary.with_name(binary.name + ".hdr")), SceneFormat.ENVI
    )  # the .hdr finds its binary
    assert scene.spectral_href == str(binary) and scene.epsg == 32633 and scene.format is SceneFormat.ENVI
    lon, lat = ground.centres_lonlat()
    assert scene.bbox[0] < lon.min() and scene.bbox[2] > lon.max()
    assert scene.bbox[1] < lat.min() and scene.bbox[3] > lat.max()
    with rasterio.open(binary) as ds:
        assert ds.transform == ground.transform
        values = ds.read(window=((5, 6), (7, 8)))[:, 0, 0]
        assert np.all(ds.read(1)[EMPTY] == FILL)
    np.testing.assert_allclose(values, ground.on(expected)[5, 7], atol=1e-6)


def test_envi_header_whose_band_count_disagrees_with_the_binary(ground: Ground, tmp_path: Path):
    binary = write_envi(tmp_path, "ang_short", ground)
    with open(binary, "r+b") as f:
        f.truncate(binary.stat().st_size - 4 * 32 * 32)  # one band fewer than the header says
    with pytest.raises(
        InputDataError, match=r"ang_short_rfl: the header lists 425 bands .* header and file disagree"
    ):
        envi_layout(str(binary))


def test_envi_in_micrometres_with_scale_factor(ground: Ground, tmp_path: Path):
    binary = write_envi(tmp_path, "av", ground)
    header = binary.with_name("av_rfl.hdr")
    text = header.read_text().replace("wavelength units = Nanometers", "wavelength units = Micrometers")
    wl = aviris_ng_bands().wavelength
    text = text.replace(
        text[text.index("wavelength = {") : text.index("}", text.index("wavelength = {")) + 1],
        "wavelength = { " + ", ".join(f"{w / 1000:.8f}" for w in wl) + " }",
    )
    header.write_text(text + "reflectance scale factor = 10000\n")
    layout = envi_layout(str(binary))
    np.testing.assert_allclose(layout.table.wavelength, wl, atol=1e-4)
    np.testing.assert_allclose(layout.table.gain, 1e-4)


# --- EMIT L2A ---------------------------------------------------------------------------------------


def test_emit_bands_fill_and_glt_orthorectification(ground: Ground, tmp_path: Path):
    path = write_emit(tmp_path / "EMIT_L2A_RFL_001_20230724T104526_2320507_004.nc", ground)
    layout = emit_layout(str(path))
    np.testing.assert_allclose(layout.table.wavelength, emit_bands().wavelength, atol=1e-3)
    assert layout.table.good.tolist() == emit_bands().good.tolist()
    assert np.all(layout.table.gain == 1.0) and layout.nodata == FILL
    expected = ground.on(emit_bands())
    with EmitCube(str(path)) as cube:
        assert cube.crs.to_epsg() == 4326 and cube.transform.a == pytest.approx(0.0002)
        ortho = cube.read(slice(0, cube.shape[0]), slice(0, cube.shape[1]))
        with h5py.File(path) as f:
            glt_x, glt_y = f["location/glt_x"][()], f["location/glt_y"][()]
    cols = ground.shape[1]
    inside = glt_x > 0
    ground_row, ground_col = glt_x[inside] - 1, cols - glt_y[inside]  # the swath is the ground turned
    np.testing.assert_allclose(
        ortho[:, inside].T, np.nan_to_num(expected[ground_row, ground_col], nan=FILL), atol=1e-6
    )
    assert np.all(ortho[:, ~inside] == FILL)
    scene = describe_scene(str(path), SceneFormat.EMIT_L2A)
    assert scene.epsg == 4326 and scene.datetime.isoformat().startswith("2023-07-24T10:45:26")


def test_emit_without_sensor_band_parameters_names_the_file(ground: Ground, tmp_path: Path):
    path = write_emit(tmp_path / "EMIT_L2A_RFL_broken.nc", ground)
    with h5py.File(path, "a") as f:
        del f["sensor_band_parameters"]
    with pytest.raises(
        InputDataError, match=r"EMIT_L2A_RFL_broken\.nc: has no 'sensor_band_parameters' group"
    ):
        emit_layout(str(path))


def test_not_a_netcdf_file_names_it(tmp_path: Path):
    path = tmp_path / "EMIT_L2A_RFL_text.nc"
    path.write_text("not HDF5")
    with pytest.raises(InputDataError, match=r"EMIT_L2A_RFL_text\.nc: not a readable HDF5/NetCDF-4 file"):
        emit_layout(str(path))


# --- PRISMA L2D -------------------------------------------------------------------------------------


def test_prisma_bands_scale_and_grid(ground: Ground, tmp_path: Path):
    path = write_prisma(tmp_path / "PRS_L2D_STD_20230724103000_20230724103004_0001.he5", ground)
    with h5py.File(path, "a") as f:
        f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube"][10, 5, 10] = (
            0  # one dark band, not an empty pixel
        )
    layout = prisma_layout(str(path))
    lists = prisma_lists()
    vnir = lists["List_Cw_Vnir"][lists["List_Cw_Vnir_Flags"] > 0]
    swir = lists["List_Cw_Swir"][lists["List_Cw_Swir_Flags"] > 0]
    np.testing.assert_allclose(layout.table.wavelength, np.concatenate([vnir, swir]), atol=1e-3)
    assert layout.table.n_bands == 63 + 169 and layout.nodata == -1
    low, high = PRISMA_SCALE["Vnir"]
    np.testing.assert_allclose(layout.table.gain[:63], (high - low) / 65535)
    with PrismaCube(str(path)) as cube:
        assert cube.crs.to_epsg() == 32633
        assert tuple(cube.transform)[:6] == pytest.approx(tuple(ground.transform)[:6])
        dn = cube.read(slice(0, 32), slice(0, 32))
    assert np.all(dn[(slice(None), *EMPTY)] == -1)  # DN 0 in every band: empty
    assert dn[5, 10, 10] == 0 and np.all(np.delete(dn[:, 10, 10], 5) >= 1)
    reflectance = np.moveaxis(
        dn * layout.table.gain[:, None, None] + layout.table.offset[:, None, None], 0, -1
    )
    expected = ground.on(layout.table)
    keep = np.isfinite(expected).all(axis=-1)
    keep[10, 10] = False
    np.testing.assert_allclose(reflectance[keep], expected[keep], atol=2e-5)
    scene = describe_scene(str(path), SceneFormat.PRISMA_L2D)
    assert scene.epsg == 32633 and scene.format is SceneFormat.PRISMA_L2D


def test_prisma_with_a_missing_cube_names_file_and_cube(ground: Ground, tmp_path: Path):
    path = write_prisma(tmp_path / "PRS_L2D_STD_nocube.he5", ground)
    with h5py.File(path, "a") as f:
        del f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/SWIR_Cube"]
    with pytest.raises(InputDataError, match=r"PRS_L2D_STD_nocube\.he5: has no '.*/Data Fields/SWIR_Cube'"):
        prisma_layout(str(path))


def test_prisma_whose_map_metadata_and_geolocation_disagree(ground: Ground, tmp_path: Path):
    path = write_prisma(tmp_path / "PRS_L2D_STD_wrongzone.he5", ground)
    with h5py.File(path, "a") as f:
        f.attrs["Epsg_Code"] = np.int32(32632)  # the neighbouring UTM zone
    with pytest.raises(
        InputDataError, match=r"wrongzone\.he5: the centre pixel's Latitude/Longitude lies \d+ m"
    ):
        prisma_layout(str(path))
