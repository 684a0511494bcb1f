"""The KubeRay manifests under k8s/: every file and every rendered overlay passes the CRD schemas
(strict), the operator's rules, kubernetes-validate on each pod template and our security policy;
the checks themselves fail on a misspelt field, a rule violation and a security breach."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.support import k8s_rules
from tests.support.kustomize import UnsupportedKustomization, build

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
OVERLAYS = ("base", "overlays/dev", "overlays/prod")


def _rendered(overlay: str) -> list[dict[str, Any]]:
    return build(K8S / overlay)


def _manifest_files() -> list[Path]:
    return sorted(
        p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml" and "overlays" not in p.parts
    )


def _all_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = [
        (str(p.relative_to(ROOT)), d) for p in _manifest_files() for d in yaml.safe_load_all(p.read_text())
    ]
    docs += [(f"{o} (rendered)", d) for o in OVERLAYS for d in _rendered(o)]
    return docs


ALL_DOCS = _all_docs()
IDS = [f"{src}:{doc['metadata']['name']}" for src, doc in ALL_DOCS]


def _map_job() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((K8S / "base" / "rayjob-map.yaml").read_text()))


def _pod_spec(doc: dict[str, Any], group: int) -> dict[str, Any]:
    return doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][group]["template"]["spec"]


def test_schemas_are_there_and_strict() -> None:
    """The shared schemas exist; a silent skip would let every manifest through."""
    assert (k8s_rules.SCHEMA_DIR / "rayjob_v1.json").is_file()
    assert (k8s_rules.SCHEMA_DIR / "raycluster_v1.json").is_file()


def test_base_holds_the_three_resources() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in _rendered("base"))
    assert kinds == [
        ("RayCluster", "deepsalt-interactive"),
        ("RayJob", "deepsalt-map"),
        ("RayJob", "deepsalt-train"),
    ]


@pytest.mark.parametrize(("source", "doc"), ALL_DOCS, ids=IDS)
def test_manifest_is_valid(source: str, doc: dict[str, Any]) -> None:
    assert k8s_rules.schema_problems(doc) == []
    assert k8s_rules.operator_problems(doc) == []
    assert k8s_rules.pod_problems(doc) == []
    assert k8s_rules.security_problems(doc) == []


# --- the checks catch what they claim to catch ---------------------------------------------


def test_misspelt_field_fails_schema() -> None:
    doc = _map_job()
    group = doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    group["minReplica"] = group.pop("minReplicas")
    problems = k8s_rules.schema_problems(doc)
    assert any("'minReplica' was unexpected" in p and "workerGroupSpecs.0" in p for p in problems), problems


def test_misspelt_field_deep_in_a_pod_template_fails() -> None:
    doc = _map_job()
    container = _pod_spec(doc, 1)["containers"][0]
    container["securityContex"] = container.pop("securityContext")
    assert any("'securityContex' was unexpected" in p for p in k8s_rules.schema_problems(doc))
    assert any("securityContex" in p for p in k8s_rules.pod_problems(doc))


def test_misspelt_metadata_field_fails() -> None:
    """The CRD schema leaves metadata open; the strict ObjectMeta closes it."""
    doc = _map_job()
    doc["metadata"]["lables"] = doc["metadata"].pop("labels")
    assert any("metadata" in p and "'lables' was unexpected" in p for p in k8s_rules.schema_problems(doc))


def test_pod_template_checked_by_kubernetes_validate() -> None:
    doc = _map_job()
    _pod_spec(doc, 0)["volumes"][0]["emptyDir"]["medium"] = ["Memory"]
    problems = k8s_rules.pod_problems(doc)
    assert len(problems) == 1
    assert "group cpu-read" in problems[0] and "volumes.0.emptyDir.medium" in problems[0]


def _long_name(doc: dict[str, Any]) -> None:
    doc["metadata"]["name"] = "deepsalt-map-" + "x" * 35


def _bad_label(doc: dict[str, Any]) -> None:
    doc["metadata"]["name"] = "DeepSalt_map"


def _ttl_without_shutdown(doc: dict[str, Any]) -> None:
    doc["spec"]["shutdownAfterJobFinishes"] = False


def _min_above_max(doc: dict[str, Any]) -> None:
    doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]["minReplicas"] = 5


def _restart_always(doc: dict[str, Any]) -> None:
    _pod_spec(doc, 0)["restartPolicy"] = "Always"


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_long_name, "longer than 47 characters"),
        (_bad_label, "not a DNS-1035 label"),
        (_ttl_without_shutdown, "ttlSecondsAfterFinished needs shutdownAfterJobFinishes"),
        (_min_above_max, "workerGroupSpecs[1]: minReplicas 5 > maxReplicas 4"),
        (_restart_always, "group cpu-read: restartPolicy Always (autoscaler v2 needs Never or unset)"),
    ],
)
def test_operator_rule_violation_fails(break_it, message: str) -> None:
    doc = _map_job()
    assert k8s_rules.operator_problems(doc) == []
    break_it(doc)
    problems = k8s_rules.operator_problems(doc)
    assert any(message in p for p in problems), problems


@given(st.from_regex(r"\A[a-z]([-a-z0-9]{0,45}[a-z0-9])?\Z"))
def test_rayjob_names_that_the_operator_accepts_pass(name: str) -> None:
    doc = {"kind": "RayJob", "metadata": {"name": name}, "spec": {}}
    assert k8s_rules.operator_problems(doc) == []


@given(
    st.from_regex(r"\A[a-z][a-z0-9]{47,60}\Z")
    | st.from_regex(r"\A([0-9-][a-z0-9]{0,9}|[a-z]{1,9}[_.A-Z-])\Z")
)
def test_rayjob_names_that_the_operator_rejects_fail(name: str) -> None:
    doc = {"kind": "RayJob", "metadata": {"name": name}, "spec": {}}
    assert k8s_rules.operator_problems(doc) != []


def _run_as_root(doc: dict[str, Any]) -> None:
    _pod_spec(doc, 0)["securityContext"]["runAsUser"] = 0


def _privileged(doc: dict[str, Any]) -> None:
    _pod_spec(doc, 1)["containers"][0]["securityContext"]["privileged"] = True


def _escalation(doc: dict[str, Any]) -> None:
    del doc["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["securityContext"][
        "allowPrivilegeEscalation"
    ]


def _load_balancer(doc: dict[str, Any]) -> None:
    doc["spec"]["rayClusterSpec"]["headGroupSpec"]["serviceType"] = "LoadBalancer"


def _ingress(doc: dict[str, Any]) -> None:
    doc["spec"]["rayClusterSpec"]["headGroupSpec"]["enableIngress"] = True


def _literal_secret(doc: dict[str, Any]) -> None:
    _pod_spec(doc, 0)["containers"][0]["env"] = [{"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}]


def _gpu_limit_only(doc: dict[str, Any]) -> None:
    del _pod_spec(doc, 1)["containers"][0]["resources"]["requests"]["nvidia.com/gpu"]


def _no_toleration(doc: dict[str, Any]) -> None:
    del _pod_spec(doc, 1)["tolerations"]


def _root_autoscaler(doc: dict[str, Any]) -> None:
    doc["spec"]["rayClusterSpec"]["autoscalerOptions"]["securityContext"]["runAsNonRoot"] = False


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_run_as_root, "group cpu-read: container ray-worker: may run as root"),
        (_privileged, "group gpu-infer: container ray-worker: privileged"),
        (_escalation, "submitter: container ray-job-submitter: allowPrivilegeEscalation is not false"),
        (_load_balancer, "head service type LoadBalancer exposes"),
        (_ingress, "enableIngress exposes"),
        (_literal_secret, "env AWS_SECRET_ACCESS_KEY holds a literal value"),
        (_gpu_limit_only, "nvidia.com/gpu requests None != limits 1"),
        (_no_toleration, "group gpu-infer: requests nvidia.com/gpu without the nvidia.com/gpu toleration"),
        (_root_autoscaler, "autoscaler: container autoscaler: may run as root"),
    ],
)
def test_security_breach_fails(break_it, message: str) -> None:
    doc = _map_job()
    break_it(doc)
    problems = k8s_rules.security_problems(doc)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "d"}, "spec": {"type": "NodePort"}},
            "outside",
        ),
        ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "d"}}, "outside"),
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "d"}, "stringData": {"k": "v"}},
            "literal data",
        ),
    ],
)
def test_public_services_and_secrets_fail(doc: dict[str, Any], message: str) -> None:
    assert any(message in p for p in k8s_rules.security_problems(doc))
    assert k8s_rules.schema_problems(doc) == [
        f"{doc['kind']}/d: only ray.io/v1 RayJob and RayCluster are expected in k8s/"
    ]


_CREDENTIAL_TEXT = re.compile(
    r"(AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]|\bpassword\s*[:=]|\btoken\s*[:=]|-----BEGIN|stringData|^data:)",
    re.IGNORECASE | re.MULTILINE,
)


def test_no_literal_credential_anywhere_in_k8s() -> None:
    files = sorted(K8S.rglob("*"))
    assert len([f for f in files if f.suffix == ".yaml"]) >= 8
    for path in files:
        if path.is_file():
            assert not _CREDENTIAL_TEXT.search(path.read_text()), path


def test_credentials_come_from_the_secret_by_reference() -> None:
    for _, doc in ALL_DOCS:
        for where, template in k8s_rules.pod_templates(doc):
            if where.endswith("submitter"):
                continue
            for container in template["spec"]["containers"]:
                assert container["envFrom"] == [{"secretRef": {"name": "deepsalt-object-store"}}], where


# --- what the overlays promise -----------------------------------------------------------


def _groups(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return k8s_rules.cluster_spec(doc)["workerGroupSpecs"]


def test_every_group_autoscales_from_zero() -> None:
    for _, doc in ALL_DOCS:
        cluster = k8s_rules.cluster_spec(doc)
        assert cluster["enableInTreeAutoscaling"] is True
        assert all(g["minReplicas"] == 0 for g in _groups(doc))


def test_dev_is_cpu_only_and_small() -> None:
    docs = _rendered("overlays/dev")
    text = yaml.safe_dump_all(docs)
    assert "nvidia.com/gpu" not in text
    assert "tolerations" not in text
    assert all(d["metadata"]["name"].startswith("dev-") for d in docs)
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "RayJob"}
    assert jobs["dev-deepsalt-map"]["spec"]["entrypoint"].endswith("--set ray.num_gpus=0")
    assert jobs["dev-deepsalt-train"]["spec"]["entrypoint"].endswith("--set ray.use_gpu=false")
    for doc in docs:
        assert all(g["maxReplicas"] <= 2 for g in _groups(doc))
        for _, template in k8s_rules.pod_templates(doc):
            limits = template["spec"]["containers"][0]["resources"]["limits"]
            assert limits["memory"] in ("512Mi", "2Gi", "4Gi")


def test_prod_has_the_gpu_groups() -> None:
    docs = {d["metadata"]["name"]: d for d in _rendered("overlays/prod")}
    assert [g["groupName"] for g in _groups(docs["deepsalt-train"])] == ["gpu-train"]
    assert [g["groupName"] for g in _groups(docs["deepsalt-map"])] == ["cpu-read", "gpu-infer"]
    assert [g["maxReplicas"] for g in _groups(docs["deepsalt-map"])] == [32, 8]
    for name, index in (("deepsalt-train", 0), ("deepsalt-map", 1), ("deepsalt-interactive", 1)):
        resources = _groups(docs[name])[index]["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in str(_groups(docs["deepsalt-map"])[0])
    images = {
        c["image"]
        for d in docs.values()
        for _, t in k8s_rules.pod_templates(d)
        for c in t["spec"]["containers"]
    }
    assert images == {"registry.example.com/deepsalt:0.1.0-gpu"}


def test_shm_is_memory_backed_in_every_ray_pod() -> None:
    for _, doc in ALL_DOCS:
        for where, template in k8s_rules.pod_templates(doc):
            if where.endswith("submitter"):
                continue
            spec = template["spec"]
            shm = [m["name"] for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/dev/shm"]
            assert len(shm) == 1, where
            (volume,) = [v for v in spec["volumes"] if v["name"] == shm[0]]
            assert volume["emptyDir"]["medium"] == "Memory", where


def _pin(name: str) -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(rf"{name}(\[|=)", d)]
    return spec.split("==")[1]


def test_ray_version_matches_the_image() -> None:
    """The image installs the package's pinned ray; KubeRay must be told the same version."""
    for _, doc in ALL_DOCS:
        assert k8s_rules.cluster_spec(doc)["rayVersion"] == _pin("ray")


