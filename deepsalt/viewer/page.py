"""What the viewer page shows for a map: its variables with legends in their units, and the quality flags.

The page itself reads pixels from the store; these settings come from Python so the page colours a map
exactly as the quicklooks do (``deepsalt.mapping.legend``) and names what the store's own table names.
Continuous ramps span the values of the coarsest pyramid level, the only level small enough to read
whole whatever the map's size (of at most its central ``RANGE_WINDOW`` pixels square while a map
has no pyramid yet).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import zarr

from deepsalt.mapping.conventions import asset_group
from deepsalt.mapping.legend import NO_DATA_COLOUR, RAMPS, SALINITY_CLASSES, ramp_colours
from deepsalt.mapping.pyramid import level_assets
from deepsalt.mapping.quality import FLAG_DESCRIPTIONS
from deepsalt.mapping.store import VARIABLES

TITLES = {"ece": "ECe", "ece_std": "ECe uncertainty (std)", "domain_score": "Domain score"}
RANGE_WINDOW = 2048


@dataclass(frozen=True)
class ClassStyle:
    low: float
    high: float | None  # None: unbounded
    label: str
    colour: str


@dataclass(frozen=True)
class RampStyle:
    low: float
    high: float
    colours: list[str]


@dataclass(frozen=True)
class VariableStyle:
    name: str
    title: str
    long_name: str
    units: str
    classes: list[ClassStyle] | None = None
    ramp: RampStyle | None = None


@dataclass(frozen=True)
class FlagStyle:
    mask: int
    name: str
    description: str


@dataclass(frozen=True)
class PageSettings:
    title: str
    store: str  # the store's address relative to the page
    levels: list[str]  # the layout's assets, finest first ("." = the store's root)
    variables: list[VariableStyle]
    flags: list[FlagStyle]
    no_data_colour: str

    def to_json(self) -> dict:
        return asdict(self)


def _value_range(array: zarr.Array) -> tuple[float, float]:
    """Smallest and largest finite value of a 2-D array (its central window when it is large)."""
    window = tuple(
        slice(max(0, (n - RANGE_WINDOW) // 2), max(0, (n - RANGE_WINDOW) // 2) + RANGE_WINDOW)
        for n in array.shape
    )
    values = np.asarray(array[window])
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low, low + 1.0)


def page_settings(store_url: str, store_path: str) -> PageSettings:
    """The page's settings for the map at ``store_url``, which the page reads at ``store_path``."""
    root = zarr.open_group(store_url, mode="r")
    levels = level_assets(store_url)
    group = asset_group(levels[-1])
    coarsest = root if group is None else root[group]
    variables = []
    for variable in VARIABLES:
        if variable.name not in TITLES:
            continue
        style = VariableStyle(
            name=variable.name,
            title=TITLES[variable.name],
            long_name=str(variable.attrs["long_name"]),
            units=str(variable.attrs["units"]),
        )
        if variable.name == "ece":
            classes = [
                ClassStyle(c.low, None if math.isinf(c.high) else c.high, c.label, c.colour)
                for c in SALINITY_CLASSES
            ]
            style = replace(style, classes=classes)
        elif variable.name in RAMPS:
            low, high = _value_range(coarsest[variable.name])
            style = replace(style, ramp=RampStyle(low, high, ramp_colours(variable.name)))
        variables.append(style)
    flags = [
        FlagStyle(int(flag), str(flag.name).lower(), description)
        for flag, description in FLAG_DESCRIPTIONS.items()
    ]
    name = store_url.rstrip("/").rsplit("/", 1)[-1]
    title = f"{root.attrs.get('title', 'DeepSalt map')}: {name}"
    return PageSettings(title, store_path, levels, variables, flags, NO_DATA_COLOUR)
