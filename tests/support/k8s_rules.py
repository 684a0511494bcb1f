"""Offline checks for the KubeRay manifests under ``k8s/``: what the API server, the KubeRay
operator and our own security policy would reject, found before anything reaches a cluster.

- ``schema_problems``: the RayJob/RayCluster CRD schemas (tests/fixtures/kuberay, a copy of ``../shared/schemas/kuberay``)
  (``additionalProperties: false`` everywhere they list properties, so a misspelt field fails).
  Their top-level ``metadata`` is an open object, so it is checked against Kubernetes' strict
  ``ObjectMeta`` from kubernetes-validate instead.
- ``operator_problems``: the rules the KubeRay operator enforces that no schema catches
  (listed in the schemas' README).
- ``pod_problems``: every pod template (head, workers, submitter) as a strict core/v1 Pod
  through kubernetes-validate.
- ``security_problems``: non-root and unprivileged containers, no public exposure, no literal
  credentials, GPU requests equal to limits with the ``nvidia.com/gpu`` toleration.

Each returns human-readable problems (empty list = fine) that name the resource and the field.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

SCHEMA_DIR = (
    Path(__file__).resolve().parents[1] / "fixtures" / "kuberay"
)  # copied from ../shared/schemas/kuberay
KUBERNETES_VERSION = "1.33.0"
GPU = "nvidia.com/gpu"
MAX_RAYJOB_NAME = 47
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CREDENTIAL_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL)", re.IGNORECASE)

Doc = dict[str, Any]


def _name(doc: Doc) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


@functools.cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    files = {"RayJob": "rayjob_v1.json", "RayCluster": "raycluster_v1.json"}
    schema = json.loads((SCHEMA_DIR / files[kind]).read_text())
    defs_file = (
        importlib.resources.files("kubernetes_validate")
        / f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict/_definitions.json"
    )
    defs = json.loads(defs_file.read_text())
    schema["properties"]["metadata"] = {"$ref": f"{defs['$id']}#/$defs/{_OBJECT_META}"}
    registry = Registry().with_resource(defs["$id"], Resource.from_contents(defs))
    return jsonschema.Draft7Validator(schema, registry=registry)


def cluster_spec(doc: Doc) -> Doc:
    """The RayClusterSpec of a RayCluster, or the one a RayJob creates."""
    spec = doc.get("spec", {})
    return spec.get("rayClusterSpec", {}) if doc.get("kind") == "RayJob" else spec


def schema_problems(doc: Doc) -> list[str]:
    """Validate against the CRD schema of the document's kind (only RayJob/RayCluster belong in k8s/)."""
    if doc.get("apiVersion") != "ray.io/v1" or doc.get("kind") not in ("RayJob", "RayCluster"):
        return [f"{_name(doc)}: only ray.io/v1 RayJob and RayCluster are expected in k8s/"]
    return [
        f"{_name(doc)}: {'.'.join(map(str, err.absolute_path)) or '<root>'}: {err.message}"
        for err in _validator(doc["kind"]).iter_errors(doc)
    ]


def operator_problems(doc: Doc) -> list[str]:
    """The KubeRay operator's own checks (schemas' README)."""
    problems: list[str] = []
    name = doc.get("metadata", {}).get("name", "")
    spec = doc.get("spec", {})
    if doc.get("kind") == "RayJob":
        if len(name) > MAX_RAYJOB_NAME:
            problems.append(f"{_name(doc)}: RayJob name longer than {MAX_RAYJOB_NAME} characters")
        if not _DNS1035.match(name):
            problems.append(f"{_name(doc)}: RayJob name is not a DNS-1035 label")
        if spec.get("ttlSecondsAfterFinished", 0) > 0 and not spec.get("shutdownAfterJobFinishes"):
            problems.append(f"{_name(doc)}: ttlSecondsAfterFinished needs shutdownAfterJobFinishes: true")
    cluster = cluster_spec(doc)
    for i, group in enumerate(cluster.get("workerGroupSpecs", [])):
        where = f"{_name(doc)}: workerGroupSpecs[{i}]"
        missing = [k for k in ("groupName", "minReplicas", "maxReplicas", "template") if k not in group]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
        elif group["minReplicas"] > group["maxReplicas"]:
            problems.append(
                f"{where}: minReplicas {group['minReplicas']} > maxReplicas {group['maxReplicas']}"
            )
    if cluster.get("enableInTreeAutoscaling") and cluster.get("autoscalerOptions", {}).get("version") == "v2":
        for where, template in _cluster_templates(doc):
            policy = template.get("spec", {}).get("restartPolicy")
            if policy not in (None, "Never"):
                problems.append(f"{where}: restartPolicy {policy} (autoscaler v2 needs Never or unset)")
    return problems


