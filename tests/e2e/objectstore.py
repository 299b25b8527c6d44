"""A real S3-compatible server for the tests: moto's server mode, on 127.0.0.1, in its own process
(a threaded one in the test process would answer Ray's workers only when the GIL lets it).

The product reaches it as it reaches any S3-compatible store: AWS_ENDPOINT_URL and the AWS
credential variables, read by s3fs (the record) and pyarrow (Ray's storage) alike.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

from ports import free_port

REGION = "us-east-1"


@contextlib.contextmanager
def s3_server(log: Path) -> Iterator[str]:
    """Start moto's S3 server; yields its endpoint URL."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"moto's S3 server did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _die_with_parent() -> None:
    """In the server's process before it starts: a test run killed outright (no fixture
    teardown) takes its server with it instead of leaving one per run behind."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def credentials(endpoint: str) -> dict:
    """The environment every process of a test (CLI, Ray nodes) gets to reach the server."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "resnet-search-test",
            "AWS_SECRET_ACCESS_KEY": "resnet-search-test", "AWS_DEFAULT_REGION": REGION,
            # nothing of the user's ~/.aws may take part
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def new_bucket(endpoint: str) -> SimpleNamespace:
    """A bucket of its own for one test; `fs` is an s3fs filesystem on the server."""
    import s3fs

    fs = s3fs.S3FileSystem(key="resnet-search-test", secret="resnet-search-test",
                           endpoint_url=endpoint, skip_instance_cache=True)
    name = f"rs-{uuid.uuid4().hex[:16]}"
    fs.mkdir(name)
    return SimpleNamespace(name=name, uri=f"s3://{name}", fs=fs, endpoint=endpoint)
