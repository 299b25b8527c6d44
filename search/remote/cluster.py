"""Joining an existing Ray cluster (`launch --address`) with token authentication kept on.

Ray enables token auth by itself only for a cluster it finds automatically; with an explicit
address the driver connects without a token unless RAY_AUTH_MODE=token is set, and a secured
cluster then refuses it after half a minute of retries. A dead address is worse: Ray retries
forever. So: probe the address first, turn token mode on whenever a token is at hand, and turn
every connection failure into one sentence that says what to do.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

import ray

from search.engine import compat

TOKEN_HELP = ("a token cluster needs its token here: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
              "~/.ray/auth_token (copy it from the head node: `ray get-auth-token`)")


class ClusterError(RuntimeError):
    """The cluster at the given address cannot be joined; the message says why and what to do."""


def token_source() -> Optional[str]:
    """Where the driver's Ray token comes from (the places Ray reads, in its order), or None."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH ({path})" if Path(path).expanduser().is_file() else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def host_port(address: str) -> Optional[tuple[str, int]]:
    """(host, port) of a plain `host:port` GCS address; None for 'auto' and ray:// URLs."""
    if address == "auto" or "://" in address:
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"--address is {address!r} but must be HOST:PORT (the head node's "
                           "GCS port, 6379 by default) or 'auto'")
    return host.strip("[]"), int(port)


def probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds when nothing listens at the address (Ray itself would retry forever)."""
    target = host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout_s).close()
    except OSError as error:
        raise ClusterError(f"no Ray cluster answers at {address} ({error.strerror or error}); "
                           "start one with `ray start --head` or check the address") from None


def join(address: str, runtime_env: dict) -> None:
    """ray.init against an existing cluster, with token auth on whenever a token is available."""
    probe(address)
    source = token_source()
    if source and "RAY_AUTH_MODE" not in os.environ:
        compat.enable_token_auth()
    try:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as error:
        causes, cause = [], error
        while cause is not None:
            causes.append(cause)
            cause = cause.__cause__
        # Ray flattens the GCS's refusal into the text of a RuntimeError inside the chain.
        refused = any(isinstance(c, ray.exceptions.AuthenticationError)
                      or "InvalidAuthToken" in str(c) for c in causes)
        if refused:
            using = f"the token from {source} was refused" if source else "no token was found"
            raise ClusterError(f"the Ray cluster at {address} requires token authentication "
                               f"and {using}; {TOKEN_HELP}") from None
        raise ClusterError(f"cannot join the Ray cluster at {address}: "
                           f"{str(error).splitlines()[0]}") from None


# --- storage every node sees ---------------------------------------------------------------------

def _sees(marker: str, token: str) -> bool:
    """Runs on one node: does this node read the driver's marker file at the same path?"""
    try:
        return Path(marker).read_text() == token
    except OSError:
        return False


def alive_nodes() -> list[dict]:
    return [node for node in ray.nodes() if node.get("Alive")]


def nodes_missing(nodes: list[dict], marker: Path, token: str,
                  timeout_s: float = 60.0) -> list[str]:
    """Addresses of the `nodes` that do not see `marker` (a zero-CPU task pinned to each)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe_task = ray.remote(num_cpus=0, max_retries=0)(_sees)
    pending = [probe_task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node["NodeID"], soft=False)).remote(str(marker), token) for node in nodes]
    seen = ray.get(pending, timeout=timeout_s)
    return [f"{node['NodeManagerAddress']} ({node['NodeID'][:8]})"
            for node, ok in zip(nodes, seen) if not ok]


def unshared_storage(storage: Path) -> tuple[int, list[str]]:
    """(number of nodes, the nodes that cannot see `storage`). Trials checkpoint into it and
    resume from it on whichever node Ray puts them: a directory only the driver's machine has
    loses every checkpoint written elsewhere."""
    nodes = alive_nodes()
    if len(nodes) < 2:
        return len(nodes), []
    storage.mkdir(parents=True, exist_ok=True)
    token = os.urandom(16).hex()
    marker = storage / f".resnet-search-probe-{token[:8]}"
    marker.write_text(token)
    try:
        return len(nodes), nodes_missing(nodes, marker, token)
    finally:
        marker.unlink(missing_ok=True)
