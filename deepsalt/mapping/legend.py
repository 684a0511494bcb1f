"""How each map variable is coloured, shared by the quicklook PNGs and the web viewer.

ECe is drawn in the USDA salinity classes (fixed bounds in dS/m, so two maps compare at a glance);
the uncertainty and the domain score are continuous ramps over the values present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SalinityClass:
    """A USDA salinity class: ECe in [low, high) dS/m."""

    low: float
    high: float
    name: str
    colour: str

    @property
    def label(self) -> str:
        bounds = f"> {self.low:g}" if math.isinf(self.high) else f"{self.low:g}-{self.high:g}"
        return f"{self.name} ({bounds} dS/m)"


SALINITY_CLASSES = (
    SalinityClass(0, 2, "non-saline", "#1a9850"),
    SalinityClass(2, 4, "slightly", "#a6d96a"),
    SalinityClass(4, 8, "moderately", "#fee08b"),
    SalinityClass(8, 16, "strongly", "#f46d43"),
    SalinityClass(16, math.inf, "very strongly", "#a50026"),
)
NO_DATA_COLOUR = "#d9d9d9"

# matplotlib colormap of each continuously coloured variable
RAMPS = {"ece_std": "magma", "domain_score": "cividis"}


def ramp_colours(variable: str, stops: int = 9) -> list[str]:
    """``stops`` evenly spaced colours of the variable's ramp, low to high, as ``#rrggbb``."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps[RAMPS[variable]]
    return [to_hex(cmap(i / (stops - 1))) for i in range(stops)]
