"""Which bands carry a usable surface signal, and which of them the model is built on.

Two rules live here, both on band centres (nm) alone, so that they hold for every product of a
sensor whatever its processor version, band order or calibration:

**Water-vapour windows** (:data:`WATER_VAPOUR_WINDOWS`): no band centred inside them is ever used,
neither as a model band nor as a source that other bands are resampled from. They are the
atmospheric absorption bands at 1380 and 1870 nm, widened to every band that some real EnMAP L2A
product flags bad, fills with nodata or lacks:

- the Potsdam tiles (processor v1.3.2) flag 1331.2-1390.8 nm in ``bbl`` and have no band between
  1390.8 and 1461.5 nm, nor between 1759.8 and 1939.4 nm;
- the pre-launch product's METADATA.XML (v0.2.4) lists no band between 1382.3 and 1487.8 nm, nor
  between 1772.7 and 1941.5 nm, and its neighbours (1334.7, 1772.7 nm) are the ones real products
  flag;
- DLR's 2024 catalogue item (v1.4.2) carries bands at 1449.4 and 1769.9-1780.2 nm, and in real L2A
  products of that layout the bands 1294.9-1507.4 nm and 1728.1-1967.7 nm are the ones found
  filled with nodata (the set TorchGeo's EnMAP dataset leaves out for that reason).

The windows cover the union, with a few nanometres to spare for centres that shift between
products; a bad-band flag of the product itself (``bbl``, METADATA.XML band statistics) still
removes any other band.

**Model band axis** (:func:`model_band_mask`): the bands a model is trained on are the usable
bands (good, outside the windows) whose centres also lie inside :data:`MODEL_RANGE_NM`. The range
drops the first and last few bands of the detectors (the lowest signal-to-noise, and the first to
lose their neighbours when another product's centres sit a few nanometres higher or lower), so a
model band always has source bands on both sides in any EnMAP product, and in the other imaging
spectrometers (AVIRIS-NG/-3, EMIT, PRISMA), whose ranges are wider. The two detectors' bands in the
VNIR/SWIR overlap (900-1000 nm) both stay: band resampling handles neighbours a fraction of a
nanometre apart, and both carry signal.
"""

from __future__ import annotations

import numpy as np

# Atmospheric water-vapour absorption windows (nm), widened to every band any EnMAP L2A product
# may flag bad (see the module docstring for the products behind each edge).
WATER_VAPOUR_WINDOWS: tuple[tuple[float, float], ...] = ((1290.0, 1515.0), (1725.0, 1972.0))
# Centres (nm) a model band must lie within: inside the detectors' outermost bands.
MODEL_RANGE_NM: tuple[float, float] = (425.0, 2440.0)


def water_vapour_mask(wavelength: np.ndarray) -> np.ndarray:
    """True where a band centre (nm) lies outside the water-vapour windows, i.e. is usable."""
    wavelength = np.asarray(wavelength, dtype=float)
    usable = np.ones(wavelength.shape, dtype=bool)
    for low, high in WATER_VAPOUR_WINDOWS:
        usable &= ~((wavelength >= low) & (wavelength <= high))
    return usable


def model_band_mask(wavelength: np.ndarray, good: np.ndarray) -> np.ndarray:
    """True for the bands a model may be built on: good, outside the windows, inside the range."""
    wavelength = np.asarray(wavelength, dtype=float)
    low, high = MODEL_RANGE_NM
    inside = (wavelength >= low) & (wavelength <= high)
    return np.asarray(good, dtype=bool) & water_vapour_mask(wavelength) & inside