def _cluster_templates(doc: Doc) -> Iterator[tuple[str, Doc]]:
    cluster = cluster_spec(doc)
    yield f"{_name(doc)}: head", cluster.get("headGroupSpec", {}).get("template", {})
    for group in cluster.get("workerGroupSpecs", []):
        yield f"{_name(doc)}: group {group.get('groupName')}", group.get("template", {})


def pod_templates(doc: Doc) -> Iterator[tuple[str, Doc]]:
    """Every pod template in a RayJob/RayCluster, labelled with where it sits."""
    yield from _cluster_templates(doc)
    if "submitterPodTemplate" in doc.get("spec", {}):
        yield f"{_name(doc)}: submitter", doc["spec"]["submitterPodTemplate"]


def pod_problems(doc: Doc) -> list[str]:
    """Each pod template as a strict core/v1 Pod (kubernetes-validate stops at a template's first error)."""
    problems = []
    for where, template in pod_templates(doc):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": template.get("metadata", {}),
            "spec": template.get("spec"),
        }
        try:
            kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            problems.append(f"{where}: {'.'.join(map(str, err.path)) or '<root>'}: {err.message}")
    return problems


def _containers(template: Doc) -> Iterator[Doc]:
    spec = template.get("spec", {})
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def _container_security(where: str, pod_ctx: Doc, container: Doc) -> list[str]:
    ctx = container.get("securityContext", {})
    where = f"{where}: container {container.get('name')}"
    problems = []
    run_as_user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    if run_as_user == 0 or not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
        problems.append(f"{where}: may run as root (needs runAsNonRoot: true and a non-zero runAsUser)")
    if ctx.get("privileged"):
        problems.append(f"{where}: privileged")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if "ALL" not in ctx.get("capabilities", {}).get("drop", []) or ctx.get("capabilities", {}).get("add"):
        problems.append(f"{where}: capabilities must drop ALL and add none")
    for env in container.get("env", []):
        if _CREDENTIAL_NAME.search(env.get("name", "")) and "value" in env:
            problems.append(f"{where}: env {env['name']} holds a literal value (use a secretKeyRef)")
    return problems


def _gpu_problems(where: str, template: Doc) -> list[str]:
    spec = template.get("spec", {})
    problems = []
    uses_gpu = False
    for container in _containers(template):
        resources = container.get("resources", {})
        requested = resources.get("requests", {}).get(GPU)
        limited = resources.get("limits", {}).get(GPU)
        if requested is None and limited is None:
            continue
        uses_gpu = True
        if str(requested) != str(limited):
            problems.append(
                f"{where}: container {container.get('name')}: {GPU} requests {requested} != limits {limited}"
            )
    tolerated = any(t.get("key") == GPU for t in spec.get("tolerations", []))
    if uses_gpu and not tolerated:
        problems.append(f"{where}: requests {GPU} without the {GPU} toleration")
    return problems


def security_problems(doc: Doc) -> list[str]:
    """Our policy: nothing runs as root or privileged, nothing is exposed, no literal secrets."""
    problems = []
    kind = doc.get("kind")
    if kind == "Ingress" or (
        kind == "Service" and doc.get("spec", {}).get("type", "ClusterIP") != "ClusterIP"
    ):
        problems.append(f"{_name(doc)}: exposes the cluster outside (only ClusterIP services are allowed)")
    if kind == "Secret" and (doc.get("data") or doc.get("stringData")):
        problems.append(
            f"{_name(doc)}: a Secret with literal data (create it with kubectl, reference it by name)"
        )
    templates = list(pod_templates(doc))
    for where, template in templates:
        pod_ctx = template.get("spec", {}).get("securityContext", {})
        for container in _containers(template):
            problems += _container_security(where, pod_ctx, container)
        if template.get("spec", {}).get("hostNetwork") or template.get("spec", {}).get("hostPID"):
            problems.append(f"{where}: uses the host's network or PID namespace")
        problems += _gpu_problems(where, template)
    autoscaler = cluster_spec(doc).get("autoscalerOptions", {})
    if cluster_spec(doc).get("enableInTreeAutoscaling"):
        problems += _container_security(f"{_name(doc)}: autoscaler", {}, {"name": "autoscaler", **autoscaler})
    head = cluster_spec(doc).get("headGroupSpec", {})
    service_type = (
        head.get("headService", {}).get("spec", {}).get("type") or head.get("serviceType") or "ClusterIP"
    )
    if service_type != "ClusterIP":
        problems.append(f"{_name(doc)}: head service type {service_type} exposes the dashboard/job server")
    if head.get("enableIngress"):
        problems.append(f"{_name(doc)}: enableIngress exposes the dashboard/job server")
    return problems


def all_problems(doc: Doc) -> list[str]:
    return schema_problems(doc) + operator_problems(doc) + pod_problems(doc) + security_problems(doc)
