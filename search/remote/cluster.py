"""Joining an existing Ray cluster (`launch --address`) with token authentication kept on.

Ray enables token auth by itself only for a cluster it finds automatically; with an explicit
address the driver connects without a token unless RAY_AUTH_MODE=token is set, and a secured
cluster then refuses it after half a minute of retries. A dead address is worse: Ray retries
forever. So: probe the address first, turn token mode on whenever a token is at hand, and turn
every connection failure into one sentence that says what to do.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any, Callable, Optional

import ray

from search.engine import compat
from search.remote import auth
from search.wait.rules import Look, duration
from search.wait.waiter import wait_until


# Set by Ray's job supervisor for a job's driver (ray._private.runtime_env.constants, by value: the
# constant's module is private). tests/search/remote/test_jobs.py checks the name still holds.
IN_A_JOB = "RAY_JOB_CONFIG_JSON_ENV_VAR"


class ClusterError(RuntimeError):
    """The cluster at the given address cannot be joined; the message says why and what to do."""


def host_port(address: str) -> Optional[tuple[str, int]]:
    """(host, port) of a plain `host:port` GCS address; None for 'auto' and ray:// URLs."""
    if address == "auto" or "://" in address:
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"--address is {address!r} but must be HOST:PORT (the head node's "
                           "GCS port, 6379 by default) or 'auto'")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    return host == "localhost" or host == "::1" or host.startswith("127.")


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
    source = auth.token_source()
    if source and "RAY_AUTH_MODE" not in os.environ:
        compat.enable_token_auth()
    if source is None and os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token":
        # Token mode asked for with no token anywhere: Ray's C++ client aborts the process.
        raise ClusterError(auth.refused(address, None))
    if compat.gcs_refuses_token(address):
        raise ClusterError(auth.refused(address, source))
    if IN_A_JOB in os.environ:
        # A Ray job's driver already runs in the job's runtime env (our code shipped with it):
        # Ray refuses a second py_modules from ray.init as a conflict.
        runtime_env = {}
    target = host_port(address)
    # A cluster on loopback (cluster/start-head.sh --node-ip-address=127.0.0.1) listens on
    # 127.0.0.1 only, but Ray rewrites a loopback address into the machine's external one
    # before it connects: keep this driver on loopback too (search/engine/compat.py).
    on_loopback = target is not None and is_loopback(target[0])
    try:
        with compat.loopback_node() if on_loopback else contextlib.nullcontext():
            ray.init(address=address, runtime_env=runtime_env or None, log_to_driver=False)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as error:
        causes, cause = [], error
        while cause is not None:
            causes.append(cause)
            cause = cause.__cause__
        # Ray flattens the GCS's refusal into the text of a RuntimeError inside the chain.
        refused = any(isinstance(c, ray.exceptions.AuthenticationError)
                      or "InvalidAuthToken" in str(c) for c in causes)
        if refused:
            raise ClusterError(auth.refused(address, source)) from None
        raise ClusterError(f"cannot join the Ray cluster at {address}: "
                           f"{str(error).splitlines()[0]}") from None


# --- what every node sees -----------------------------------------------------------------------
# Trials run on whichever node Ray picks, so whatever they read (the storage, the dataset) must be
# at the same path on every node. The driver cannot look itself: it asks each node, with a tiny
# task pinned there.

def alive_nodes() -> list[dict]:
    return [node for node in ray.nodes() if node.get("Alive")]


def node_name(node: dict) -> str:
    """How a message names a node: its address and the start of its Ray node id (on one
    machine, or behind NAT, several nodes share an address)."""
    return f"{node['NodeManagerAddress']} ({node['NodeID'][:8]})"


# How long a node may take to answer a check. The answer comes from elsewhere (another machine,
# its storage over NFS), where silence may be a hang, so there is a limit; it is generous,
# because the first task on a busy node waits for a worker process to start, and a node Ray
# counts alive is waited for with a line every 30 s.
NODE_ANSWER_S = 300.0


