"""The method's training data: the three sources the transfer learns from, in memory.

- **samples**: lab samples in the imaged area. Each has a MIR spectrum; ``ece`` is NaN where the
  lab measured no ECe (MIR is cheap, saturated-paste ECe is not, so campaigns scan every sample
  and measure ECe on a subset). Each is paired with its clear satellite pixel where one lies
  within the pairing radius (``sat`` NaN otherwise), and carries the covariates and the survey
  ECe at its location.
- **library**: lab spectra with measured ECe from anywhere (a national library): no pixel.
- **pool**: clear satellite pixels drawn from the scenes with their covariates and the survey's
  map-unit ECe: unlabelled spectra for the autoencoders and wall-to-wall (coarse) survey labels.

:func:`assemble_training_data` builds it from any lab tables, scenes (STAC ``SceneRef``), covariate
rasters and SSURGO export; :func:`load_region_samples` does so for a ``deepsalt synth`` region. The
stages only see :class:`TrainingData`, so the evaluator can split the samples by spatial blocks
(:meth:`TrainingData.subset`) and train every variant on the same rows.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum

import fsspec
import numpy as np
import pandas as pd

from deepsalt.errors import InputDataError
from deepsalt.logs import get_logger

log = get_logger(__name__)

_PER_SAMPLE = ("lab", "ece", "lat", "lon", "sat", "covariates", "survey", "sample_id")
_PER_POOL = ("pool", "pool_covariates", "pool_survey", "pool_unit")
_PER_LIBRARY = ("library_lab", "library_ece")


@dataclass(frozen=True)
class TrainingData:
    """Samples (rows), the lab library and the pixel pool, on one band, wavenumber and covariate axis."""

    lab: np.ndarray  # (n, n_wavenumbers) float32 absorbance; NaN rows: no spectrum
    wavenumber: np.ndarray  # (n_wavenumbers,) cm⁻¹
    ece: np.ndarray  # (n,) float32 dS/m; NaN: not measured
    lat: np.ndarray  # (n,) degrees
    lon: np.ndarray  # (n,) degrees
    sat: np.ndarray  # (n, n_bands) float32 reflectance in [0, 1]; NaN rows: no clear pixel
    wavelength: np.ndarray  # (n_bands,) nm, the model band axis
    covariates: np.ndarray  # (n, n_covariates), columns named by covariate_names
    survey: np.ndarray  # (n,) float32 survey ECe (dS/m) at the sample; NaN: no survey there
    pool: np.ndarray  # (m, n_bands) float32 clear pixels
    pool_covariates: np.ndarray  # (m, n_covariates)
    pool_survey: np.ndarray  # (m,) survey ECe at the pool pixels (the coarse labels)
    pool_unit: np.ndarray  # (m,) int64 map-unit key (mukey) of each pool pixel: which pixels share a label
    library_lab: np.ndarray  # (k, n_wavenumbers) lab library absorbance
    library_ece: np.ndarray  # (k,) lab library ECe (dS/m)
    sample_id: np.ndarray  # (n,) str
    covariate_names: tuple[str, ...]

    def __post_init__(self) -> None:
        for group, names in (("samples", _PER_SAMPLE), ("pool", _PER_POOL), ("library", _PER_LIBRARY)):
            n = len(getattr(self, names[0]))
            for name in names:
                if len(getattr(self, name)) != n:
                    raise ValueError(
                        f"TrainingData.{name} has {len(getattr(self, name))} rows, expected {n} ({group})"
                    )
        for name in ("lab", "library_lab"):
            if getattr(self, name).shape[1] != len(self.wavenumber):
                raise ValueError(
                    f"TrainingData.{name} has {getattr(self, name).shape[1]} points but the wavenumber axis "
                    f"{len(self.wavenumber)}"
                )
        for name in ("sat", "pool"):
            if getattr(self, name).shape[1] != len(self.wavelength):
                raise ValueError(
                    f"TrainingData.{name} has {getattr(self, name).shape[1]} bands, wavelength axis "
                    f"{len(self.wavelength)}"
                )
        for name in ("covariates", "pool_covariates"):
            if getattr(self, name).shape[1] != len(self.covariate_names):
                raise ValueError(
                    f"TrainingData.{name} has {getattr(self, name).shape[1]} columns for "
                    f"{len(self.covariate_names)} covariate names"
                )

    def __len__(self) -> int:
        return len(self.ece)

    @property
    def paired(self) -> np.ndarray:
        """Rows with a clear satellite pixel, their covariates and their survey value."""
        return (
            np.isfinite(self.sat).all(axis=1)
            & np.isfinite(self.covariates).all(axis=1)
            & np.isfinite(self.survey)
        )

    @property
    def measured(self) -> np.ndarray:
        """Rows with a lab-measured ECe."""
        return np.isfinite(self.ece)

    @property
    def has_spectrum(self) -> np.ndarray:
        """Rows with a complete lab MIR spectrum."""
        return np.isfinite(self.lab).all(axis=1)

    def subset(self, idx: np.ndarray) -> TrainingData:
        """Sample rows ``idx`` (indices or boolean mask); axes, library and pool are kept."""
        idx = np.asarray(idx)
        return replace(self, **{name: getattr(self, name)[idx] for name in _PER_SAMPLE})

    @classmethod
    def concat(cls, parts: Sequence[TrainingData]) -> TrainingData:
        """Samples, pools and libraries of several regions; their axes must agree."""
        first = parts[0]
        for part in parts[1:]:
            if not (
                np.allclose(part.wavelength, first.wavelength)
                and np.allclose(part.wavenumber, first.wavenumber)
                and part.covariate_names == first.covariate_names
            ):
                raise ValueError(
                    "cannot concatenate regions with different band, wavenumber or covariate axes"
                )
        stacked = {
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in (*_PER_SAMPLE, *_PER_POOL, *_PER_LIBRARY)
        }
        return replace(first, **stacked)

    def fingerprint(self) -> str:
        """Short hash of every array and axis: a checkpoint trained on other data is never reused."""
        digest = hashlib.sha256()
        for f in fields(self):
            value = np.asarray(getattr(self, f.name))
            digest.update(
                "\x1f".join(map(str, value.ravel())).encode()
                if value.dtype.kind in "OUS"
                else np.ascontiguousarray(value).tobytes()
            )
        return digest.hexdigest()[:16]

    def save(self, url: str) -> None:
        """Write all arrays to one ``.npz`` at any fsspec URL (a cache between runs)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{f.name: np.asarray(getattr(self, f.name)) for f in fields(self)})
        with fsspec.open(url, "wb") as fh:
            fh.write(buffer.getvalue())

    @classmethod
    def load(cls, url: str) -> TrainingData:
        try:
            with fsspec.open(url, "rb") as fh:
                arrays = np.load(io.BytesIO(fh.read()), allow_pickle=False)
                values = {f.name: arrays[f.name] for f in fields(cls)}
        except FileNotFoundError as exc:
            raise InputDataError(url, "training data file not found") from exc
        except (KeyError, ValueError) as exc:
            raise InputDataError(url, f"not a TrainingData file: {exc}") from exc
        values["covariate_names"] = tuple(str(n) for n in values["covariate_names"])
        return cls(**values)