def test_entrypoints_name_scripts_that_the_image_ships() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY ray_jobs/? /app/ray_jobs/?$", dockerfile, re.MULTILINE)
    for _, doc in ALL_DOCS:
        if doc["kind"] == "RayJob":
            script = re.search(r"python /app/(ray_jobs/\w+\.py) --config s3://", doc["spec"]["entrypoint"])
            assert script and (ROOT / script.group(1)).is_file(), doc["spec"]["entrypoint"]


def test_dockerfile_pins_match_the_package_and_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"torch=={_pin('torch')}" in dockerfile
    assert re.search(r"apt-get install [^\n]*\bg\+\+", dockerfile), "the actors compile with a C++ compiler"
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0] == "1000"


# --- the renderer is honest about its scope ------------------------------------------------


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nconfigMapGenerator: []\n")
    with pytest.raises(UnsupportedKustomization, match=r"\['configMapGenerator'\]"):
        build(tmp_path)


def test_renderer_fails_on_a_patch_that_matches_nothing(tmp_path: Path) -> None:
    (tmp_path / "patch.yaml").write_text("- {op: remove, path: /spec}\n")
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{K8S / 'base'}]\npatches:\n  - path: patch.yaml\n    target: {{kind: RayJob, name: nope}}\n"
    )
    with pytest.raises(ValueError, match="matches no resource"):
        build(tmp_path)
