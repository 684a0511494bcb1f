"""The method's training data: lab samples with their satellite pixel, covariates and a pixel pool.

``load_region_samples`` reads one demo region (``deepsalt.synth`` layout) through the readers in
``deepsalt.io``; the stages only see the in-memory :class:`TrainingData`, so the evaluator can
split it by spatial blocks (``subset``) and train the variants on the same rows.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, fields, replace

import fsspec
import numpy as np

from deepsalt.errors import InputDataError
from deepsalt.logs import get_logger

log = get_logger(__name__)

_PER_SAMPLE = ("lab", "ece", "lat", "lon", "sat", "covariates", "sample_id")


@dataclass(frozen=True)
class TrainingData:
    """Rows are lab samples; ``sat`` is NaN where no clear pixel lies within the pairing radius."""

    lab: np.ndarray  # (n, n_wavenumbers) float32 absorbance
    wavenumber: np.ndarray  # (n_wavenumbers,) cm⁻¹
    ece: np.ndarray  # (n,) float32 dS/m
    lat: np.ndarray  # (n,) degrees
    lon: np.ndarray  # (n,) degrees
    sat: np.ndarray  # (n, n_bands) float32 reflectance in [0, 1], NaN rows = unpaired
    wavelength: np.ndarray  # (n_bands,) nm, the usable band axis
    covariates: np.ndarray  # (n, 8) in deepsalt.io.covariates.COVARIATE_NAMES order
    pool: np.ndarray  # (m, n_bands) float32 unlabelled clear pixels for the autoencoders
    sample_id: np.ndarray  # (n,) str

    def __post_init__(self) -> None:
        n = len(self.ece)
        for name in _PER_SAMPLE:
            if len(getattr(self, name)) != n:
                raise ValueError(f"TrainingData.{name} has {len(getattr(self, name))} rows, expected {n}")
        if self.lab.shape[1] != len(self.wavenumber):
            raise ValueError(
                f"lab spectra have {self.lab.shape[1]} points but the wavenumber axis {len(self.wavenumber)}"
            )
        for name in ("sat", "pool"):
            if getattr(self, name).shape[1] != len(self.wavelength):
                raise ValueError(
                    f"TrainingData.{name} has {getattr(self, name).shape[1]} bands, wavelength axis {len(self.wavelength)}"
                )

    def __len__(self) -> int:
        return len(self.ece)

    @property
    def paired(self) -> np.ndarray:
        """Rows with a satellite pixel."""
        return np.isfinite(self.sat).all(axis=1)

    def subset(self, idx: np.ndarray) -> TrainingData:
        """Rows ``idx`` (indices or boolean mask); axes and the unlabelled pool are kept."""
        idx = np.asarray(idx)
        return replace(self, **{name: getattr(self, name)[idx] for name in _PER_SAMPLE})

    @classmethod
    def concat(cls, parts: list[TrainingData]) -> TrainingData:
        """Rows of several regions; their band and wavenumber axes must agree."""
        first = parts[0]
        for part in parts[1:]:
            if not (
                np.allclose(part.wavelength, first.wavelength)
                and np.allclose(part.wavenumber, first.wavenumber)
            ):
                raise ValueError("cannot concatenate regions with different band or wavenumber axes")
        stacked = {name: np.concatenate([getattr(p, name) for p in parts]) for name in (*_PER_SAMPLE, "pool")}
        return replace(first, **stacked)

    def fingerprint(self) -> str:
        """Short hash of the rows and axes: a checkpoint trained on other rows is never reused."""
        digest = hashlib.sha256()
        for f in fields(self):
            value = getattr(self, f.name)
            digest.update(
                "\x1f".join(map(str, value)).encode()
                if value.dtype.kind in "OUS"
                else np.ascontiguousarray(value).tobytes()
            )
        return digest.hexdigest()[:16]

    def save(self, url: str) -> None:
        """Write all arrays to one ``.npz`` at any fsspec URL (a cache between runs)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{f.name: getattr(self, f.name) for f in fields(self)})
        with fsspec.open(url, "wb") as fh:
            fh.write(buffer.getvalue())

    @classmethod
    def load(cls, url: str) -> TrainingData:
        try:
            with fsspec.open(url, "rb") as fh:
                arrays = np.load(io.BytesIO(fh.read()), allow_pickle=False)
                return cls(**{f.name: arrays[f.name] for f in fields(cls)})
        except FileNotFoundError as exc:
            raise InputDataError(url, "training data file not found") from exc
        except (KeyError, ValueError) as exc:
            raise InputDataError(url, f"not a TrainingData file: {exc}") from exc


