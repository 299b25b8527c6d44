"""Ports for servers the e2e tests start (Ray nodes, MLflow, PostgreSQL): free ones, never the
defaults, so that tests and other Ray instances on the machine do not collide."""

from __future__ import annotations

import socket


_GIVEN: set[int] = set()  # ports this process handed out already


def free_port() -> int:
    """A port free now and never handed out before by this process. A port is free again as
    soon as its probe socket closes, and the kernel may offer it to the very next probe: two
    options of one `ray start` then named the same port, and Ray refused to start."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


# Workers (and a joining driver) bind ports the OS picks, as in Ray's own tests
# (RAY_USE_RANDOM_PORTS): `ray start` otherwise hands them out from 10002-19999, the same range
# for every cluster on the machine, and a driver whose port another test's worker had just taken
# died in Ray's gRPC server ("Address already in use" on 127.0.0.1:10003).
RANDOM_WORKER_PORTS = ["--min-worker-port=0", "--max-worker-port=0"]


def node_ports() -> list[str]:
    """`ray start` options for the ports Ray otherwise takes from fixed defaults (the job agent's
    52365 above all): two nodes on one machine would collide, and a node whose job agent cannot
    bind answers every `submit` with "No available agent to submit job"."""
    return [f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
            *RANDOM_WORKER_PORTS]
