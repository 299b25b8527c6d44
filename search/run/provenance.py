"""Where a result came from: code version, package versions, hardware (on every parent run)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("resnet-search", "torch", "torchvision", "ray", "optuna", "mlflow", "pydantic", "numpy")


def code_version() -> str:
    """The git commit of the checkout (with '+dirty' when it has local changes), else 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def hardware(cluster_resources: dict | None = None, nodes: int | None = None) -> dict[str, str]:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "driver_cpus": str(os.cpu_count())}
    if nodes is not None:
        info["cluster_nodes"] = str(nodes)
    for key in ("CPU", "GPU", "memory"):
        if cluster_resources and key in cluster_resources:
            info[f"cluster_{key.lower()}"] = str(cluster_resources[key])
    return info
