"""Spectral augmentation: the nuisance a spectrometer adds, drawn afresh at every training step.

Repacking a soil cup, another particle size or another day on the instrument shifts a spectrum
(offset), tilts its baseline (slope), scales it (multiplicative scatter) and adds noise at the
instrument's level. A network that sees those variations of each training row learns to ignore
them instead of fitting them, which matters most on the small tables spectroscopists have.
The scales come from the training spectra themselves (:meth:`SpectralAugmentation.from_spectra`),
so one setting serves absorbance and reflectance, MIR and vis-NIR alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SpectralAugmentation:
    """Standard deviations of each perturbation, in the spectra's units (``scatter``: relative)."""

    offset: float
    slope: float
    """Baseline change from one end of the axis to the other."""
    scatter: float
    noise: float
    """Independent per-band noise."""

    @classmethod
    def from_spectra(
        cls,
        spectra: np.ndarray,
        offset: float = 0.02,
        slope: float = 0.02,
        scatter: float = 0.02,
        noise: float = 1.0,
    ) -> SpectralAugmentation:
        """Scales relative to the spectra: ``offset`` and ``slope`` as shares of their median absolute
        level, ``noise`` as a multiple of the instrument noise estimated from the second differences
        along the axis (smooth absorption features hardly contribute to them)."""
        values = np.asarray(spectra, dtype=np.float64)
        level = float(np.median(np.abs(values))) if values.size else 0.0
        instrument = 0.0
        if values.ndim == 2 and values.shape[1] >= 3:
            second = np.diff(values, n=2, axis=1)
            instrument = float(np.median(np.abs(second)) * 1.4826 / np.sqrt(6.0))
        return cls(offset * level, slope * level, scatter, noise * instrument)

    def __call__(self, spectra: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A perturbed copy of ``spectra`` (batch, bands); draws come from ``generator`` only."""
        n, bands = spectra.shape

        def draw(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator, device=generator.device).to(spectra)

        ramp = torch.linspace(-0.5, 0.5, bands, device=spectra.device, dtype=spectra.dtype)
        scale = 1 + self.scatter * draw(n, 1)
        shift = self.offset * draw(n, 1) + self.slope * draw(n, 1) * ramp
        return spectra * scale + shift + self.noise * draw(n, bands)