class PairingStatus(StrEnum):
    """What became of a lab sample when it was paired with the imagery."""

    PAIRED = "paired"
    NO_SCENE = "no scene covers it"
    CLOUD = "cloud or shadow in every scene that covers it"
    OUTSIDE_RADIUS = "no clear pixel within the pairing radius"
    NO_COVARIATES = "covariates or survey missing at the sample"


@dataclass(frozen=True)
class PairingReport:
    """One row per lab sample: its status, and the scene and distance of its pixel when paired."""

    table: pd.DataFrame  # sample_id, status (PairingStatus value), scene, distance_km

    def counts(self) -> dict[str, int]:
        return {status.value: int((self.table["status"] == status.value).sum()) for status in PairingStatus}

    def write(self, url: str) -> None:
        with fsspec.open(url, "w") as fh:
            self.table.to_csv(fh, index=False)


@dataclass(frozen=True)
class _BandAxis:
    table: object  # deepsalt.spectra.BandTable of the model bands

    @property
    def n_bands(self) -> int:
        return len(self.table.wavelength)


def read_samples(lab_urls: Sequence[str]):
    """The lab samples' spectra on the KSSL grid, with their coordinates and ECe (blank: not measured)."""
    from deepsalt.io.lab import read_lab_spectra
    from deepsalt.spectra import KSSL_WAVENUMBERS

    spectra = read_lab_spectra(list(lab_urls), wavenumbers=KSSL_WAVENUMBERS)
    for column in ("lat", "lon", "ece"):
        if column not in spectra.coords:
            raise InputDataError(", ".join(lab_urls), f"lab table has no '{column}' column")
    return spectra


