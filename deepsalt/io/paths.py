"""URL plumbing: the same fsspec URL reaches both fsspec (XML, CSV, OPUS) and GDAL (rasters)."""

from __future__ import annotations

import hashlib
import os
import posixpath
import zipfile
from typing import Annotated

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from pydantic import AfterValidator

from deepsalt.errors import InputDataError, LineageError

# fsspec protocol → GDAL virtual file system prefix.
_GDAL_PREFIX = {
    "s3": "/vsis3/",
    "s3a": "/vsis3/",
    "gs": "/vsigs/",
    "gcs": "/vsigs/",
    "az": "/vsiaz/",
    "abfs": "/vsiaz/",
}


def gdal_path(url: str) -> str:
    """The path GDAL (rasterio, rioxarray) opens for ``url``: local, s3://, gs://, az://, http(s)://."""
    protocol, sep, rest = url.partition("://")
    if not sep:
        return url
    if protocol == "file":
        return rest
    if protocol in _GDAL_PREFIX:
        return _GDAL_PREFIX[protocol] + rest
    if protocol in ("http", "https"):
        return "/vsicurl/" + url
    raise InputDataError(
        url,
        f"rasters cannot be read from '{protocol}://' URLs (use a local path, s3://, gs://, az:// or http(s)://)",
    )


def zip_member_gdal_path(zip_url: str, member: str) -> str:
    """GDAL path of ``member`` inside the zip archive at ``zip_url`` (GDAL streams it, no download)."""
    return f"/vsizip/{gdal_path(zip_url)}/{member}"


def zip_member_url(zip_url: str, member: str) -> str:
    """fsspec URL of ``member`` inside the zip archive at ``zip_url``."""
    return f"zip://{member}::{zip_url}"


def list_files(url: str) -> list[str]:
    """URLs of all files below the folder ``url`` (recursive; products are small folders)."""
    fs, path = url_to_fs(url)
    if not fs.isdir(path):
        raise InputDataError(url, "not found (expected an EnMAP product folder, .zip or GeoTIFF)")
    return [fs.unstrip_protocol(p) for p in fs.find(path)]


def list_zip_members(url: str) -> list[str]:
    """Member names (files only) of the zip archive at ``url``."""
    try:
        fs = fsspec.filesystem("zip", fo=url)
        return [p for p in fs.find("") if not p.endswith("/")]
    except FileNotFoundError as exc:
        raise InputDataError(url, "not found") from exc
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputDataError(url, f"not a readable zip archive: {exc}") from exc


def exists(url: str) -> bool:
    fs, path = url_to_fs(url)
    return bool(fs.exists(path))


def siblings(url: str) -> list[str]:
    """URLs of the files next to ``url`` in its folder."""
    fs, path = url_to_fs(url)
    return [fs.unstrip_protocol(p) for p in fs.ls(posixpath.dirname(path), detail=False)]


def url_for(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A URL for ``path`` on ``fs``: plain path when local, ``proto://...`` otherwise."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


# Content digests an object store keeps per object (S3/MinIO ETag, GCS MD5), in order of preference.
_STORED_DIGESTS = ("ETag", "md5Hash", "content_md5")


def content_digest(url: str) -> str:
    """A digest of the file's content: the object store's own (no download) or SHA-256 of the bytes.

    S3's ETag is the MD5 of the content for single-part uploads and a digest of the part digests
    otherwise; either way it changes when the content does, and reading it costs one request.
    """
    fs, path = url_to_fs(url)
    info = fs.info(path)
    for key in _STORED_DIGESTS:
        if info.get(key):
            return f"{key.lower()}:{str(info[key]).strip(chr(34))}:{info.get('size')}"
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()[:32]}"


def absolute(url: str) -> str:
    """A local relative path made absolute against the current directory; other URLs unchanged.

    Ray actors and Ray Train workers run in their own working directories, so a path the user
    wrote relative to where they started the command must be pinned before it is shipped.
    """
    protocol, _ = fsspec.core.split_protocol(url)
    if protocol not in (None, "file") or url.startswith("file://"):
        return url
    return os.path.abspath(url)


AbsolutePath = Annotated[str, AfterValidator(absolute)]
"""A config field holding a URL whose local relative form is resolved when the config is read."""


def join_url(url: str, name: str) -> str:
    return f"{url.rstrip('/')}/{name}"


def read_bytes(url: str) -> bytes:
    with fsspec.open(url, "rb") as fh:
        return fh.read()


def write_bytes(url: str, payload: bytes) -> None:
    with fsspec.open(url, "wb") as fh:
        fh.write(payload)


def short_digest(payload: bytes) -> str:
    """The 16-hex-digit SHA-256 prefix checkpoints are named by."""
    return hashlib.sha256(payload).hexdigest()[:16]


def read_verified(url: str, name: str, beside: str, recorded_id: str) -> bytes:
    """The bytes of ``url/name``, refused (LineageError) unless they hash to the id that the file
    ``beside`` it records: a checkpoint whose payload was replaced after its card was written."""
    try:
        payload = read_bytes(join_url(url, name))
    except FileNotFoundError as exc:
        raise InputDataError(url, f"{name} missing next to {beside}") from exc
    digest = short_digest(payload)
    if digest != recorded_id:
        raise LineageError(f"{url}: {name} hashes to {digest} but {beside} records {recorded_id}")
    return payload
