"""The real spectra the demo world is made of, brought onto the EnMAP band table.

Soils are ICRAF-ISRIC measurements (earthlib), salts/vegetation/water are USGS splib07 records,
lab MIR spectra are YAMSYS and OSSL/KSSL soils; see ``deepsalt/data/SOURCES.md``. Resampling
uses :func:`deepsalt.spectra.resample_to_bands` (Gaussian SRFs); bands that the source library
does not cover (earthlib dropped its water-vapour bands) are filled by linear interpolation along
wavelength, and those bands are noise in L2A products anyway.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from deepsalt.spectra import BandTable, resample_to_bands
from deepsalt.synth.hapke import to_albedo

DATA = Path(str(resources.files("deepsalt") / "data"))
BAND_TABLE_XML = DATA / "enmap_l2a_band_table.xml"


@dataclass(frozen=True)
class SurfaceLibrary:
    """Endmember spectra on one band table, float32 reflectance [n, n_bands]."""

    bands: BandTable
    soils: np.ndarray  # ordered by increasing clay index
    salts: np.ndarray
    salt_names: tuple[str, ...]
    green: np.ndarray
    green_names: tuple[str, ...]
    npv: np.ndarray
    water: np.ndarray

    @functools.cached_property
    def soils_albedo(self) -> np.ndarray:
        """Single-scattering albedo of the soils, for intimate mixing."""
        return to_albedo(self.soils)

    @functools.cached_property
    def salts_albedo(self) -> np.ndarray:
        return to_albedo(self.salts)


@dataclass(frozen=True)
class MirLibrary:
    """Base soil MIR absorbance spectra on the KSSL grid, ordered by increasing clay index."""

    wavenumber: np.ndarray
    absorbance: np.ndarray
    names: tuple[str, ...]


@functools.cache
def enmap_bands() -> BandTable:
    """The band table of the real DLR L2A METADATA.XML shipped with the package."""
    return BandTable.from_metadata_xml(str(BAND_TABLE_XML))


def _on_bands(values: np.ndarray, wavelength: np.ndarray, bands: BandTable) -> np.ndarray:
    out = resample_to_bands(values, wavelength, bands)
    for row in out:
        missing = ~np.isfinite(row)
        if missing.any():
            row[missing] = np.interp(bands.wavelength[missing], bands.wavelength[~missing], row[~missing])
    return out.astype(np.float32)


def clay_index(reflectance: np.ndarray, wavelength: np.ndarray) -> np.ndarray:
    """Depth of the Al-OH absorption near 2200 nm below its 2120/2260 nm continuum (clay minerals)."""
    at = [int(np.argmin(np.abs(wavelength - w))) for w in (2120.0, 2205.0, 2260.0)]
    continuum = 0.5 * (reflectance[:, at[0]] + reflectance[:, at[2]])
    return 1.0 - reflectance[:, at[1]] / continuum


@functools.cache
def surface_library(soil_pool: str) -> SurfaceLibrary:
    """Soils of ``soil_pool`` plus the USGS endmembers, resampled onto the EnMAP bands."""
    bands = enmap_bands()
    with np.load(DATA / "icraf_soils_vnir.npz") as soils_npz, np.load(DATA / "usgs_endmembers.npz") as usgs:
        soils = _on_bands(soils_npz[soil_pool], soils_npz["wavelength"], bands)
        usgs_wl = usgs["wavelength"]
        groups = {g: _on_bands(usgs[g], usgs_wl, bands) for g in ("salt", "green", "npv", "water")}
        salt_names = tuple(str(n) for n in usgs["salt_names"])
        green_names = tuple(str(n) for n in usgs["green_names"])
    soils = soils[np.argsort(clay_index(soils, bands.wavelength), kind="stable")]
    return SurfaceLibrary(
        bands=bands,
        soils=soils,
        salts=groups["salt"],
        salt_names=salt_names,
        green=groups["green"],
        green_names=green_names,
        npv=groups["npv"],
        water=groups["water"],
    )


@functools.cache
def mir_library(pool: tuple[str, ...]) -> MirLibrary:
    """Base MIR spectra from the given sources, ordered by the kaolinite OH band (a clay index)."""
    with np.load(DATA / "soil_mir_kssl.npz") as npz:
        keep = np.isin(npz["source"], pool)
        if not keep.any():
            raise ValueError(f"no MIR spectra from sources {pool}; known: {sorted(set(npz['source']))}")
        wavenumber = npz["wavenumber"]
        absorbance = npz["absorbance"][keep]
        names = npz["names"][keep]
    oh = int(np.argmin(np.abs(wavenumber - 3620.0)))
    base = int(np.argmin(np.abs(wavenumber - 3800.0)))
    order = np.argsort(absorbance[:, oh] - absorbance[:, base], kind="stable")
    return MirLibrary(wavenumber=wavenumber, absorbance=absorbance[order], names=tuple(names[order]))
