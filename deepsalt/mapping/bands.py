"""From a scene's stored band values to the student's input: scale, drop bad bands, match bands.

The student was trained on one band axis (``predictor.wavelength``). When those bands are among
the scene's usable bands they are picked directly; otherwise the scene's usable bands, in whatever
order the product lists them, are resampled onto the student's axis with Gaussian SRFs, following
:func:`deepsalt.spectra.resample.match_bands`: a student band the scene does not cover is filled
from its neighbours (the pixels are flagged ``BANDS_FILLED``), and a scene that cannot give a band
at all is refused with an error naming it and the band. Bad bands (``bbl``) and the water-vapour
windows never enter the model.

A scene that ships no land/water classes (a bare GeoTIFF, the other imaging spectrometers) has its
water found from the spectrum (:meth:`BandMatcher.water`).

The SRF weights are banded once the scene's bands are put in wavelength order (each student band
draws on a few neighbouring scene bands, and EnMAP lists its two detectors' overlapping ranges one
after the other), so the resampling is done as :class:`SrfBlocks`: one small matrix product per
block of student bands over just the scene bands with a nonzero weight for it, which is the dense
product with its exact zeros left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from deepsalt.errors import InputDataError
from deepsalt.mapping.recent import Recent
from deepsalt.spectra import REFLECTANCE_SCALE, BandTable
from deepsalt.spectra.resample import FILL_GAP_NM, match_bands

# Reflectance beyond this range on a usable band is an artefact, not ground (flagged OUT_OF_RANGE).
PLAUSIBLE_RANGE = (-0.05, 1.2)
# Two band centres closer than this (nm) are the same band.
SAME_BAND_NM = 0.5
# Open water by its spectrum: dark in the near infrared and darker still in the shortwave infrared,
# where land covers (wet soil, dark roofs, shaded canopy) stay brighter. (centre nm, max reflectance)
WATER_NIR = (865.0, 0.05)
WATER_SWIR = (1610.0, 0.03)
# A water test band must lie this close (nm) to a student band.
WATER_BAND_NM = 25.0
CONVERT_ROWS = 8192
# Band matchers an actor keeps. Scenes of one product version share a band table and so a matcher;
# a mosaic of many versions (or per-scene bad-band lists) must not grow an actor's memory with it.
MATCHERS_KEPT = 32
# Student bands per block of the SRF product: wider blocks multiply more zeros, narrower ones make
# more, smaller products (benchmarks/band_conversion.py compares block sizes).
SRF_BLOCK_BANDS = 32


@dataclass(frozen=True)
class SrfBlock:
    """Student bands ``student`` draw only on scene bands ``scene`` (in the order the product reads)."""

    student: slice
    scene: slice
    weights_t: np.ndarray  # (scene bands, student bands) of this block: the weights transposed


@dataclass(frozen=True)
class SrfBlocks:
    """The SRF product ``scaled @ weights.T`` split into blocks of student bands, each over the
    contiguous range of (wavelength-ordered) scene bands that holds all its nonzero weights."""

    blocks: tuple[SrfBlock, ...]

    @classmethod
    def from_weights(cls, weights: np.ndarray, block_bands: int = SRF_BLOCK_BANDS) -> SrfBlocks:
        """``weights`` (student bands, scene bands), the scene bands in the order the product reads."""
        nonzero = weights != 0
        first = nonzero.argmax(axis=1)
        last = weights.shape[1] - nonzero[:, ::-1].argmax(axis=1)  # one past the last nonzero
        blocks = []
        for start in range(0, len(weights), block_bands):
            bands = slice(start, min(start + block_bands, len(weights)))
            scene = slice(int(first[bands].min()), int(last[bands].max()))
            blocks.append(SrfBlock(bands, scene, np.ascontiguousarray(weights[bands, scene].T)))
        return cls(tuple(blocks))

    @property
    def weights_kept(self) -> int:
        """Weights the blocks multiply (of student bands × scene bands in the dense product)."""
        return sum(block.weights_t.size for block in self.blocks)

    def apply(self, scaled: np.ndarray, out: np.ndarray) -> None:
        """``out[:] = scaled @ weights.T`` (a NaN reaches only the blocks that read its band)."""
        for block in self.blocks:
            np.matmul(scaled[:, block.scene], block.weights_t, out=out[:, block.student])


@dataclass(frozen=True)
class BandMatcher:
    """Maps (n, scene bands) stored values to (n, student bands) reflectance for one band table."""

    n_bands: int  # bands in the scene's table
    usable: np.ndarray  # indices of the scene's usable bands
    gain: np.ndarray  # per usable band
    offset: np.ndarray
    nodata: float
    pick: np.ndarray | None  # student band -> position among usable bands (direct match)
    weights: np.ndarray | None  # (student bands, usable bands) row-normalised weights
    filled: tuple[float, ...]  # student bands (nm) interpolated from the scene's neighbours
    water_bands: tuple[int, int] | None  # student band positions of the NIR/SWIR water test
    read: np.ndarray  # positions among usable bands in the order :meth:`reflectance` converts them
    product: SrfBlocks | None  # ``weights`` in ``read`` order, by blocks (None with ``pick``)

    @classmethod
    def build(cls, table: BandTable, target: np.ndarray, nodata: float, source: str) -> BandMatcher:
        """``source`` names the scene in errors."""
        usable = np.flatnonzero(table.usable())
        n = usable.size
        if n < 2:
            raise InputDataError(source, f"only {n} usable band(s): cannot give the model's bands")
        gain = np.full(n, 1.0 / REFLECTANCE_SCALE) if table.gain is None else table.gain[usable]
        offset = np.zeros(n) if table.offset is None else table.offset[usable]
        target = np.asarray(target, dtype=np.float64)
        water = _water_bands(target)
        distance = np.abs(table.wavelength[usable][None, :] - target[:, None])
        nearest = distance.argmin(axis=1)
        if np.all(distance[np.arange(target.size), nearest] < SAME_BAND_NM):
            # The picked bands first, so the student's input is the first columns of what is read;
            # the others follow only for the out-of-range test.
            read = np.concatenate([nearest, np.setdiff1d(np.arange(n), nearest)])
            return cls(table.n_bands, usable, gain, offset, nodata, nearest, None, (), water, read, None)
        widths = table.fwhm[usable][nearest]
        match = match_bands(table.wavelength[usable], BandTable(target, widths, np.ones(target.size, bool)))
        if match.missing.any():
            missing = ", ".join(f"{w:.1f}" for w in target[match.missing][:5])
            raise InputDataError(
                source,
                f"cannot give the model's band(s) at {missing} nm: no usable bands on both sides within "
                f"{FILL_GAP_NM:.0f} nm of each other (the scene's bands there are bad, in a water-vapour "
                "window or absent)",
            )
        filled = tuple(float(w) for w in target[match.filled])
        weights = match.weights.astype(np.float32)
        read = np.argsort(table.wavelength[usable], kind="stable")
        product = SrfBlocks.from_weights(weights[:, read])
        return cls(table.n_bands, usable, gain, offset, nodata, None, weights, filled, water, read, product)

    def reflectance(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reflectance (n, student bands) float32 with NaN = nodata, out-of-range mask (n,)).

        Stored × gain + offset, clipped to [0, 1] (``deepsalt.spectra.scale_reflectance``'s rule),
        NaN where a band is nodata or not finite (resampled: a pixel with any such usable band is
        NaN in every band, as the dense SRF product made it); out of range where a usable band, not
        nodata, is outside :data:`PLAUSIBLE_RANGE` before clipping. Converted :data:`CONVERT_ROWS`
        pixels at a time, so the float copies stay in the CPU's cache between the passes.
        """
        n_out = len(self.pick) if self.pick is not None else len(self.weights)  # type: ignore[arg-type]
        out = np.empty((len(raw), n_out), dtype=np.float32)
        beyond = np.empty(len(raw), dtype=bool)
        columns = self.usable[self.read]
        gain, offset = self.gain[self.read].astype(np.float32), self.offset[self.read].astype(np.float32)
        nodata = np.float32(self.nodata)
        check_finite = raw.dtype.kind == "f"
        for start in range(0, len(raw), CONVERT_ROWS):
            rows = slice(start, start + CONVERT_ROWS)
            # np.take keeps rows contiguous; raw[rows][:, columns] would come out column-major.
            values = np.take(raw[rows], columns, axis=1).astype(np.float32)
            stored_nodata = values == nodata
            invalid = stored_nodata | ~np.isfinite(values) if check_finite else stored_nodata
            physical = np.multiply(values, gain, out=values)
            physical += offset
            outside = physical < PLAUSIBLE_RANGE[0]
            outside |= physical > PLAUSIBLE_RANGE[1]
            outside &= ~stored_nodata
            beyond[rows] = outside.any(axis=1)
            converted = out[rows]
            if self.product is None:  # picked: the first n_out columns read are the student's bands
                np.clip(physical[:, :n_out], 0.0, 1.0, out=converted)
                np.copyto(converted, np.float32(np.nan), where=invalid[:, :n_out])
            else:
                # As the dense product did, an invalid usable band makes every band of that pixel NaN
                # (the blocks alone would spread it only to the bands that draw on it).
                self.product.apply(np.clip(physical, 0.0, 1.0, out=physical), converted)
                converted[invalid.any(axis=1)] = np.nan
        return out, beyond

    def water(self, reflectance: np.ndarray) -> np.ndarray:
        """(n,) True where a spectrum on the student's axis is open water (all False without the
        NIR and SWIR bands the test needs)."""
        if self.water_bands is None:
            return np.zeros(len(reflectance), dtype=bool)
        nir, swir = self.water_bands
        with np.errstate(invalid="ignore"):
            return (reflectance[:, nir] < WATER_NIR[1]) & (reflectance[:, swir] < WATER_SWIR[1])


