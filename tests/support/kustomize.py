"""A minimal ``kustomize build`` for the kustomizations under ``k8s/``, so tests can validate
the rendered overlays on a machine without kubectl or kustomize (PyPI has no pure-Python one).

It covers what those files use and nothing more: ``resources`` (files, or folders holding a
kustomization.yaml), ``patches`` as JSON 6902 operation lists with a ``target`` (group, version,
kind, name), ``images`` (newName/newTag on every container image), ``namePrefix`` and
``labels`` (metadata labels only). Transformers run in kustomize's order: patches, then name
prefix, labels and images. Any other field raises, so a kustomization that outgrows this
renderer fails loudly instead of rendering something kustomize would not.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

Doc = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images", "namePrefix", "labels"}
TARGET_KEYS = {"group", "version", "kind", "name"}


class UnsupportedKustomization(ValueError):
    """A kustomization uses a feature this renderer does not implement."""


def build(folder: Path) -> list[Doc]:
    """Render the kustomization in ``folder`` into a list of resources."""
    source = folder / "kustomization.yaml"
    kustomization = yaml.safe_load(source.read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise UnsupportedKustomization(
            f"{source}: fields {sorted(unknown)} are not supported by this renderer"
        )
    docs: list[Doc] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        if path.is_dir():
            docs += build(path)
        else:
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    docs = copy.deepcopy(docs)
    for patch in kustomization.get("patches", []):
        docs = _apply_patch(folder, source, patch, docs)
    for doc in docs:
        doc["metadata"]["name"] = kustomization.get("namePrefix", "") + doc["metadata"]["name"]
        for group in kustomization.get("labels", []):
            if group.get("includeSelectors") or group.get("includeTemplates"):
                raise UnsupportedKustomization(f"{source}: labels with includeSelectors/includeTemplates")
            doc["metadata"].setdefault("labels", {}).update(group["pairs"])
        for image in kustomization.get("images", []):
            _set_image(doc, image)
    return docs


def _apply_patch(folder: Path, source: Path, patch: Doc, docs: list[Doc]) -> list[Doc]:
    target = patch.get("target", {})
    ops = yaml.safe_load((folder / patch["path"]).read_text()) if "path" in patch else None
    if not isinstance(ops, list) or not target or set(target) - TARGET_KEYS:
        raise UnsupportedKustomization(
            f"{source}: only JSON 6902 patches from a file with a group/version/kind/name target are supported"
        )
    if not any(_matches(doc, target) for doc in docs):
        raise ValueError(f"{source}: patch {patch['path']} matches no resource ({target})")
    return [jsonpatch.apply_patch(doc, ops) if _matches(doc, target) else doc for doc in docs]


def _matches(doc: Doc, target: Doc) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    actual = {"group": group, "version": version, "kind": doc["kind"], "name": doc["metadata"]["name"]}
    return all(actual[key] == value for key, value in target.items())


def _set_image(node: Any, image: Doc) -> None:
    """Rewrite ``image: <name>[:tag]`` in every containers/initContainers list, as kustomize does."""
    if isinstance(node, list):
        for item in node:
            _set_image(item, image)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers"):
                for container in value:
                    name, _, tag = container.get("image", "").partition(":")
                    if name == image["name"]:
                        container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
            _set_image(value, image)
