"""One value per map unit: component-weighted depth averages of the survey's representative values.

The rule (the one soilDB's ``get_SDA_property(method="Weighted Average")`` runs on Soil Data Access,
with minor components and miscellaneous areas kept, ``include_minors=TRUE, miscellaneous_areas=TRUE``):

1. Within a component, the thickness-weighted mean of a property over the horizons' overlap with
   ``[top_cm, bottom_cm)``; horizons with no value for that property (bedrock ``R``, ``Cr``) or no
   depths carry no weight. A component none of whose horizons has a value there has no value.
2. Across a map unit's components, the ``comppct_r``-weighted mean over the components that have a
   value, the weights renormalised to their sum: components without horizon data (rock outcrop,
   water, pits, unnamed inclusions) are skipped, not counted as zero. A component with no
   ``comppct_r`` is skipped too.
3. A map unit with no component that has a value gets NaN.

Each property is averaged on its own, so a component without ``ec_r`` may still give ``sand``.
"""

from __future__ import annotations

import pandas as pd

from deepsalt.io.ssurgo.tables import SsurgoTables

DEFAULT_TOP_CM = 0.0
DEFAULT_BOTTOM_CM = 30.0

# Output column → SSURGO chorizon column (ECe: ec_r is the saturated-paste extract EC, dS/m).
SURVEY_PROPERTIES: dict[str, str] = {"ece": "ec_r", "sand": "sandtotal_r", "clay": "claytotal_r"}


def mapunit_properties(
    tables: SsurgoTables, top_cm: float = DEFAULT_TOP_CM, bottom_cm: float = DEFAULT_BOTTOM_CM
) -> pd.DataFrame:
    """``ece`` (dS/m), ``sand`` and ``clay`` (%) per map unit over ``[top_cm, bottom_cm)``.

    Indexed by ``mukey`` (every map unit of the ``mapunit`` table, ascending), float64, NaN where the
    map unit has no value.
    """
    if not 0.0 <= top_cm < bottom_cm:
        raise ValueError(f"need 0 <= top_cm < bottom_cm, got {top_cm} and {bottom_cm}")
    horizons = tables.chorizon
    overlap = (horizons["hzdepb_r"].clip(upper=bottom_cm) - horizons["hzdept_r"].clip(lower=top_cm)).clip(
        lower=0.0
    )
    components = tables.component
    out = pd.DataFrame(index=pd.Index(sorted(tables.mapunit["mukey"]), name="mukey", dtype="int64"))
    for name, column in SURVEY_PROPERTIES.items():
        values = horizons[column]
        weight = overlap.where(values.notna(), 0.0).fillna(0.0)
        weighted = (weight * values.fillna(0.0)).groupby(horizons["cokey"]).sum()
        thickness = weight.groupby(horizons["cokey"]).sum()
        per_component = (weighted / thickness).where(thickness > 0)
        component_value = components["cokey"].map(per_component)
        share = components["comppct_r"].where(component_value.notna())
        share_sum = share.groupby(components["mukey"]).sum(min_count=1)
        value_sum = (share * component_value).groupby(components["mukey"]).sum(min_count=1)
        out[name] = (value_sum / share_sum).where(share_sum > 0).reindex(out.index)
    return out
