"""Ports for servers the e2e tests start (Ray nodes, MLflow, PostgreSQL): free ones, never the
defaults, so that tests and other Ray instances on the machine do not collide."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_ports() -> list[str]:
    """`ray start` options for the ports Ray otherwise takes from fixed defaults (the job agent's
    52365 above all): two nodes on one machine would collide, and a node whose job agent cannot
    bind answers every `submit` with "No available agent to submit job"."""
    return [f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}"]
