"""Quicklook PNGs of a map: ECe in USDA salinity classes with a legend, uncertainty, domain score.

Drawn from the coarsest pyramid level that still has enough detail, so a continent's quicklook
reads a few megabytes, not the full map.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import fsspec
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch

from deepsalt.io.paths import url_for
from deepsalt.mapping.legend import NO_DATA_COLOUR, RAMPS, SALINITY_CLASSES
from deepsalt.mapping.pyramid import level_assets, open_level

MAX_PIXELS_PER_SIDE = 2048


def pick_level(url: str) -> xr.Dataset:
    """The finest level whose larger side is at most MAX_PIXELS_PER_SIDE (else the coarsest)."""
    levels = [open_level(url, level) for level in range(len(level_assets(url)))]
    for ds in levels:
        if max(ds.ece.shape) <= MAX_PIXELS_PER_SIDE:
            return ds
    return levels[-1]


def _extent_km(ds: xr.Dataset) -> list[float]:
    left, bottom, right, top = ds.rio.bounds()
    return [left / 1000, right / 1000, bottom / 1000, top / 1000]


def _figure(ds: xr.Dataset, values: np.ndarray, title: str, label: str, **imshow) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    image = ax.imshow(values, extent=_extent_km(ds), interpolation="nearest", **imshow)
    ax.set_title(title)
    ax.set_xlabel(f"x (km, {ds.rio.crs.to_string()})")
    ax.set_ylabel("y (km)")
    ax.set_facecolor(NO_DATA_COLOUR)
    fig.colorbar(image, ax=ax, shrink=0.8).set_label(label)
    return fig


def ece_figure(ds: xr.Dataset) -> plt.Figure:
    top = max(32.0, float(np.nanmax(ds.ece.values, initial=0.0)))
    bounds = [c.low for c in SALINITY_CLASSES] + [top]
    cmap = ListedColormap([c.colour for c in SALINITY_CLASSES])
    fig = _figure(
        ds, ds.ece.values, "Soil salinity ECe", "ECe (dS/m)", cmap=cmap, norm=BoundaryNorm(bounds, cmap.N)
    )
    handles = [Patch(color=c.colour, label=c.label) for c in SALINITY_CLASSES]
    handles.append(Patch(color=NO_DATA_COLOUR, label="no prediction (see quality)"))
    fig.axes[0].legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.9)
    return fig


def write_quicklooks(url: str, out_dir: str) -> dict[str, str]:
    """Write ``ece.png``, ``ece_std.png`` and ``domain_score.png`` into ``out_dir``; returns their URLs."""
    ds = pick_level(url).load()
    figures = {
        "ece": ece_figure(ds),
        "ece_std": _figure(
            ds,
            ds.ece_std.values,
            "Uncertainty: predictive spread of ECe",
            "ECe std (dS/m)",
            cmap=RAMPS["ece_std"],
        ),
        "domain_score": _figure(
            ds,
            ds.domain_score.values,
            "Domain score",
            "distance from training distribution (large = extrapolating)",
            cmap=RAMPS["domain_score"],
        ),
    }
    fs, root = fsspec.core.url_to_fs(out_dir)
    fs.makedirs(root, exist_ok=True)
    written = {}
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        path = str(PurePosixPath(root) / f"{name}.png")
        fs.pipe_file(path, buffer.getvalue())
        written[name] = url_for(fs, path)
    return written
