"""Ray job: one regional mapping run (``deepsalt.mapping.run_map``).

    python ray_jobs/map_region.py --config s3://bucket/configs/map.yaml [--set ray.num_gpus=1 ...]

Inside a Ray job ``RAY_ADDRESS`` points at the job's cluster, so the mapping joins it rather
than starting a local Ray. Exits 1 when any tile failed: the store keeps every finished tile,
and submitting the same config again resumes with the rest.
"""

from __future__ import annotations

import sys

from _entry import log, run

from deepsalt.mapping import MapConfig, run_map


def map_region(config: MapConfig) -> bool:
    summary = run_map(config)
    for tile, scenes in summary.rejected_scenes.items():
        log.warning("scenes not used", extra={"tile": tile, "scenes": list(scenes)})
    for tile, error in summary.failures.items():
        log.error("tile failed", extra={"tile": tile, "reason": error})
    log.info(
        "map written",
        extra={
            "store_url": summary.store_url,
            "stac_item_url": summary.stac_item_url,
            "tiles_done": summary.tiles_done,
        },
    )
    return summary.ok


if __name__ == "__main__":
    sys.exit(run(__doc__ or "", MapConfig, map_region))