def samples_bbox(spectra, margin_km: float) -> tuple[float, float, float, float]:
    """Lon/lat box around the samples, widened by ``margin_km`` (the pairing radius)."""
    lat = spectra["lat"].to_numpy().astype(float)
    lon = spectra["lon"].to_numpy().astype(float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if not ok.any():
        raise InputDataError("<lab tables>", "no sample has coordinates")
    dlat = margin_km / 111.0
    dlon = margin_km / (111.0 * max(np.cos(np.radians(np.abs(lat[ok]).max())), 0.05))
    return (
        float(lon[ok].min() - dlon),
        float(lat[ok].min() - dlat),
        float(lon[ok].max() + dlon),
        float(lat[ok].max() + dlat),
    )


def load_user_data(
    inputs, pool_size: int, pair_radius_km: float, seed: int = 0
) -> tuple[TrainingData, PairingReport]:
    """Training data from a user's own lab tables, scenes, covariate rasters and SSURGO export.

    ``inputs`` is a :class:`deepsalt.inputs.TrainingInputs`; the scenes are searched over the
    samples' area and ``inputs.datetime`` (or taken from ``inputs.scenes``).
    """
    from deepsalt.inputs import find_scenes
    from deepsalt.io.covariates import covariate_urls
    from deepsalt.io.formats import SceneFormat

    spectra = read_samples(inputs.lab)
    scenes = find_scenes(inputs, samples_bbox(spectra, pair_radius_km), inputs.datetime)
    other = [s for s in scenes if s.format is not SceneFormat.ENMAP_L2A]
    if other:
        raise InputDataError(
            other[0].spectral_href,
            f"training reads EnMAP L2A scenes; this one is {other[0].format.value} (map it, or train on EnMAP)",
        )
    return assemble_training_data(
        spectra,
        inputs.library,
        scenes,
        covariate_urls(inputs.covariates_url),
        inputs.survey_url,
        pool_size=pool_size,
        pair_radius_km=pair_radius_km,
        seed=seed,
    )


def assemble_training_data(
    spectra,
    library_urls: Sequence[str],
    scenes: Sequence,
    covariate_urls: Mapping[str, str],
    survey_url: str,
    *,
    pool_size: int,
    pair_radius_km: float,
    seed: int = 0,
) -> tuple[TrainingData, PairingReport]:
    """Pair the samples (``spectra``, from :func:`read_samples`) with the scenes and read the rest.

    ``scenes`` (``deepsalt.io.stac.SceneRef``) are visited from the least to the most cloudy; a
    sample takes its pixel from the first scene where a clear, complete pixel lies within
    ``pair_radius_km`` (mutual nearest neighbours via :func:`deepsalt.pairing.pair_points`). Pixels
    are kept on the model band axis of the first scene (:meth:`BandTable.model_axis`); other
    scenes are resampled onto it when their band centres differ. ``pool_size`` clear pixels,
    spread over the scenes, form the pool.
    """
    from deepsalt.io.covariates import COVARIATE_NAMES, sample_covariates
    from deepsalt.io.ssurgo import load_survey, sample_survey

    if not scenes:
        raise InputDataError(
            "<scenes>", "no scene covers the lab samples (check the STAC API, datetime and cloud cover)"
        )
    lat = spectra["lat"].to_numpy().astype(np.float64)
    lon = spectra["lon"].to_numpy().astype(np.float64)
    survey = load_survey(survey_url)
    covariates = sample_covariates(covariate_urls, lon, lat).astype(np.float32)
    at_samples = sample_survey(survey, lon, lat).ece.astype(np.float32)

    rng = np.random.default_rng(seed)
    axis: _BandAxis | None = None
    status = np.full(len(lat), PairingStatus.NO_SCENE.value, dtype=object)
    scene_of = np.full(len(lat), "", dtype=object)
    distance = np.full(len(lat), np.nan)
    sat = np.empty((len(lat), 0), np.float32)
    pools, pool_xy = [], []
    ordered = sorted(scenes, key=lambda s: (s.cloud_cover is None, s.cloud_cover or 0.0))
    for i, scene in enumerate(ordered):
        with _SceneSampler(scene.spectral_href, axis) as reader:
            axis = reader.axis
            if i == 0:
                sat = np.full((len(lat), axis.n_bands), np.nan, dtype=np.float32)
            todo = np.flatnonzero(~np.isfinite(sat).all(axis=1))
            if len(todo):
                covered, clear = reader.coverage(lat[todo], lon[todo])
                status[todo[covered & (status[todo] == PairingStatus.NO_SCENE.value)]] = (
                    PairingStatus.CLOUD.value
                )
                status[todo[clear]] = PairingStatus.OUTSIDE_RADIUS.value
            share = pool_size // len(ordered) + (i < pool_size % len(ordered))
            paired, scene_pool = reader.sample(lat[todo], lon[todo], pair_radius_km, share, rng)
        found = todo[paired.index]
        sat[found] = paired.spectra
        status[found] = PairingStatus.PAIRED.value
        scene_of[found] = scene.id
        distance[found] = paired.distance_km
        pools.append(scene_pool.spectra)
        pool_xy.append((scene_pool.lon, scene_pool.lat))
    pool = np.concatenate(pools)
    plon = np.concatenate([p[0] for p in pool_xy])
    plat = np.concatenate([p[1] for p in pool_xy])
    pool_cov = sample_covariates(covariate_urls, plon, plat).astype(np.float32)
    pool_layers = sample_survey(survey, plon, plat)
    pool_survey = pool_layers.ece.astype(np.float32)
    keep = np.isfinite(pool_cov).all(axis=1) & np.isfinite(pool_survey)
    paired_px = status == PairingStatus.PAIRED.value
    lacking = paired_px & ~(np.isfinite(covariates).all(axis=1) & np.isfinite(at_samples))
    status[lacking] = PairingStatus.NO_COVARIATES.value

    library_lab, library_ece = _library(library_urls)
    data = TrainingData(
        lab=spectra.to_numpy().astype(np.float32),
        wavenumber=spectra["wavenumber"].to_numpy(),
        ece=spectra["ece"].to_numpy().astype(np.float32),
        lat=lat,
        lon=lon,
        sat=sat,
        wavelength=axis.table.wavelength,
        covariates=covariates,
        survey=at_samples,
        pool=pool[keep],
        pool_covariates=pool_cov[keep],
        pool_survey=pool_survey[keep],
        pool_unit=pool_layers.mukey[keep].astype(np.int64),
        library_lab=library_lab,
        library_ece=library_ece,
        sample_id=spectra["sample_id"].to_numpy().astype(str),
        covariate_names=tuple(COVARIATE_NAMES),
    )
    report = PairingReport(
        pd.DataFrame(
            {
                "sample_id": data.sample_id,
                "status": status,
                "scene": scene_of,
                "distance_km": distance.round(4),
            }
        )
    )
    log.info(
        "training data assembled",
        extra={
            "samples": len(data),
            "measured": int(data.measured.sum()),
            "pool": len(data.pool),
            "library": len(data.library_ece),
            "bands": axis.n_bands,
            **report.counts(),
        },
    )
    return data, report


def _library(urls: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Lab library spectra and their measured ECe (rows without ECe are dropped: they teach nothing)."""
    from deepsalt.io.lab import read_lab_spectra
    from deepsalt.spectra import KSSL_WAVENUMBERS

    if not urls:
        return np.empty((0, len(KSSL_WAVENUMBERS)), np.float32), np.empty(0, np.float32)
    spectra = read_lab_spectra(list(urls), wavenumbers=KSSL_WAVENUMBERS)
    if "ece" not in spectra.coords:
        raise InputDataError(", ".join(urls), "lab library table has no 'ece' column")
    ece = spectra["ece"].to_numpy().astype(np.float32)
    lab = spectra.to_numpy().astype(np.float32)
    keep = np.isfinite(ece) & np.isfinite(lab).all(axis=1)
    return lab[keep], ece[keep]


def load_region_samples(
    region_url: str, pool_size: int = 20000, pair_radius_km: float = 0.045, seed: int = 0
) -> TrainingData:
    """:func:`assemble_training_data` for a ``deepsalt synth`` region (its manifest names every input)."""
    return load_region_data(region_url, pool_size, pair_radius_km, seed)[0]


def load_region_data(
    region_url: str, pool_size: int = 20000, pair_radius_km: float = 0.045, seed: int = 0
) -> tuple[TrainingData, PairingReport]:
    """Training data and pairing report of a ``deepsalt synth`` region."""
    from deepsalt.io.stac import scene_ref
    from deepsalt.synth import load_region as load_manifest

    manifest = load_manifest(region_url)
    import json

    with fsspec.open(manifest.href(manifest.files.stac_items), "r") as fh:
        scenes = [scene_ref(json.loads(line)) for line in fh if line.strip()]
    if "export" not in manifest.files.survey:
        raise InputDataError(region_url, "the region has no soil survey (written by an older deepsalt synth)")
    library = [manifest.href(manifest.files.library)] if manifest.files.library else []
    return assemble_training_data(
        read_samples([manifest.lab_url]),
        library,
        scenes,
        manifest.covariate_urls(),
        manifest.href(manifest.files.survey["export"]),
        pool_size=pool_size,
        pair_radius_km=pair_radius_km,
        seed=seed,
    )


@dataclass(frozen=True)
class _Paired:
    """Points that found a pixel in a scene: their indices, the pixels' spectra, the distances (km)."""

    index: np.ndarray
    spectra: np.ndarray
    distance_km: np.ndarray


@dataclass(frozen=True)
class _Pool:
    """Pool pixels of a scene: spectra and their centres' lon/lat."""

    spectra: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


class _SceneSampler:
    """Clear pixels of one scene on the model band axis.

    Pixels are read from the file by :func:`deepsalt.mapping.tiff_blocks.open_pixels`, as the
    mapping reads them: only the stored tiles that hold wanted pixels are decoded, once each, and
    only the wanted pixels are scaled. Through the scene's lazy xarray (256² chunks) a pool spread
    over the scene decoded and scaled every chunk in float32 (``benchmarks/notes.md``). Close it
    (it is a context manager) to release the file.
    """

    def __init__(self, url: str, axis: _BandAxis | None):
        import rasterio

        from deepsalt.io import open_enmap, open_enmap_quality
        from deepsalt.io.enmap import stored_scaling
        from deepsalt.io.paths import gdal_path
        from deepsalt.mapping.tiff_blocks import BlockCache, open_pixels
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
        self.bands = np.flatnonzero(table.usable()) if self.resample else own.argmax(axis=0)
        self.wavelength = wavelength[self.bands]
        scaling = stored_scaling(url)
        self.scaling = scaling.select(self.bands)
        quality = open_enmap_quality(url)
        self.clear = ~np.logical_or.reduce([quality[name].to_numpy() for name in quality.data_vars])
        self.has_data = (
            ~quality["background"].to_numpy() if "background" in quality else np.ones_like(self.clear)
        )
        self.crs = reflectance.rio.crs
        self.transform = reflectance.rio.transform()
        self._dataset = rasterio.open(gdal_path(scaling.spectral_url))
        # A read visits each stored tile once, so no decoded tile needs keeping beyond the one in use.
        self._pixels = open_pixels(scaling.spectral_url, self._dataset, BlockCache(budget_bytes=0))

    def __enter__(self) -> _SceneSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pixels.close()
        self._dataset.close()

    def _read(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        from deepsalt.spectra import resample_to_bands

        if len(rows) == 0:
            return np.empty((0, self.axis.n_bands), np.float32)
        stored = np.take(self._pixels.read_pixels(rows, cols), self.bands, axis=1)
        values = self.scaling.reflectance(stored.T[:, :, None])[:, :, 0].T
        if self.resample:
            values = resample_to_bands(values, self.wavelength, self.axis.table)
        return np.ascontiguousarray(values, dtype=np.float32)

    def _pixel_of(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from pyproj import Transformer

        x, y = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True).transform(lon, lat)
        col, row = ~self.transform @ (np.asarray(x), np.asarray(y))
        return np.floor(row).astype(int), np.floor(col).astype(int)

    def coverage(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inside the scene's data, and clear there) for each point, judged at its own pixel."""
        row, col = self._pixel_of(lat, lon)
        h, w = self.clear.shape
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        covered = np.zeros(len(lat), bool)
        clear = np.zeros(len(lat), bool)
        covered[inside] = self.has_data[row[inside], col[inside]]
        clear[inside] = covered[inside] & self.clear[row[inside], col[inside]]
        return covered, clear

    def sample(
        self, lat: np.ndarray, lon: np.ndarray, radius_km: float, pool_size: int, rng: np.random.Generator
    ) -> tuple[_Paired, _Pool]:
        """The points' pixels (:meth:`_candidates`) and ``pool_size`` pool pixels (:meth:`_pool_pixels`),
        read together, so a stored tile holding pixels of both is decoded once."""
        cand = self._candidates(lat, lon, radius_km)
        rows, cols = self._pool_pixels(pool_size, rng)
        spectra = self._read(np.concatenate([cand[:, 0], rows]), np.concatenate([cand[:, 1], cols]))
        return self._paired(lat, lon, radius_km, cand, spectra[: len(cand)]), self._pool(
            rows, cols, spectra[len(cand) :]
        )

    def _candidates(self, lat: np.ndarray, lon: np.ndarray, radius_km: float) -> np.ndarray:
        """(row, col) of the clear pixels within ``radius_km`` of any point."""
        if len(lat) == 0:
            return np.empty((0, 2), int)
        row, col = self._pixel_of(lat, lon)
        reach = int(np.ceil(radius_km * 1000 / abs(self.transform.a)))
        offsets = np.arange(-reach, reach + 1)
        rows = row[:, None, None] + offsets[None, :, None]
        cols = col[:, None, None] + offsets[None, None, :]
        rows, cols = np.broadcast_arrays(rows, cols)
        h, w = self.clear.shape
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        cand = np.unique(np.stack([rows[inside], cols[inside]], axis=1), axis=0)
        return cand[self.clear[cand[:, 0], cand[:, 1]]]

    def _paired(
        self, lat: np.ndarray, lon: np.ndarray, radius_km: float, cand: np.ndarray, spectra: np.ndarray
    ) -> _Paired:
        """Mutual nearest neighbours between the points and the complete candidate pixels."""
        from pyproj import Transformer

        from deepsalt.pairing import pair_points

        complete = np.isfinite(spectra).all(axis=1)
        cand, spectra = cand[complete], spectra[complete]
        if len(cand) == 0:
            return _Paired(np.array([], int), spectra, np.array([]))
        cx, cy = self.transform @ (cand[:, 1] + 0.5, cand[:, 0] + 0.5)
        c_lon, c_lat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True).transform(cx, cy)
        pairs = pair_points(lat, lon, np.asarray(c_lat), np.asarray(c_lon), radius_km)
        return _Paired(
            pairs["lab_index"].to_numpy(),
            spectra[pairs["sat_index"].to_numpy()],
            pairs["distance_km"].to_numpy(),
        )

    def _pool_pixels(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of up to ``n`` random clear pixels."""
        flat = np.flatnonzero(self.clear)
        if n <= 0 or len(flat) == 0:
            return np.empty(0, int), np.empty(0, int)
        pick = np.sort(rng.choice(flat, size=min(n, len(flat)), replace=False))
        return np.unravel_index(pick, self.clear.shape)

    def _pool(self, rows: np.ndarray, cols: np.ndarray, spectra: np.ndarray) -> _Pool:
        """The complete pool pixels and their centres' lon/lat."""
        from pyproj import Transformer

        complete = np.isfinite(spectra).all(axis=1)
        if not complete.any():
            return _Pool(np.empty((0, self.axis.n_bands), np.float32), np.empty(0), np.empty(0))
        x, y = self.transform @ (cols[complete] + 0.5, rows[complete] + 0.5)
        lon, lat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True).transform(x, y)
        return _Pool(spectra[complete], np.asarray(lon), np.asarray(lat))
