"""Spatially disjoint folds: samples fall in square blocks of a projected grid; whole blocks are held out.

Neighbouring soil samples share salinity, so a random split scores interpolation, not mapping.
Blocks of ``size_km`` on a projected CRS are assigned to folds as wholes (balanced by sample
count), so no block ever has samples on both sides of a split.
"""

from __future__ import annotations

import numpy as np
from pyproj import CRS, Transformer
from sklearn.model_selection import GroupKFold


def block_ids(lat, lon, crs: str, size_km: float) -> np.ndarray:
    """Block label ``"<col>_<row>"`` of every sample on a ``size_km`` grid of a projected ``crs``."""
    target = CRS.from_user_input(crs)
    if not target.is_projected:
        raise ValueError(f"spatial blocks need a projected CRS (metres), got {target.name}")
    if size_km <= 0:
        raise ValueError("block size must be positive")
    x, y = Transformer.from_crs("EPSG:4326", target, always_xy=True).transform(
        np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    )
    size = size_km * 1000.0
    col = np.floor(np.asarray(x) / size).astype(np.int64)
    row = np.floor(np.asarray(y) / size).astype(np.int64)
    return np.char.add(np.char.add(col.astype(str), "_"), row.astype(str))


def block_folds(blocks: np.ndarray, n_folds: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs; each block is in exactly one test fold and never split.

    Blocks are shuffled by ``seed`` before assignment, so folds are not strips of the grid.
    """
    blocks = np.asarray(blocks)
    n_blocks = len(np.unique(blocks))
    if n_blocks < n_folds:
        raise ValueError(
            f"{n_blocks} spatial blocks cannot make {n_folds} folds: use smaller blocks or fewer folds"
        )
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(blocks)), groups=blocks))
