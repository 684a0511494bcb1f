"""Loading stage configurations from YAML with dotted CLI overrides, validated by pydantic.

Every stage declares one pydantic model deriving from :class:`StageConfig`. Unknown fields are
rejected (a misspelt key is an error, not a silent default), and errors name the file and field
before any work starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, TypeVar

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo

from deepsalt.errors import ConfigError

T = TypeVar("T", bound="StageConfig")


class FrozenModel(BaseModel):
    """Base of every settings section and typed hand-off: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StageConfig(FrozenModel):
    """Base for all stage configs (loaded from YAML, hashed into outputs and checkpoints)."""

    def config_hash(self) -> str:
        """Stable short hash of the effective settings, recorded in outputs and checkpoints."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def read_yaml(url: str) -> dict[str, Any]:
    """Read a YAML mapping from any fsspec URL."""
    try:
        with fsspec.open(url, "r") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError as exc:
        raise ConfigError(url, "<file>", "config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(url, "<file>", f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(url, "<file>", "top level must be a mapping")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML scalars (``3``, ``true``, ``[1,2]``)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("<command line>", item, "override must look like key.sub=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError("<command line>", key, f"'{part}' is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def validate(model: type[T], data: dict[str, Any], source: str, section: str = "") -> T:
    """Validate ``data`` against ``model``; the first error names the source and the dotted field.

    ``section`` prefixes field names when ``data`` is one section of a larger file. The source is
    passed on as validation context, so models that validate nested stage configs report the file.
    """
    try:
        return model.model_validate(data, context={"source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in (section, *err["loc"]) if p != "") or "<root>"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (misspelt?)"
        raise ConfigError(source, field, message) from exc


def source_of(info: ValidationInfo) -> str:
    """The config file being validated (from :func:`validate`'s context), for nested validation."""
    return (info.context or {}).get("source", "<config>")


def load_config(
    model: type[T], url: str | None, overrides: Iterable[str] = (), sections: dict[str, Any] | None = None
) -> T:
    """Load ``url`` (or the model's defaults when None), set ``sections`` (whole sections given another
    way, e.g. an inputs file), apply overrides, validate."""
    data = read_yaml(url) if url else {}
    data.update(sections or {})
    data = apply_overrides(data, overrides)
    return validate(model, data, url or "<defaults>")
