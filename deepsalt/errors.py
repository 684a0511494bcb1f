"""Exceptions that carry what went wrong and where, for humans reading a terminal or a log."""

from __future__ import annotations


class DeepSaltError(Exception):
    """Base class: every error DeepSalt raises on purpose derives from it."""


class ConfigError(DeepSaltError):
    """An invalid configuration: names the file and the offending field."""

    def __init__(self, source: str, field: str, message: str):
        self.source = source
        self.field = field
        self.message = message
        super().__init__(f"{source}: field '{field}': {message}")


class InputDataError(DeepSaltError):
    """An input file that cannot be used as it is (corrupt, missing bands, no CRS, ...).

    The message always names the file (URL) so that the user can find it.
    """

    def __init__(self, url: str, message: str):
        self.url = url
        self.message = message
        super().__init__(f"{url}: {message}")


class LineageError(DeepSaltError):
    """A checkpoint that does not belong with the one it is combined with."""
