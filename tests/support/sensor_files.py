"""Scene files of the other imaging spectrometers, written in the layout their agencies ship.

Each writer takes a reflectance cube on a band table and writes it the way the real products are
laid out (names, dimension orders, attributes, scaling), so the readers are tested against that
layout and not against a convenience format:

- AVIRIS-NG / AVIRIS-3 (JPL): ENVI ``<name>_rfl`` binary, band-interleaved-by-line float32, with a
  ``<name>_rfl.hdr`` text header (``map info`` UTM, ``wavelength``/``fwhm`` in nm, ``bbl``,
  ``data ignore value = -9999``);
- EMIT L2A RFL (NASA EMIT SDS): NetCDF-4, ``reflectance`` (downtrack, crosstrack, bands) with
  ``_FillValue`` -9999, groups ``sensor_band_parameters`` and ``location`` (lat, lon, elev,
  ``glt_x``/``glt_y`` 1-based, 0 = none), root ``geotransform``/``spatial_ref``;
- PRISMA L2D (ASI): HDF5-EOS, ``HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/{VNIR,SWIR}_Cube`` uint16
  (lines, bands, samples) in decreasing wavelength, root ``List_Cw_*``/``List_Fwhm_*``/
  ``List_Cw_*_Flags``, ``L2Scale*Min/Max``, ``Epsg_Code``, ``Product_*corner_*``, and
  ``Geolocation Fields/Latitude``/``Longitude``.

Band tables follow the instruments (AVIRIS-NG 425 bands at 5 nm, EMIT 285 at 7.4 nm, PRISMA 66
VNIR + 173 SWIR slots); values are made, not copied from a product.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer

from deepsalt.spectra import BandTable, resample_to_bands, scale_reflectance
from tests.support.enmap_fixtures import TILE

FILL = -9999.0


@dataclass(frozen=True)
class Ground:
    """Reflectance (rows, cols, n) on a UTM grid and the spectral axis it is sampled on."""

    reflectance: np.ndarray
    wavelength: np.ndarray
    crs: CRS
    transform: Affine

    @property
    def shape(self) -> tuple[int, int]:
        return self.reflectance.shape[:2]

    def on(self, table: BandTable) -> np.ndarray:
        """(rows, cols, bands) reflectance as a sensor with ``table`` sees it; a pixel without data
        stays NaN. The ground spectrum is first made continuous over 350-2550 nm (linear across the
        gaps, constant past the ends), so every band of a wider sensor sees ground."""
        order = np.argsort(self.wavelength)
        dense_axis = np.arange(350.0, 2551.0, 1.0)
        flat = self.reflectance.reshape(-1, self.wavelength.size)[:, order]
        dense = np.full((len(flat), dense_axis.size), np.nan)
        for i, spectrum in enumerate(flat):
            if np.isfinite(spectrum).all():
                dense[i] = np.interp(dense_axis, self.wavelength[order], spectrum)
        out = resample_to_bands(dense, dense_axis, table)
        return out.reshape(*self.shape, table.n_bands).astype(np.float32)

    def centres_lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = np.mgrid[0 : self.shape[0], 0 : self.shape[1]]
        x, y = self.transform @ (cols + 0.5, rows + 0.5)
        return Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True).transform(x, y)


def aviris_ng_bands() -> BandTable:
    wavelength = np.linspace(376.86, 2500.5, 425)
    fwhm = np.full(425, 5.8)
    bad = ((wavelength > 1313) & (wavelength < 1453)) | ((wavelength > 1782) & (wavelength < 1962))
    return BandTable(wavelength, fwhm, ~bad)


def emit_bands() -> BandTable:
    wavelength = np.linspace(381.0, 2493.0, 285)
    fwhm = np.full(285, 8.5)
    bad = ((wavelength > 1320) & (wavelength < 1440)) | ((wavelength > 1770) & (wavelength < 1962))
    return BandTable(wavelength, fwhm, ~bad)


def prisma_lists() -> dict[str, np.ndarray]:
    """List_Cw/Fwhm/Flags as PRISMA stores them: decreasing wavelength, 0 for slots not in use."""
    vnir = np.linspace(1010.0, 402.0, 66)
    swir = np.linspace(2497.0, 920.0, 173)
    vnir_flags = np.ones(66, np.int8)
    vnir_flags[-3:] = 0  # PRISMA's three shortest VNIR slots carry no band
    swir_flags = np.ones(173, np.int8)
    swir_flags[:2] = 0
    swir_flags[-2:] = 0
    return {
        "List_Cw_Vnir": np.where(vnir_flags > 0, vnir, 0.0).astype(np.float32),
        "List_Fwhm_Vnir": np.where(vnir_flags > 0, 12.0, 0.0).astype(np.float32),
        "List_Cw_Vnir_Flags": vnir_flags,
        "List_Cw_Swir": np.where(swir_flags > 0, swir, 0.0).astype(np.float32),
        "List_Fwhm_Swir": np.where(swir_flags > 0, 11.0, 0.0).astype(np.float32),
        "List_Cw_Swir_Flags": swir_flags,
    }


def write_envi(folder: Path, name: str, ground: Ground, bands: BandTable | None = None) -> Path:
    """``<name>_rfl`` + ``<name>_rfl.hdr`` as AVIRIS-NG L2 ships reflectance; returns the binary."""
    bands = bands or aviris_ng_bands()
    cube = ground.on(bands)  # (lines, samples, bands)
    cube = np.where(np.isfinite(cube), cube, FILL).astype("<f4")
    lines, samples, n = cube.shape
    binary = folder / f"{name}_rfl"
    np.ascontiguousarray(cube.transpose(0, 2, 1)).tofile(binary)  # BIL: line, band, sample
    a, _, x0, _, e, y0 = tuple(ground.transform)[:6]
    zone = ground.crs.to_epsg() - 32600
    numbers = lambda values, fmt: "{ " + ", ".join(fmt.format(v) for v in values) + " }"  # noqa: E731
    header = [
        "ENVI",
        "description = {",
        "  Atmospherically corrected surface reflectance, AVIRIS-NG}",
        f"samples = {samples}",
        f"lines = {lines}",
        f"bands = {n}",
        "header offset = 0",
        "file type = ENVI Standard",
        "data type = 4",
        "interleave = bil",
        "byte order = 0",
        f"map info = {{ UTM , 1.000 , 1.000 , {x0:.3f} , {y0:.3f} , {a:.10e} , {-e:.10e} , "
        f"{zone} , North , WGS-84 , units=Meters , rotation=0.00000000 }}",
        "wavelength units = Nanometers",
        "data ignore value = -9999",
        f"wavelength = {numbers(bands.wavelength, '{:.6f}')}",
        f"fwhm = {numbers(bands.fwhm, '{:.6f}')}",
        f"bbl = {numbers(bands.good.astype(int), '{:d}')}",
    ]
    binary.with_name(f"{name}_rfl.hdr").write_text("\n".join(header) + "\n")
    return binary


def write_emit(path: Path, ground: Ground, cell_deg: float = 0.0002) -> Path:
    """An EMIT L2A RFL NetCDF whose swath is the ground turned by 90 degrees, with its GLT."""
    bands = emit_bands()
    cube = ground.on(bands)
    cube = np.where(np.isfinite(cube), cube, FILL).astype(np.float32)
    rows, cols = ground.shape
    swath = np.rot90(cube, k=1, axes=(0, 1))  # downtrack = ground column, crosstrack = flipped row
    # swath[l, s] = cube[s, cols - 1 - l]: ground (r, c) sits at line cols-1-c, sample r
    lon, lat = ground.centres_lonlat()
    west, east = lon.min() - cell_deg, lon.max() + cell_deg
    south, north = lat.min() - cell_deg, lat.max() + cell_deg
    ny, nx = int(np.ceil((north - south) / cell_deg)), int(np.ceil((east - west) / cell_deg))
    gt = (west, cell_deg, 0.0, north, 0.0, -cell_deg)
    oy, ox = np.mgrid[0:ny, 0:nx]
    cell_lon, cell_lat = west + (ox + 0.5) * cell_deg, north - (oy + 0.5) * cell_deg
    x, y = Transformer.from_crs("EPSG:4326", ground.crs, always_xy=True).transform(cell_lon, cell_lat)
    col, row = ~ground.transform @ (x, y)
    row, col = np.floor(row).astype(int), np.floor(col).astype(int)
    inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
    glt_y = np.where(inside, cols - 1 - col + 1, 0).astype(np.int32)  # 1-based downtrack line
    glt_x = np.where(inside, row + 1, 0).astype(np.int32)  # 1-based crosstrack sample
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {
            "downtrack": swath.shape[0],
            "crosstrack": swath.shape[1],
            "bands": len(bands.wavelength),
        }
        f.dimensions["ortho_y"], f.dimensions["ortho_x"] = ny, nx
        f.attrs.update(
            {
                "title": "EMIT L2A Estimated Surface Reflectance 60 m V001",
                "time_coverage_start": "2023-07-24T10:45:26+0000",
                "time_coverage_end": "2023-07-24T10:45:38+0000",
                "geotransform": np.array(gt),
                "spatial_ref": CRS.from_epsg(4326).to_wkt("WKT1_GDAL"),
            }
        )
        rfl = f.create_variable(
            "reflectance", ("downtrack", "crosstrack", "bands"), "f4", fillvalue=np.float32(FILL)
        )
        rfl[...] = swath
        rfl.attrs.update({"long_name": "Surface Reflectance", "units": "unitless"})
        sbp = f.create_group("sensor_band_parameters")
        sbp.create_variable("wavelengths", ("bands",), "f4", data=bands.wavelength.astype(np.float32))
        sbp["wavelengths"].attrs.update({"long_name": "Wavelength Centers", "units": "nm"})
        sbp.create_variable("fwhm", ("bands",), "f4", data=bands.fwhm.astype(np.float32))
        sbp.create_variable("good_wavelengths", ("bands",), "u1", data=bands.good.astype(np.uint8))
        loc = f.create_group("location")
        swath_lon, swath_lat = (np.rot90(v, k=1) for v in (lon, lat))
        loc.create_variable("lon", ("downtrack", "crosstrack"), "f8", data=swath_lon)
        loc.create_variable("lat", ("downtrack", "crosstrack"), "f8", data=swath_lat)
        loc.create_variable("elev", ("downtrack", "crosstrack"), "f8", data=np.full(swath_lon.shape, 35.0))
        loc.create_variable("glt_x", ("ortho_y", "ortho_x"), "i4", data=glt_x)
        loc.create_variable("glt_y", ("ortho_y", "ortho_x"), "i4", data=glt_y)
        for name, long_name in (("glt_x", "GLT Sample Lookup"), ("glt_y", "GLT Line Lookup")):
            loc[name].attrs.update({"long_name": long_name, "units": "pixel location"})
    return path


PRISMA_SCALE = {"Vnir": (0.0, 1.2), "Swir": (0.0, 1.0)}


def write_prisma(path: Path, ground: Ground) -> Path:
    """A PRISMA L2D he5 on the ground's UTM grid: DN = (reflectance - Min) / (Max - Min) x 65535."""
    lists = prisma_lists()
    rows, cols = ground.shape
    with h5py.File(path, "w") as f:
        for key, value in lists.items():
            f.attrs[key] = value
        for detector in ("Vnir", "Swir"):
            centre, width = lists[f"List_Cw_{detector}"], lists[f"List_Fwhm_{detector}"]
            used = centre > 0
            table = BandTable(centre[used], width[used], np.ones(used.sum(), bool))
            low, high = PRISMA_SCALE[detector]
            f.attrs[f"L2Scale{detector}Min"] = np.float32(low)
            f.attrs[f"L2Scale{detector}Max"] = np.float32(high)
            reflectance = ground.on(table)
            empty = ~np.isfinite(reflectance).all(axis=-1)
            dn = np.zeros((rows, cols, centre.size), np.uint16)
            scaled = np.clip((np.nan_to_num(reflectance) - low) / (high - low) * 65535.0, 1, 65535)
            dn[..., used] = np.round(scaled).astype(np.uint16)
            dn[empty] = 0
            f.create_dataset(
                f"HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/{detector.upper()}_Cube", data=dn.transpose(0, 2, 1)
            )
        a, _, x0, _, e, y0 = tuple(ground.transform)[:6]
        f.attrs["Epsg_Code"] = np.int32(ground.crs.to_epsg())
        f.attrs["Product_ULcorner_easting"] = np.float64(x0 + a / 2)
        f.attrs["Product_ULcorner_northing"] = np.float64(y0 + e / 2)
        f.attrs["Product_LRcorner_easting"] = np.float64(x0 + a * (cols - 0.5))
        f.attrs["Product_LRcorner_northing"] = np.float64(y0 + e * (rows - 0.5))
        f.attrs["Product_StartTime"] = np.bytes_("2023-07-24T10:30:00.000000")
        lon, lat = ground.centres_lonlat()
        f.create_dataset("HDFEOS/SWATHS/PRS_L2D_HCO/Geolocation Fields/Latitude", data=lat.astype(np.float32))
        f.create_dataset(
            "HDFEOS/SWATHS/PRS_L2D_HCO/Geolocation Fields/Longitude", data=lon.astype(np.float32)
        )
    return path


EMPTY = (slice(0, 2), slice(0, 3))
"""Ground pixels of :func:`potsdam_ground` without data in every file written from it."""


def potsdam_ground() -> Ground:
    """The real Potsdam tile's reflectance on its usable bands, with the :data:`EMPTY` pixels blank."""
    table = BandTable.from_band_tags(str(TILE))
    usable = np.flatnonzero(table.usable())
    with rasterio.open(TILE) as ds:
        stored = ds.read((usable + 1).tolist())
        crs, transform = ds.crs, ds.transform
    reflectance = np.moveaxis(scale_reflectance(stored), 0, -1).astype(np.float64)
    reflectance[EMPTY] = np.nan
    return Ground(reflectance, table.wavelength[usable], crs, transform)
