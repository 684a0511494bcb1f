"""Opening HDF5 products (NetCDF-4 is HDF5) at any fsspec URL, with errors that name the file."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import fsspec
import h5py

from deepsalt.errors import InputDataError


def open_hdf5(url: str, stack: ExitStack) -> h5py.File:
    """The HDF5 file at ``url`` (local path or any fsspec URL), closed when ``stack`` closes."""
    try:
        handle = stack.enter_context(fsspec.open(url, "rb").open())
        return stack.enter_context(h5py.File(handle, "r"))
    except FileNotFoundError as exc:
        raise InputDataError(url, "not found") from exc
    except OSError as exc:
        raise InputDataError(url, f"not a readable HDF5/NetCDF-4 file: {exc}") from exc


def member(file: h5py.File, url: str, path: str, what: str) -> Any:
    """``file[path]``, or an error naming the file, the missing member and what it should hold."""
    try:
        return file[path]
    except KeyError:
        raise InputDataError(url, f"has no '{path}' ({what})") from None


def attribute(file: h5py.File, url: str, name: str) -> Any:
    """A root attribute (scalars unwrapped from 1-element arrays, bytes decoded)."""
    if name not in file.attrs:
        raise InputDataError(url, f"has no root attribute '{name}'")
    value = file.attrs[name]
    if hasattr(value, "shape") and value.shape in ((), (1,)):
        value = value.reshape(()).item()
    return value.decode() if isinstance(value, bytes) else value


class HdfCube:
    """The life cycle every HDF5-backed cube shares: the file opens with the object (and closes again
    if the product turns out unusable), and stays open until :meth:`close`."""

    def __init__(self, url: str):
        self.url = url
        self._stack = ExitStack()
        try:
            self._read_layout(open_hdf5(url, self._stack))
        except BaseException:
            self._stack.close()
            raise

    def _read_layout(self, file: h5py.File) -> None:
        """Find the datasets and read the attributes a subclass needs (no pixels)."""
        raise NotImplementedError

    def close(self) -> None:
        self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
