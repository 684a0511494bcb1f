"""Pair lab samples with satellite pixels by great-circle distance, as mutual nearest neighbours.

The search runs in scikit-learn's BallTree with the haversine metric on coordinates in radians
(the reference code fed it degrees); the reported distance is the WGS84 geodesic from pyproj, so
the radius is exact on the ellipsoid rather than on a sphere (which is off by up to ~0.5 %).
Ties are broken by coordinates, never by row position, so the pairs do not depend on row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyproj import Geod
from sklearn.neighbors import BallTree

EARTH_RADIUS_KM = 6371.0088  # mean radius: only used to turn the search radius into radians
_GEOD = Geod(ellps="WGS84")
_TIE = 1e-12  # relative distance below which two candidates count as equally near


def pair_points(
    lab_lat: np.ndarray, lab_lon: np.ndarray, sat_lat: np.ndarray, sat_lon: np.ndarray, radius_km: float
) -> pd.DataFrame:
    """Mutual nearest lab-sample/pixel pairs no farther apart than ``radius_km`` (degrees in).

    Returns columns ``lab_index``, ``sat_index`` (row positions in the inputs) and ``distance_km``
    (geodesic), sorted by ``lab_index``.
    """
    lab = _radians(lab_lat, lab_lon, "lab")
    sat = _radians(sat_lat, sat_lon, "sat")
    if radius_km <= 0:
        raise ValueError(f"radius_km must be positive, got {radius_km}")
    empty = pd.DataFrame({"lab_index": np.array([], int), "sat_index": np.array([], int), "distance_km": []})
    if len(lab) == 0 or len(sat) == 0:
        return empty
    sat_of_lab = _nearest(sat, lab)
    candidates = np.unique(sat_of_lab)
    lab_of_sat = dict(zip(candidates, _nearest(lab, sat[candidates]), strict=True))
    lab_index = np.flatnonzero([lab_of_sat[s] == i for i, s in enumerate(sat_of_lab)])
    sat_index = sat_of_lab[lab_index]
    _, _, metres = _GEOD.inv(
        np.degrees(lab[lab_index, 1]), np.degrees(lab[lab_index, 0]),
        np.degrees(sat[sat_index, 1]), np.degrees(sat[sat_index, 0]),
    )  # fmt: skip
    distance_km = np.asarray(metres) / 1000.0
    keep = distance_km <= radius_km
    return pd.DataFrame(
        {"lab_index": lab_index[keep], "sat_index": sat_index[keep], "distance_km": distance_km[keep]}
    )


def _radians(lat: np.ndarray, lon: np.ndarray, which: str) -> np.ndarray:
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"{which} lat/lon must be 1-D of one length, got {lat.shape} and {lon.shape}")
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise ValueError(f"{which} coordinates contain NaN or infinity")
    if np.any(np.abs(lat) > 90) or np.any(np.abs(lon) > 360):
        raise ValueError(f"{which} coordinates are not degrees (|lat| <= 90, |lon| <= 360)")
    return np.radians(np.column_stack([lat, lon]))


def _nearest(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index into ``points`` of each query's nearest point; ties go to the smallest (lat, lon, index)."""
    tree = BallTree(points, metric="haversine")
    distance, _ = tree.query(queries, k=1)
    tied = tree.query_radius(queries, r=distance[:, 0] * (1 + _TIE) + 1e-15)
    best = np.empty(len(queries), dtype=int)
    for q, candidates in enumerate(tied):
        # lexsort: last key is primary; identical points fall back to the lowest index
        best[q] = candidates[np.lexsort((candidates, points[candidates, 1], points[candidates, 0]))[0]]
    return best
