"""A sentinel secret: credentials that must never appear in any file DeepSalt or Ray writes.

The moto S3 server accepts any key pair, so a run can really sign its requests with the sentinel
while every file under Ray's temp folder, the store and the outputs is searched for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SENTINEL_KEY_ID = "AKIASENTINEL7Q2X9ZK4"
SENTINEL_SECRET = "sentinel-secret-3f9a1c5e7b2d4f60-never-log-me"
NEEDLES = (SENTINEL_KEY_ID.encode(), SENTINEL_SECRET.encode())


def sentinel_env(endpoint: str) -> dict[str, str]:
    """What a node's environment holds to reach the moto S3 server with the sentinel credentials."""
    return {
        "AWS_ACCESS_KEY_ID": SENTINEL_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SENTINEL_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,  # botocore / s3fs
        "AWS_S3_ENDPOINT": endpoint.removeprefix("http://"),  # GDAL
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }


def files_holding_sentinel(roots: Iterable[Path]) -> list[str]:
    """Every regular file below ``roots`` whose bytes contain the sentinel key id or secret."""
    found = []
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                if path.is_symlink() or not path.is_file():
                    continue  # sockets, pipes
                try:
                    data = path.read_bytes()
                except OSError:
                    continue  # removed while we walked (a worker's log rotated away)
                if any(needle in data for needle in NEEDLES):
                    found.append(str(path))
    return found


def objects_holding_sentinel(fs, prefix: str) -> list[str]:
    """Every object below ``prefix`` on ``fs`` (an s3fs filesystem) holding the sentinel."""
    paths = fs.find(prefix)
    return [p for p, data in fs.cat(paths).items() if any(needle in data for needle in NEEDLES)]


def searched_files(roots: Iterable[Path]) -> int:
    """How many files the search saw (a search of an empty folder proves nothing)."""
    return sum(len(names) for root in roots for _, _, names in os.walk(root))
