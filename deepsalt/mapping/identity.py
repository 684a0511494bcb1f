"""What a map is made from: the product identity of a store and the scene key of each tile.

A store holds one product. Its identity lists every input that decides pixels and cannot change
tile by tile: the grid and its layout, how blocks are read and predicted, the predictor, the
*content* of the student checkpoint and of the covariate rasters (not their URLs: the same
checkpoint copied elsewhere makes the same map), and the software version. A run whose identity
differs from the store's is refused, naming each field that differs, so a resume never mixes
two models or two sets of covariates in one map.

The scenes are the exception: a catalogue that gains or loses a scene (or a changed
``region.datetime`` or ``inputs.max_cloud_cover``) changes only the tiles those scenes touch.
Each tile's record keeps the key of the scenes it was mapped from, and a rerun maps again every
tile whose key is no longer the plan's, including tiles that had no imagery before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from deepsalt import __version__
from deepsalt.io.stac import SceneRef
from deepsalt.mapping.config import MapConfig
from deepsalt.mapping.grid import Grid
from deepsalt.mapping.predictor import ModelCard


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def product_identity(
    config: MapConfig, grid: Grid, model: ModelCard, covariates: Mapping[str, str]
) -> dict[str, str]:
    """Field → value of everything that decides the store's pixels (``covariates``: name → content digest)."""
    return {
        "grid.crs": grid.crs.to_string(),
        "grid.transform": json.dumps([round(v, 9) for v in tuple(grid.transform)[:6]]),
        "grid.shape": json.dumps(list(grid.shape)),
        "grid.chunk": str(config.grid.chunk),
        "grid.shard": str(config.grid.shard),
        "grid.tile_shards": str(config.grid.tile_shards),
        "model.predictor": config.model.predictor,
        "model.student_url (checkpoint content)": f"{model.content_hash} (checkpoint {model.checkpoint_id})",
        "model.block": str(config.model.block),
        "model.batch_pixels": str(config.model.batch_pixels),
        "model.precision": config.model.precision.value,
        "inputs.covariates_url (file content)": _digest(dict(covariates)),
        "software_version": __version__,
    }


def product_hash(identity: Mapping[str, str]) -> str:
    return _digest(dict(identity))


def differences(stored: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """``field: store has A, this run has B`` for every field that differs."""
    fields = sorted(set(stored) | set(current))
    return [
        f"{name}: store has {stored.get(name, 'nothing')}, this run has {current.get(name, 'nothing')}"
        for name in fields
        if stored.get(name) != current.get(name)
    ]


def scene_fingerprint(scene: SceneRef) -> dict[str, Any]:
    """What about a scene decides its pixels in a map: not where its files are served from."""
    bands = scene.bands
    return {
        "id": scene.id,
        "format": str(scene.format),
        "datetime": scene.datetime.isoformat() if scene.datetime else None,
        "cloud_cover": scene.cloud_cover,
        "epsg": scene.epsg,
        "quality_layers": sorted(scene.quality_hrefs),
        "bands": None
        if bands is None
        else [
            None if values is None else [float(v) for v in values]
            for values in (bands.wavelength, bands.fwhm, bands.good, bands.gain, bands.offset)
        ],
    }


def scenes_key(scenes: Iterable[SceneRef]) -> str:
    """Key of a tile's scenes (order-free); empty for a tile with no scene."""
    prints = sorted((scene_fingerprint(s) for s in scenes), key=lambda p: p["id"])
    return _digest(prints) if prints else ""
