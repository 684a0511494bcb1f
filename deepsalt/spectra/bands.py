"""Band tables: the centre wavelength, width and quality flag of each band of a sensor.

A table is always read from the product at hand (DLR METADATA.XML, GeoTIFF band tags, or a STAC
item's ``eo:bands``), never hard-coded, because EnMAP's band centres shift between products and
processor versions (the Potsdam tiles start at 418.24 nm, a 2024 L2A product at 418.42 nm).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from deepsalt.errors import InputDataError
from deepsalt.spectra.masks import model_band_mask, water_vapour_mask

_MICROMETRE_UNITS = {"micrometers", "micrometer", "micrometres", "micrometre", "um", "µm", "microns"}
_NANOMETRE_UNITS = {"nanometers", "nanometer", "nanometres", "nanometre", "nm"}
# Band centres below this are in micrometres when no unit is given (no sensor measures at 20 nm).
_MICROMETRE_LIMIT = 20.0


@dataclass(frozen=True, eq=False)
class BandTable:
    """Per-band centre wavelength and FWHM (nm) and the ``bbl`` good-band flag.

    ``gain``/``offset`` (stored value x gain + offset = reflectance) are kept when the source
    states them (DLR metadata, STAC), so scaling follows the product instead of a constant.
    """

    wavelength: np.ndarray
    fwhm: np.ndarray
    good: np.ndarray
    gain: np.ndarray | None = field(default=None)
    offset: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        wavelength = np.asarray(self.wavelength, dtype=np.float64)
        fwhm = np.asarray(self.fwhm, dtype=np.float64)
        good = np.asarray(self.good, dtype=bool)
        if wavelength.ndim != 1 or fwhm.shape != wavelength.shape or good.shape != wavelength.shape:
            raise ValueError(
                f"wavelength, fwhm and good must be 1-D of one length, got {wavelength.shape}, "
                f"{fwhm.shape}, {good.shape}"
            )
        if not (np.all(np.isfinite(wavelength)) and np.all(fwhm > 0)):
            raise ValueError("band centres must be finite and FWHMs positive")
        object.__setattr__(self, "wavelength", wavelength)
        object.__setattr__(self, "fwhm", fwhm)
        object.__setattr__(self, "good", good)
        for name in ("gain", "offset"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64)
                if value.shape != wavelength.shape:
                    raise ValueError(f"{name} has shape {value.shape}, expected {wavelength.shape}")
                object.__setattr__(self, name, value)

    @property
    def n_bands(self) -> int:
        return int(self.wavelength.size)

    def usable(self) -> np.ndarray:
        """Bands that are flagged good and lie outside the water-vapour windows."""
        return self.good & water_vapour_mask(self.wavelength)

    def model_axis(self) -> BandTable:
        """The bands a model built on this product takes as input, by increasing wavelength.

        The rule (:func:`deepsalt.spectra.masks.model_band_mask`) keeps out every band that any
        EnMAP product may flag bad, so a model trained on one product can read all others.
        """
        keep = np.flatnonzero(model_band_mask(self.wavelength, self.good))
        keep = keep[np.argsort(self.wavelength[keep], kind="stable")]
        return BandTable(self.wavelength[keep], self.fwhm[keep], np.ones(keep.size, dtype=bool))

    @classmethod
    def from_metadata_xml(cls, url: str) -> BandTable:
        """Read ``bandCharacterisation`` of a DLR ``*-METADATA.XML`` (any fsspec URL; ``.gz`` too)."""
        try:
            with fsspec.open(url, "rb", compression="infer") as f:
                root = ET.parse(f).getroot()
        except FileNotFoundError as exc:
            raise InputDataError(url, "metadata file not found") from exc
        except (ET.ParseError, OSError, EOFError) as exc:
            raise InputDataError(url, f"not readable XML: {exc}") from exc
        bands = root.findall(".//bandCharacterisation/bandID")
        if not bands:
            raise InputDataError(
                url, "no <bandCharacterisation>/<bandID> entries: not a DLR L2A METADATA.XML"
            )
        try:
            bands.sort(key=lambda b: int(b.attrib["number"]))
            rows = [
                [float(_text(b, tag)) for tag in ("wavelengthCenterOfBand", "FWHMOfBand")]
                + [float(_text(b, "GainOfBand", "1")), float(_text(b, "OffsetOfBand", "0"))]
                for b in bands
            ]
        except (KeyError, ValueError) as exc:
            raise InputDataError(url, f"malformed bandCharacterisation entry: {exc}") from exc
        try:
            empty = _nodata_bands(root, [int(b.attrib["number"]) for b in bands])
        except ValueError as exc:
            raise InputDataError(url, f"malformed bandStatistics entry: {exc}") from exc
        table = np.array(rows)
        return cls(
            wavelength=table[:, 0],
            fwhm=table[:, 1],
            good=~empty,
            gain=table[:, 2],
            offset=table[:, 3],
        )

    @classmethod
    def from_band_tags(cls, source: str | rasterio.DatasetReader) -> BandTable:
        """Read per-band ``wavelength``/``fwhm``/``bbl`` GDAL tags (or GDAL's IMAGERY domain).

        ``source`` is a path/URL rasterio can open, or an already open dataset (to avoid a second
        open when the caller reads the pixels too).
        """
        if isinstance(source, str):
            try:
                with rasterio.open(source) as ds:
                    return cls.from_band_tags(ds)
            except RasterioIOError as exc:
                raise InputDataError(source, f"cannot open raster: {exc}") from exc
        ds = source
        rows = [_band_row(ds, band) for band in range(1, ds.count + 1)]
        if any(row is None for row in rows):
            missing = [i + 1 for i, row in enumerate(rows) if row is None]
            raise InputDataError(
                ds.name,
                f"no wavelength/fwhm tags on band(s) {_ranges(missing)} and no METADATA.XML: "
                "cannot tell which wavelengths the bands hold",
            )
        table = np.array(rows, dtype=np.float64)
        return cls(wavelength=table[:, 0], fwhm=table[:, 1], good=table[:, 2] > 0)

    @classmethod
    def from_stac_item(cls, item: dict[str, Any]) -> BandTable:
        """Read ``eo:bands`` of a STAC item (from the asset that has them, else the properties)."""
        name = str(item.get("id", "<STAC item>"))
        bands = next(
            (a["eo:bands"] for a in item.get("assets", {}).values() if len(a.get("eo:bands", [])) > 1),
            item.get("properties", {}).get("eo:bands"),
        )
        if not bands:
            raise InputDataError(name, "STAC item has no eo:bands")
        try:
            centre = np.array([float(b["center_wavelength"]) for b in bands])
            fwhm = np.array([float(b["full_width_half_max"]) for b in bands])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputDataError(
                name, f"eo:bands entry lacks center_wavelength/full_width_half_max: {exc}"
            ) from exc
        # The eo extension says micrometres; DLR's catalogue publishes nanometres.
        if centre.max() < _MICROMETRE_LIMIT:
            centre, fwhm = centre * 1000.0, fwhm * 1000.0
        gain = [b.get("enmap:gain_of_band") for b in bands]
        offset = [b.get("enmap:offset_of_band") for b in bands]
        return cls(
            wavelength=centre,
            fwhm=fwhm,
            good=np.ones(centre.size, dtype=bool),
            gain=None if None in gain else np.array(gain, dtype=float),
            offset=None if None in offset else np.array(offset, dtype=float),
        )


def _nodata_bands(root: ET.Element, numbers: list[int]) -> np.ndarray:
    """Bands that DLR's ``bandStatistics`` mark as filled with nodata (mean -1000000, deviation 0).

    That is how an L2A product states its own bad bands (the ones its atmospheric correction
    could not retrieve); a band without statistics counts as good.
    """
    empty: set[int] = set()
    for entry in root.findall(".//bandStatistics/bandID"):
        mean, deviation = entry.findtext("mean"), entry.findtext("stdDeviation")
        if mean is not None and deviation is not None and float(mean) == -1e6 and float(deviation) == 0:
            empty.add(int(entry.attrib.get("number", -1)))
    return np.array([n in empty for n in numbers], dtype=bool)


def _text(element: ET.Element, tag: str, default: str | None = None) -> str:
    child = element.find(tag)
    if child is None or child.text is None:
        if default is None:
            raise KeyError(f"band {element.attrib.get('number')}: <{tag}> missing")
        return default
    return child.text


def _band_row(ds: rasterio.DatasetReader, band: int) -> tuple[float, float, float] | None:
    """(centre nm, fwhm nm, bbl) for one band, or None when the band has no wavelength tag."""
    tags = {k.lower(): v for k, v in ds.tags(band).items()}
    imagery = ds.tags(band, ns="IMAGERY")
    if "wavelength" in tags and "fwhm" in tags:
        centre, fwhm = float(tags["wavelength"]), float(tags["fwhm"])
        units = tags.get("wavelength_units", "").strip().lower()
        if units in _MICROMETRE_UNITS or (units not in _NANOMETRE_UNITS and centre < _MICROMETRE_LIMIT):
            centre, fwhm = centre * 1000.0, fwhm * 1000.0
    elif "CENTRAL_WAVELENGTH_UM" in imagery and "FWHM_UM" in imagery:
        centre = float(imagery["CENTRAL_WAVELENGTH_UM"]) * 1000.0
        fwhm = float(imagery["FWHM_UM"]) * 1000.0
    else:
        return None
    return centre, fwhm, float(tags.get("bbl", 1))


def _ranges(numbers: list[int]) -> str:
    """Compact '1-3, 7' listing so a message about 224 bands stays readable."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)
