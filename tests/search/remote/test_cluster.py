"""Rules for joining an existing cluster (search/remote/cluster.py) that need no cluster."""

import socket

import pytest

from search.remote.cluster import ClusterError, host_port, probe
from search.remote.auth import token_source


@pytest.mark.parametrize("address, expected", [
    ("10.0.0.5:6379", ("10.0.0.5", 6379)),
    ("head.internal:6380", ("head.internal", 6380)),
    ("[::1]:6379", ("::1", 6379)),
    ("auto", None),
    ("ray://head:10001", None),
])
def test_host_port(address, expected):
    assert host_port(address) == expected


@pytest.mark.parametrize("address", ["head", "head:port", "head:"])
def test_an_address_without_a_port_is_refused_with_the_rule(address):
    with pytest.raises(ClusterError, match="must be HOST:PORT"):
        host_port(address)


def test_a_dead_address_fails_at_once_instead_of_ray_retrying_forever():
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClusterError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        probe(f"127.0.0.1:{port}", timeout_s=5)


def test_token_source_follows_rays_order(tmp_path, monkeypatch):
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_source() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("t")
    assert token_source() == str(tmp_path / ".ray" / "auth_token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    assert token_source() is None  # an explicit path that isn't there is not silently replaced
    monkeypatch.setenv("RAY_AUTH_TOKEN", "secret")
    assert token_source() == "RAY_AUTH_TOKEN"
