"""The ceiling row: each sample scored against the true ECe of the 30 m pixel it lies in.

A lab sample is a handful of soil from one point; a satellite pixel sees 30 m × 30 m. On the
demo regions the two differ by sub-pixel heterogeneity and lab error (``deepsalt.synth``:
log-sd 0.5 and 0.08), so even a model that knew every pixel's ECe exactly would not predict the
samples exactly. Scoring that perfect pixel-level model in the same harness shows what any
pixel-based model can reach on these samples, and so which targets the world allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from pyproj import Transformer

from deepsalt.evaluation.models import Prediction
from deepsalt.training.data import TrainingData

REFERENCE_MODEL = "true pixel ECe (ceiling)"


def pixel_values(urls: Sequence[str], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Value of the pixel containing each WGS84 point, from the first raster that has one (else NaN)."""
    out = np.full(len(lon), np.nan)
    for url in urls:
        with rasterio.open(url) as src:
            x, y = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(lon, lat)
            samples = np.ma.stack(list(src.sample(zip(x, y, strict=True), indexes=1, masked=True)))
            values = samples.astype(float).filled(np.nan).ravel()
        todo = np.isnan(out)
        out[todo] = values[todo]
    return out


@dataclass(frozen=True)
class TruePixelReference:
    """A 'model' that predicts each sample's pixel truth; it learns nothing from the training rows."""

    truth_urls: tuple[str, ...]
    name: str = REFERENCE_MODEL
    kind: str = "reference"

    def fit_predict(
        self, train: TrainingData, blocks: np.ndarray, tests: dict[str, TrainingData], run_dir: str, seed: int
    ) -> dict[str, Prediction]:
        return {
            key: Prediction(pixel_values(self.truth_urls, test.lon, test.lat)) for key, test in tests.items()
        }
