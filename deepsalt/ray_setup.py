"""Joining or starting Ray, one way for training and mapping, and refusing work no node can hold.

Ray waits forever for resources that no node has: an actor asking for 64 CPUs on a 2-CPU
machine shows only Ray's autoscaler warning and never starts. :func:`require_resources` compares
a request with what the cluster's nodes have (or, on an autoscaling cluster, with what its node
groups could add) before any work is submitted, and says which setting asks too much.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from deepsalt.errors import ConfigError, DeepSaltError
from deepsalt.logs import get_logger

log = get_logger(__name__)


def init_ray(address: str | None = None, *, log_to_driver: bool = True) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``, else start a local Ray) unless already connected.

    Credentials are never handed to Ray here: workers of a local Ray inherit this process's
    environment, and the nodes of a remote cluster have their own (a Kubernetes Secret, an
    instance role).
    """
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=log_to_driver)
    except ConnectionError as exc:
        raise DeepSaltError(f"{address or 'RAY_ADDRESS'}: cannot connect to the Ray cluster: {exc}") from exc


def require_resources(per_unit: Mapping[str, float], units: int, fields: Mapping[str, str]) -> None:
    """Refuse ``units`` workers of ``per_unit`` resources (``{"CPU": 0.5, "GPU": 0}``) that cannot all run.

    ``fields`` names the config field behind each resource (``{"CPU": "ray.num_cpus"}``) for
    the message. Every unit must fit on one node; together they must fit in the cluster.
    """
    import ray

    nodes, autoscaling = _node_capacities()
    source = f"Ray cluster {ray.get_runtime_context().gcs_address}"
    check_fit(nodes, autoscaling, per_unit, units, fields, source)


Nodes = Sequence[tuple[Mapping[str, float], float]]
"""(resources of one node, how many such nodes may exist: ``math.inf`` for an unbounded group)."""


def check_fit(
    nodes: Nodes,
    autoscaling: bool,
    per_unit: Mapping[str, float],
    units: int,
    fields: Mapping[str, str],
    source: str,
) -> None:
    """:func:`require_resources` on a given list of nodes (or autoscaling node groups)."""
    wanted = {name: float(amount) for name, amount in per_unit.items() if amount > 0}
    if not wanted or units <= 0:
        return
    for name, amount in wanted.items():
        largest = max((node.get(name, 0.0) for node, _ in nodes), default=0.0)
        if largest < amount:
            where = "node type" if autoscaling else "node"
            raise ConfigError(
                source,
                fields.get(name, name),
                f"asks for {amount:g} {name} per worker, but the largest {where} of the cluster has "
                f"{largest:g} (the work would wait forever)",
            )
    fit = sum(count * n for node, count in nodes if (n := _units_on(node, wanted)) > 0)
    if fit < units:
        names = " and ".join(f"{fields.get(n, n)}={a:g}" for n, a in wanted.items())
        raise ConfigError(
            source,
            fields.get(next(iter(wanted)), next(iter(wanted))),
            f"{units} workers with {names} each do not fit in the cluster (room for {int(fit)}; "
            "the work would wait forever)",
        )


def _units_on(node: Mapping[str, float], wanted: Mapping[str, float]) -> float:
    return min(math.floor(node.get(name, 0.0) / amount + 1e-9) for name, amount in wanted.items())


def _node_capacities() -> tuple[list[tuple[Mapping[str, float], float]], bool]:
    """(resources of a node, how many such nodes) and whether the cluster autoscales.

    An autoscaling cluster (KubeRay with autoscaling, ``ray up``) publishes its node groups and
    their maximum counts; a cluster without an autoscaler has exactly the nodes that are alive.
    """
    import ray

    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # an older Ray or no autoscaler state: count the live nodes
        config = None
    if config is not None and config.node_group_configs:
        groups = [
            (dict(group.resources), math.inf if group.max_count < 0 else float(group.max_count))
            for group in config.node_group_configs
        ]
        return groups, True
    nodes = [(dict(node["Resources"]), 1.0) for node in ray.nodes() if node.get("Alive")]
    return nodes, False