def ask_every_node(nodes: list[dict], question: Callable[..., Optional[str]], *args: Any,
                   timeout_s: float = NODE_ANSWER_S, what: str = "the check",
                   note: Callable[[str], None] = lambda text: None) -> list[tuple[str, str]]:
    """Run `question(*args)` once on each of `nodes` and return (node name, what is wrong) for
    every node whose answer is not None, in the order of `nodes`. Each call is a zero-CPU task
    pinned to its node (hard affinity, no retries): it runs beside busy trials, and its answer
    is that node's, never another's. Nodes are waited for while Ray counts them alive (`note`
    says so every 30 s); a node that died, failed the task or did not answer within
    `timeout_s` is reported as such rather than hanging the launch."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(question)
    refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node["NodeID"], soft=False)).remote(*args) for node in nodes]
    answered: set[str] = set()
    gone: set[str] = set()

    def look() -> Look:
        pending = [ref for ref in refs if ref.hex() not in answered]
        if pending:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            answered.update(ref.hex() for ref in ready)
        waiting = [node for node, ref in zip(nodes, refs) if ref.hex() not in answered]
        if not waiting:
            return Look(ready=True)
        alive = {node["NodeID"] for node in alive_nodes()}
        gone.update(node["NodeID"] for node in waiting if node["NodeID"] not in alive)
        return Look(ready=False, alive=not gone,
                    detail=f"{len(nodes) - len(waiting)} of {len(nodes)} nodes answered")

    waited = wait_until(look, f"every node to answer {what}", note=note, limit_s=timeout_s,
                        first_s=10.0, poll_s=0.0, local=False) if refs else None
    problems = []
    for node, ref in zip(nodes, refs):
        if ref.hex() not in answered:
            with contextlib.suppress(Exception):  # best effort: it may have just finished
                ray.cancel(ref, force=True)
            problems.append((node_name(node), unanswered(
                node["NodeID"] in gone, waited.elapsed_s if waited else 0.0)))
            continue
        try:
            answer = ray.get(ref)
        except ray.exceptions.RayError as error:  # the node died, or the task could not run
            answer = f"could not run the check ({type(error).__name__})"
        if answer:
            problems.append((node_name(node), answer))
    return problems


def unanswered(died: bool, waited_s: float) -> str:
    """Why a node has no answer (pure): it left the cluster, or it was silent too long."""
    if died:
        return "left the cluster before it answered"
    return (f"did not answer within {duration(waited_s)} (a node too busy to start a task, or "
            "whose storage hangs); launch again once it is reachable")


# --- storage every node sees ---------------------------------------------------------------------

def _sees(marker: str, token: str) -> Optional[str]:
    """Runs on one node: does this node read the driver's marker file at the same path? An
    object store's marker (a URI) is read with pyarrow, as Ray's storage reads it there."""
    try:
        if "://" in marker:
            import pyarrow.fs

            fs, path = pyarrow.fs.FileSystem.from_uri(marker)
            with fs.open_input_stream(path) as stream:
                text = stream.read().decode(errors="replace")
        else:
            text = Path(marker).read_text()
        return None if text == token else "reads another file there"
    except OSError as error:  # pyarrow's errors too (no credentials, no endpoint)
        return f"cannot read it ({error.strerror or error})"


def nodes_missing(nodes: list[dict], marker: Any, token: str, timeout_s: float = NODE_ANSWER_S,
                  note: Callable[[str], None] = lambda text: None) -> list[str]:
    """Names of the `nodes` that do not see `marker`."""
    return [name for name, _ in ask_every_node(nodes, _sees, str(marker), token,
                                               timeout_s=timeout_s, note=note,
                                               what="the storage check")]


def unshared_storage(storage: Any,
                     note: Callable[[str], None] = lambda text: None) -> tuple[int, list[str]]:
    """(number of nodes, the nodes that cannot see `storage`: a Path, or a UPath of an object
    store). Trials checkpoint into it and resume from it on whichever node Ray puts them: a
    directory only the driver's machine has loses every checkpoint written elsewhere."""
    nodes = alive_nodes()
    if len(nodes) < 2:
        return len(nodes), []
    storage.mkdir(parents=True, exist_ok=True)
    token = os.urandom(16).hex()
    marker = storage / f".resnet-search-probe-{token[:8]}"
    marker.write_text(token)
    try:
        return len(nodes), nodes_missing(nodes, marker, token, note=note)
    finally:
        marker.unlink(missing_ok=True)


# --- files every node reads ----------------------------------------------------------------------
# A path ending in "/" must be a readable directory, any other a readable file. Checked by
# looking, never by loading: a dataset may be gigabytes.

def _unreadable(path: str) -> Optional[str]:
    want_dir = path.endswith("/")
    path = path.rstrip("/") or "/"
    if not os.path.lexists(path):
        return "missing"
    if want_dir and not os.path.isdir(path):
        return "not a directory"
    if not want_dir and not os.path.isfile(path):
        return "not a file"
    if not os.access(path, os.R_OK | (os.X_OK if want_dir else 0)):
        return "not readable"
    return None


def _creatable(directory: str) -> bool:
    """Could this process make `directory` (or write in it)? Looks only: creates nothing."""
    path = directory.rstrip("/") or "/"
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def _reads(paths: list[str], or_writes: Optional[str] = None) -> Optional[str]:
    """Runs on one node: what is wrong with the first of `paths` this node cannot read, or None.
    With `or_writes`, a node that lacks the files but can create that directory passes (it
    downloads them there)."""
    for path in paths:
        why = _unreadable(path)
        if why is not None:
            if or_writes is not None and _creatable(or_writes):
                return None
            return f"{path.rstrip('/') or '/'}: {why}"
    return None


def nodes_unable_to_read(nodes: list[dict], paths: list[str], or_writes: Optional[str] = None,
                         timeout_s: float = NODE_ANSWER_S,
                         note: Callable[[str], None] = lambda text: None
                         ) -> list[tuple[str, str]]:
    """(node name, the first path it cannot read and why) for each of `nodes` that cannot read
    every one of `paths` (see `_reads`)."""
    if not paths:
        return []
    return ask_every_node(nodes, _reads, list(paths), or_writes, timeout_s=timeout_s,
                          note=note, what="the data check")
