"""`resnet-search ui` waits for the `mlflow ui` it started as long as that process lives (a
loaded machine only slows its start), saying what it waits for; a process that exits ends the
wait at once (search/tracking/ui.py: wait_ready). A real process stands in for the server: a
Python HTTP server that starts answering only after a delay, and one that exits."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ports import free_port

from search.tracking.ui import UIError, stop_server, wait_ready

# Answers /health after DELAY seconds, as `mlflow ui` does once it has imported and migrated.
LATE_SERVER = """
import http.server, sys, time
time.sleep(float(sys.argv[2]))
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"OK")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def test_a_server_that_is_slow_to_answer_is_waited_for_while_it_lives(tmp_path):
    port = free_port()
    # 7 s: longer than the 5 s after which the wait says what it waits for, on any machine.
    proc = subprocess.Popen([sys.executable, "-c", LATE_SERVER, str(port), "7"],
                            start_new_session=True)
    said: list[str] = []
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", None, note=said.append)
        assert proc.poll() is None  # it answered; nothing gave up on it
    finally:
        stop_server(proc)
    assert said and said[0].startswith(f"waiting for mlflow ui to answer on "
                                       f"http://127.0.0.1:{port} (")
    assert "its process is starting" in said[0] and " CPU" in said[0]  # with the machine's load


@pytest.mark.parametrize("log", [None, "server.log"])
def test_a_server_that_exits_before_it_answers_ends_the_wait_at_once(tmp_path, log):
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    where = tmp_path / log if log else None
    with pytest.raises(UIError) as raised:
        wait_ready(proc, f"http://127.0.0.1:{free_port()}", where)
    assert str(raised.value) == ("mlflow ui exited with 3 before it answered"
                                 + (f"; its output is in {where}" if log else ""))