def load_region_samples(
    region_url: str, pool_size: int = 20000, pair_radius_km: float = 0.045, seed: int = 0
) -> TrainingData:
    """Lab samples of one demo region with their best clear pixel, covariates and a pixel pool.

    Scenes are visited from the least to the most cloudy; a sample takes its pixel from the first
    scene where a clear, complete pixel lies within ``pair_radius_km`` (mutual nearest neighbours
    via :func:`deepsalt.pairing.pair_points`). Pixels are kept on the usable band axis (good bands
    outside the water-vapour windows) of the first scene; other scenes are resampled onto it when
    their band centres differ. ``pool_size`` clear pixels, spread evenly over the scenes, form the
    unlabelled pool.
    """
    from deepsalt.io.covariates import sample_covariates
    from deepsalt.io.lab import read_lab_spectra
    from deepsalt.spectra import KSSL_WAVENUMBERS
    from deepsalt.synth import load_region

    manifest = load_region(region_url)
    spectra = read_lab_spectra(manifest.lab_url, wavenumbers=KSSL_WAVENUMBERS)
    for column in ("lat", "lon", "ece"):
        if column not in spectra.coords:
            raise InputDataError(manifest.lab_url, f"lab table has no '{column}' column")
    lat = spectra["lat"].to_numpy().astype(np.float64)
    lon = spectra["lon"].to_numpy().astype(np.float64)
    covariates = sample_covariates(manifest.covariate_urls(), lon, lat).astype(np.float32)
    scenes = sorted(manifest.files.scenes, key=lambda s: s.cloud_cover)
    rng = np.random.default_rng(seed)
    axis: _BandAxis | None = None
    sat = np.full((len(lat), 0), np.nan, dtype=np.float32)
    pools = []
    for i, scene in enumerate(scenes):
        reader = _SceneSampler(manifest.href(scene.files["spectral"]), axis)
        axis = reader.axis
        if i == 0:
            sat = np.full((len(lat), axis.n_bands), np.nan, dtype=np.float32)
        todo = np.flatnonzero(~np.isfinite(sat).all(axis=1))
        if len(todo):
            found, pixels = reader.pair(lat[todo], lon[todo], pair_radius_km)
            sat[todo[found]] = pixels
        share = pool_size // len(scenes) + (i < pool_size % len(scenes))
        pools.append(reader.pool(share, rng))
    data = TrainingData(
        lab=spectra.to_numpy().astype(np.float32),
        wavenumber=spectra["wavenumber"].to_numpy(),
        ece=spectra["ece"].to_numpy().astype(np.float32),
        lat=lat,
        lon=lon,
        sat=sat,
        wavelength=axis.table.wavelength,
        covariates=covariates,
        pool=np.concatenate(pools),
        sample_id=spectra["sample_id"].to_numpy().astype(str),
    )
    log.info(
        "region samples loaded",
        extra={
            "region": manifest.name,
            "samples": len(data),
            "paired": int(data.paired.sum()),
            "pool": len(data.pool),
            "bands": axis.n_bands,
        },
    )
    return data


@dataclass(frozen=True)
class _BandAxis:
    table: object  # deepsalt.spectra.BandTable of the usable bands

    @property
    def n_bands(self) -> int:
        return len(self.table.wavelength)


class _SceneSampler:
    """Clear pixels of one scene on the training band axis."""

    def __init__(self, url: str, axis: _BandAxis | None):
        from deepsalt.io import open_enmap, open_enmap_quality
        from deepsalt.spectra import BandTable

        self.url = url
        reflectance = open_enmap(url)
        wavelength = reflectance["wavelength"].to_numpy()
        table = BandTable(wavelength, reflectance["fwhm"].to_numpy(), reflectance["good_band"].to_numpy())
        if axis is None:  # the model band axis: deepsalt.spectra.masks.model_band_mask
            axis = _BandAxis(table.model_axis())
        self.axis = axis
        own = (np.abs(wavelength[:, None] - axis.table.wavelength[None, :]) < 1e-3) & table.usable()[:, None]
        self.resample = not own.any(axis=0).all()
        usable = np.flatnonzero(table.usable()) if self.resample else own.argmax(axis=0)
        self.reflectance = reflectance.isel(band=usable)
        quality = open_enmap_quality(url)
        self.clear = ~np.logical_or.reduce([quality[name].to_numpy() for name in quality.data_vars])
        self.crs = reflectance.rio.crs
        self.transform = reflectance.rio.transform()

    def _read(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        import xarray as xr

        from deepsalt.spectra import resample_to_bands

        if len(rows) == 0:
            return np.empty((0, self.axis.n_bands), np.float32)
        values = self.reflectance.isel(y=xr.DataArray(rows), x=xr.DataArray(cols)).to_numpy().T
        if self.resample:
            values = resample_to_bands(values, self.reflectance["wavelength"].to_numpy(), self.axis.table)
        return values.astype(np.float32)

    def pair(self, lat: np.ndarray, lon: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
        """(indices into lat/lon that found a pixel, their spectra)."""
        from pyproj import Transformer

        from deepsalt.pairing import pair_points

        to_scene = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        x, y = to_scene.transform(lon, lat)
        col, row = ~self.transform @ (np.asarray(x), np.asarray(y))
        reach = int(np.ceil(radius_km * 1000 / abs(self.transform.a)))
        offsets = np.arange(-reach, reach + 1)
        rows = (np.floor(row)[:, None, None] + offsets[None, :, None]).astype(int)
        cols = (np.floor(col)[:, None, None] + offsets[None, None, :]).astype(int)
        rows, cols = np.broadcast_arrays(rows, cols)
        h, w = self.clear.shape
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        cand = np.unique(np.stack([rows[inside], cols[inside]], axis=1), axis=0)
        cand = cand[self.clear[cand[:, 0], cand[:, 1]]]
        spectra = self._read(cand[:, 0], cand[:, 1])
        complete = np.isfinite(spectra).all(axis=1)
        cand, spectra = cand[complete], spectra[complete]
        if len(cand) == 0:
            return np.array([], int), spectra
        cx, cy = self.transform @ (cand[:, 1] + 0.5, cand[:, 0] + 0.5)
        c_lon, c_lat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True).transform(cx, cy)
        pairs = pair_points(lat, lon, np.asarray(c_lat), np.asarray(c_lon), radius_km)
        return pairs["lab_index"].to_numpy(), spectra[pairs["sat_index"].to_numpy()]

    def pool(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``n`` random clear, complete pixels."""
        flat = np.flatnonzero(self.clear)
        if n <= 0 or len(flat) == 0:
            return np.empty((0, self.axis.n_bands), np.float32)
        pick = np.sort(rng.choice(flat, size=min(n, len(flat)), replace=False))
        spectra = self._read(*np.unravel_index(pick, self.clear.shape))
        return spectra[np.isfinite(spectra).all(axis=1)]
