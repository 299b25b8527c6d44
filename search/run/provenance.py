"""Where a search came from, as its parent run's tags: code version, package versions, hardware
(the facts from resnet_core.provenance, the one place that reads them)."""

from __future__ import annotations

from resnet_core import provenance

PACKAGES = ("resnet-search", "torch", "torchvision", "ray", "optuna", "mlflow", "pydantic", "numpy")


def code_version() -> str:
    """The git commit of the checkout (with '+dirty' when it has local changes), else 'unknown'."""
    return provenance.code_version() or "unknown"


def versions() -> dict[str, str]:
    return {name: found or "absent" for name, found in provenance.versions(PACKAGES).items()}


def hardware(cluster_resources: dict | None = None, nodes: int | None = None) -> dict[str, str]:
    here = provenance.machine()
    info = {"python": here["python"], "platform": here["platform"],
            "driver_cpus": str(here["cpu_count"])}
    if nodes is not None:
        info["cluster_nodes"] = str(nodes)
    for key in ("CPU", "GPU", "memory"):
        if cluster_resources and key in cluster_resources:
            info[f"cluster_{key.lower()}"] = str(cluster_resources[key])
    return info
