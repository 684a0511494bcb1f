"""deepsalt.pairing.pair_points: mutual nearest neighbours by great-circle distance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from sklearn.metrics.pairwise import haversine_distances

from deepsalt.pairing import pair_points

GEOD = Geod(ellps="WGS84")


@st.composite
def scenes(draw, max_lab: int = 15, max_sat: int = 40):
    """Lab samples and pixels scattered over ~1° around a random place on Earth."""
    lat0 = draw(st.floats(-70, 70))
    lon0 = draw(st.floats(-180, 179))
    n_lab = draw(st.integers(1, max_lab))
    n_sat = draw(st.integers(1, max_sat))
    offsets = st.floats(0.0, 1.0)
    lab = np.array(draw(st.lists(st.tuples(offsets, offsets), min_size=n_lab, max_size=n_lab)))
    sat = np.array(draw(st.lists(st.tuples(offsets, offsets), min_size=n_sat, max_size=n_sat)))
    wrap = lambda lon: (lon + 180.0) % 360.0 - 180.0  # noqa: E731
    return lat0 + lab[:, 0], wrap(lon0 + lab[:, 1]), lat0 + sat[:, 0], wrap(lon0 + sat[:, 1])


def as_coordinate_pairs(result, lab_lat, lab_lon, sat_lat, sat_lon) -> set[tuple[float, ...]]:
    """Pairs by coordinates: what must not change when rows are shuffled."""
    return {
        (lab_lat[i], lab_lon[i], sat_lat[j], sat_lon[j], round(d, 9))
        for i, j, d in zip(result.lab_index, result.sat_index, result.distance_km, strict=True)
    }


def nearest_by_rule(distances: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> int:
    """The documented rule: nearest; exact ties go to the smallest (lat, lon, index)."""
    tied = np.flatnonzero(distances <= distances.min() * (1 + 1e-12) + 1e-15)
    return int(tied[np.lexsort((tied, lon[tied], lat[tied]))[0]])


def brute_force(lab_lat, lab_lon, sat_lat, sat_lon, radius_km) -> set[tuple[int, int]]:
    """Mutual nearest neighbours from the full haversine distance matrix."""
    lab = np.radians(np.column_stack([lab_lat, lab_lon]))
    d = haversine_distances(lab, np.radians(np.column_stack([sat_lat, sat_lon])))
    pairs = set()
    for i in range(len(lab_lat)):
        j = nearest_by_rule(d[i], np.radians(sat_lat), np.radians(sat_lon))
        if nearest_by_rule(d[:, j], np.radians(lab_lat), np.radians(lab_lon)) == i:
            _, _, metres = GEOD.inv(lab_lon[i], lab_lat[i], sat_lon[j], sat_lat[j])
            if metres / 1000 <= radius_km:
                pairs.add((i, j))
    return pairs


@settings(max_examples=60, deadline=None)
@given(scenes(), st.floats(1.0, 80.0))
def test_matches_brute_force_mutual_nearest_neighbours(scene, radius_km: float):
    result = pair_points(*scene, radius_km=radius_km)
    assert set(zip(result.lab_index, result.sat_index, strict=True)) == brute_force(*scene, radius_km)
    assert result.lab_index.is_unique and result.sat_index.is_unique
    assert (result.distance_km <= radius_km).all()


@settings(max_examples=60, deadline=None)
@given(scenes(), st.floats(1.0, 80.0), st.randoms(use_true_random=False))
def test_invariant_to_row_permutation(scene, radius_km: float, rnd):
    lab_lat, lab_lon, sat_lat, sat_lon = scene
    p = np.array(rnd.sample(range(len(lab_lat)), len(lab_lat)))
    q = np.array(rnd.sample(range(len(sat_lat)), len(sat_lat)))
    original = pair_points(*scene, radius_km=radius_km)
    shuffled = pair_points(lab_lat[p], lab_lon[p], sat_lat[q], sat_lon[q], radius_km=radius_km)
    assert as_coordinate_pairs(original, *scene) == as_coordinate_pairs(
        shuffled, lab_lat[p], lab_lon[p], sat_lat[q], sat_lon[q]
    )


@settings(max_examples=60, deadline=None)
@given(scenes(), st.floats(1.0, 80.0))
def test_distance_matches_pyproj_geodesic(scene, radius_km: float):
    lab_lat, lab_lon, sat_lat, sat_lon = scene
    result = pair_points(*scene, radius_km=radius_km)
    for i, j, d in zip(result.lab_index, result.sat_index, result.distance_km, strict=True):
        _, _, metres = GEOD.inv(lab_lon[i], lab_lat[i], sat_lon[j], sat_lat[j])
        assert d == pytest.approx(metres / 1000, rel=0.005)


def test_known_distances_and_radius():
    lat, lon = 36.75, -120.2
    # pixels 0.2 km north and 1.5 km east of a sample, another sample 30 km away
    sat_lon, sat_lat, _ = GEOD.fwd([lon, lon], [lat, lat], [0.0, 90.0], [200.0, 1500.0])
    far_lon, far_lat, _ = GEOD.fwd(lon, lat, 180.0, 30_000.0)
    lab_lat, lab_lon = np.array([lat, far_lat]), np.array([lon, far_lon])
    result = pair_points(lab_lat, lab_lon, np.array(sat_lat), np.array(sat_lon), radius_km=1.0)
    assert result.lab_index.tolist() == [0] and result.sat_index.tolist() == [0]
    assert result.distance_km.iloc[0] == pytest.approx(0.2, rel=1e-9)
    wider = pair_points(lab_lat, lab_lon, np.array(sat_lat), np.array(sat_lon), radius_km=50.0)
    # the far sample's nearest pixel is the 1.5 km one, whose nearest sample is sample 0: not
    # mutual, so the far sample stays unpaired however wide the radius
    assert wider.lab_index.tolist() == [0] and wider.sat_index.tolist() == [0]


def test_pairs_across_the_antimeridian():
    result = pair_points(
        np.array([10.0]), np.array([179.999]), np.array([10.0, 10.0]), np.array([-179.999, 179.9]), 1.0
    )
    assert result.sat_index.tolist() == [0]
    assert result.distance_km.iloc[0] == pytest.approx(0.219, abs=0.002)  # 0.002° of longitude at 10° N


def test_empty_inputs_and_bad_coordinates():
    empty = pair_points(np.array([]), np.array([]), np.array([1.0]), np.array([1.0]), 1.0)
    assert empty.empty and list(empty.columns) == ["lab_index", "sat_index", "distance_km"]
    with pytest.raises(ValueError, match="lab coordinates are not degrees"):
        pair_points(np.array([120.0]), np.array([0.0]), np.array([0.0]), np.array([0.0]), 1.0)
    with pytest.raises(ValueError, match="sat coordinates contain NaN"):
        pair_points(np.array([1.0]), np.array([0.0]), np.array([np.nan]), np.array([0.0]), 1.0)
    with pytest.raises(ValueError, match="radius_km must be positive"):
        pair_points(np.array([1.0]), np.array([0.0]), np.array([1.0]), np.array([0.0]), 0.0)