class BandMatchers:
    """The actor's matchers onto one student axis, one per distinct band table and nodata (not per
    scene), the :data:`MATCHERS_KEPT` most recently used."""

    def __init__(self, target: np.ndarray, kept: int = MATCHERS_KEPT):
        self.target = np.asarray(target, dtype=np.float64)
        self._matchers: Recent[str, BandMatcher] = Recent(kept)

    def get(self, table: BandTable, nodata: float, source: str) -> BandMatcher:
        """The matcher for ``table``; ``source`` names the scene in errors (a refused table is not
        kept, so every scene that has it is refused under its own name)."""
        return self._matchers.get(
            _table_key(table, nodata), lambda: BandMatcher.build(table, self.target, nodata, source)
        )

    def __len__(self) -> int:
        return len(self._matchers)


def _table_key(table: BandTable, nodata: float) -> str:
    """A digest of everything in a band table and nodata value that decides the conversion."""
    digest = hashlib.sha256(np.float64(nodata).tobytes())
    for values in (table.wavelength, table.fwhm, table.good, table.gain, table.offset):
        digest.update(b"-" if values is None else np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def _water_bands(target: np.ndarray) -> tuple[int, int] | None:
    """Student band positions nearest the water test's NIR and SWIR centres, if close enough."""
    centres = np.array([WATER_NIR[0], WATER_SWIR[0]])
    picks = np.abs(target[None, :] - centres[:, None]).argmin(axis=1)
    if np.any(np.abs(target[picks] - centres) > WATER_BAND_NM):
        return None
    return int(picks[0]), int(picks[1])
