"""One driver per experiment: real processes racing, crashing and holding the lease."""

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from search.experiment.file_lease import FileLease, take_over
from search.experiment.lease import (
    LEASE_FILE, Holder, LeaseHeld, holder_from, implausible, is_stale, process_alive,
    process_start)


def read_holder(directory):
    return FileLease.read(directory / LEASE_FILE)

HOST = socket.gethostname()
NOW = 1_000_000.0


def holder(host=HOST, pid=4242, start=7.0, heartbeat_at=NOW, damaged=False) -> Holder:
    return Holder(host=host, pid=pid, pid_start=start, since=NOW - 500, heartbeat_at=heartbeat_at,
                  token="t", damaged=damaged)


def alive(pid, start):  # pid 4242 runs, started at tick 7
    return pid == 4242 and start in (7.0, None)


STALE = [
    # holder, stale?
    (holder(), False),  # same host, its process runs
    (holder(heartbeat_at=NOW - 3600), False),  # same host: a late heartbeat is not death
    (holder(pid=4243), True),  # same host, dead pid
    (holder(start=8.0), True),  # same host, the pid now belongs to another process
    (holder(start=None), False),  # no start time known (not Linux): the pid decides
    (holder(host="node-2"), False),  # another host, recent heartbeat
    (holder(host="node-2", heartbeat_at=NOW - 60), False),  # exactly the TTL: still held
    (holder(host="node-2", heartbeat_at=NOW - 61), True),
    (holder(host="node-2", pid=4243), False),  # another host's pids mean nothing here
    (holder(damaged=True, heartbeat_at=NOW - 5), False),  # being written
    (holder(damaged=True, heartbeat_at=NOW - 61), True),  # a crash mid-write
]


@pytest.mark.parametrize("found, stale", STALE)
def test_is_stale_table(found, stale):
    assert is_stale(found, now=NOW, this_host=HOST, pid_alive=alive, ttl_s=60) is stale


def test_process_alive():
    me = os.getpid()
    assert process_alive(me, process_start(me))
    assert process_alive(me, None)
    if process_start(me) is not None:  # Linux
        assert not process_alive(me, process_start(me) + 1)  # a reused pid
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid, None)


def _race(directory, barrier, results, go_home):
    barrier.wait()
    try:
        lease = FileLease.acquire(directory, heartbeat_s=0.05)
    except LeaseHeld as error:
        results.put(("held", os.getpid(), error.holder.pid, str(error)))
        return
    results.put(("won", os.getpid(), lease.taken_over and lease.taken_over.token, ""))
    go_home.wait(10)
    lease.release()


@pytest.mark.parametrize("racers, stale", [(2, False), (3, True)])
def test_processes_racing_one_wins(tmp_path, racers, stale):
    """Racing for a free lease, or to take over a stale one: each time exactly one wins."""
    context = multiprocessing.get_context("fork")
    for round_ in range(20):
        directory = tmp_path / f"round{round_}" / "exp"  # created by acquire, with parents
        if stale:
            directory.mkdir(parents=True)
            write_lease(directory, heartbeat_at=time.time() - 3600, token="crashed")
        barrier, results, go_home = context.Barrier(racers), context.Queue(), context.Event()
        processes = [context.Process(target=_race, args=(directory, barrier, results, go_home))
                     for _ in range(racers)]
        for process in processes:
            process.start()
        outcome = [results.get(timeout=20) for _ in processes]
        go_home.set()
        for process in processes:
            process.join(10)
            assert process.exitcode == 0
        won = [o for o in outcome if o[0] == "won"]
        held = [o for o in outcome if o[0] == "held"]
        assert len(won) == 1 and len(held) == racers - 1, outcome
        (_, winner, taken_over, _), = won
        # The racer that removed the stale lease may lose the create to one that found the
        # path empty: exactly one wins all the same, and only a remover reports a takeover.
        assert taken_over in (("crashed", None) if stale else (None,))
        for _, _, named, message in held:
            assert named == winner and f"pid {winner} on {HOST}" in message
        assert os.listdir(directory) == []  # released; no tombstone, guard or temp file left


HOLD = """
import sys, time
from search.experiment.file_lease import FileLease
lease = FileLease.acquire(sys.argv[1], heartbeat_s=0.05)
print("held", flush=True)
time.sleep(120)
"""


def test_lease_of_a_killed_process_is_taken_over(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld) as error:
            FileLease.acquire(tmp_path)
        assert error.value.holder.pid == child.pid
        assert f"kill -INT {child.pid} on {HOST}" in str(error.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with FileLease.acquire(tmp_path) as lease:
        assert lease.taken_over is not None and lease.taken_over.pid == child.pid
        assert lease.taken_over.describe().startswith(f"pid {child.pid} on {HOST}, since ")
        assert read_holder(tmp_path).token == lease.holder.token
        assert read_holder(tmp_path).pid == os.getpid()
    assert read_holder(tmp_path) is None
    assert os.listdir(tmp_path) == []  # no tombstone or temp file left


def write_lease(directory, **fields):
    data = {"host": "node-2", "pid": 4242, "pid_start": 7.0, "since": time.time() - 3600,
            "heartbeat_at": time.time(), "token": "theirs", **fields}
    (directory / LEASE_FILE).write_text(json.dumps(data))


def test_lease_of_another_host(tmp_path):
    write_lease(tmp_path, heartbeat_at=time.time() - 5)
    with pytest.raises(LeaseHeld) as error:
        FileLease.acquire(tmp_path, ttl_s=60)
    message = str(error.value)
    assert "pid 4242 on node-2" in message and "heartbeat 5s ago" in message
    assert "kill -INT 4242 on node-2" in message and "--name" in message and "since" in message
    assert read_holder(tmp_path).token == "theirs"  # untouched

    write_lease(tmp_path, heartbeat_at=time.time() - 120)
    with FileLease.acquire(tmp_path, ttl_s=60) as lease:
        assert lease.taken_over.host == "node-2" and lease.taken_over.token == "theirs"
        assert read_holder(tmp_path).host == HOST


def test_damaged_lease_file(tmp_path):
    path = tmp_path / LEASE_FILE
    path.write_text('{"host": "node-2", "pid": 42')  # a crash (or a write) mid-way
    with pytest.raises(LeaseHeld, match="being written"):
        FileLease.acquire(tmp_path, ttl_s=60)
    old = time.time() - 120
    os.utime(path, (old, old))
    with FileLease.acquire(tmp_path, ttl_s=60) as lease:
        assert lease.taken_over.damaged
        assert read_holder(tmp_path).token == lease.holder.token


def test_heartbeat_advances(tmp_path):
    with FileLease.acquire(tmp_path, heartbeat_s=0.05) as lease:
        first = read_holder(tmp_path)
        deadline = time.time() + 5
        while read_holder(tmp_path).heartbeat_at == first.heartbeat_at and time.time() < deadline:
            time.sleep(0.02)
        later = read_holder(tmp_path)
        assert later.heartbeat_at > first.heartbeat_at
        assert (later.since, later.token, later.pid) == (first.since, first.token, first.pid)
        assert not lease.lost


def test_a_holder_taken_over_notices_and_keeps_its_hands_off(tmp_path):
    lease = FileLease.acquire(tmp_path, heartbeat_s=0.05)
    write_lease(tmp_path, token="new-holder")  # what another launch's takeover leaves
    deadline = time.time() + 5
    while not lease.lost and time.time() < deadline:
        time.sleep(0.02)
    assert lease.lost
    time.sleep(0.2)  # no more heartbeats
    lease.release()
    lease.release()  # twice is fine
    assert read_holder(tmp_path).token == "new-holder"


def test_release(tmp_path):
    directory = tmp_path / "a" / "b"  # created, with its parents
    lease = FileLease.acquire(directory)
    assert lease.taken_over is None and read_holder(directory).token == lease.holder.token
    lease.release()
    lease.release()
    assert read_holder(directory) is None
    with FileLease.acquire(directory):  # free again
        with pytest.raises(LeaseHeld):  # one driver, even within one process
            FileLease.acquire(directory)


def test_a_guard_left_by_a_crashed_takeover_is_ignored(tmp_path):
    write_lease(tmp_path, heartbeat_at=time.time() - 3600)  # stale
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    guard = {"host": HOST, "pid": child.pid, "pid_start": 1.0, "since": time.time(),
             "heartbeat_at": time.time(), "token": "dead"}
    (tmp_path / f".{LEASE_FILE}.takeover").write_text(json.dumps(guard))
    with FileLease.acquire(tmp_path) as lease:
        assert lease.taken_over.host == "node-2"
        assert os.listdir(tmp_path) == [LEASE_FILE]


def test_a_live_takeover_in_progress_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr("search.experiment.file_lease.GUARD_WAIT_S", 0.1)
    write_lease(tmp_path, heartbeat_at=time.time() - 3600)  # stale, being taken over by:
    guard = {"host": "node-3", "pid": 77, "pid_start": None, "since": time.time(),
             "heartbeat_at": time.time(), "token": "busy"}
    (tmp_path / f".{LEASE_FILE}.takeover").write_text(json.dumps(guard))
    with pytest.raises(LeaseHeld, match="pid 77 on node-3"):
        FileLease.acquire(tmp_path)
    assert read_holder(tmp_path).host == "node-2"  # left for the launch taking it over


def test_takeover_puts_back_a_lease_moved_by_mistake(tmp_path):
    """Two launches judged the same stale lease; one took it over and wrote a fresh lease,
    which the other then moves aside: it must notice and put it back."""
    path = tmp_path / LEASE_FILE
    write_lease(tmp_path, token="fresh")
    fresh = path.read_bytes()
    assert take_over(path, judged=b'{"token": "the stale one"}') is False
    assert path.read_bytes() == fresh
    assert os.listdir(tmp_path) == [LEASE_FILE]
    assert take_over(path, judged=fresh) is True and os.listdir(tmp_path) == []


PLAUSIBLE = [
    # holder, start times known on this host, the problem (None: believed)
    (holder(), True, None),
    (holder(pid=99999999999), True, "pid 99999999999 is not a process id"),
    (holder(pid=0), True, "pid 0 is not a process id"),
    (holder(pid=-5), True, "pid -5 is not a process id"),
    (Holder(host=HOST, pid=1, pid_start=7.0, since=float("nan"), heartbeat_at=NOW, token="t"),
     True, "since is nan"),
    (Holder(host=HOST, pid=1, pid_start=7.0, since=1e300, heartbeat_at=NOW, token="t"), True,
     "it was taken after its last heartbeat"),
    (holder(host="node-2", heartbeat_at=NOW + 61), True, "its heartbeat is in the future"),
    (holder(host="node-2", heartbeat_at=NOW + 30), True, None),  # clock skew within the TTL
    (holder(host="node-2", heartbeat_at=float("inf")), True, "heartbeat_at is inf"),
    (holder(pid=1, start=None), True, "it names no process start time"),  # pid 1 never dies
    (holder(pid=1, start=None), False, None),  # a host without /proc: the pid decides
    (holder(host="node-2", start=None), True, None),  # another host's start times mean nothing
]


@pytest.mark.parametrize("found, known, problem", PLAUSIBLE)
def test_implausible_table(found, known, problem):
    assert implausible(found, now=NOW, this_host=HOST, ttl_s=60,
                       start_times_known=known) == problem


@pytest.mark.parametrize("edit", [
    {"pid": 99999999999}, {"since": float("nan")}, {"since": 1e300},
    {"heartbeat_at": time.time() + 10**6}, {"host": HOST, "pid": 1, "pid_start": None},
    {"pid": "four"}, {"heartbeat_at": None},
])
def test_a_hand_edited_lease_is_refused_briefly_then_taken_over(tmp_path, edit):
    """Never a traceback, never a refusal for ever: judged by its age on disk, as damaged."""
    write_lease(tmp_path, **edit)
    assert holder_from((tmp_path / LEASE_FILE).read_bytes(), 0.0).damaged
    with pytest.raises(LeaseHeld, match="unreadable or implausible"):
        FileLease.acquire(tmp_path, ttl_s=60)
    old = time.time() - 120
    os.utime(tmp_path / LEASE_FILE, (old, old))
    with FileLease.acquire(tmp_path, ttl_s=60) as lease:
        assert lease.taken_over.damaged and lease.taken_over.problem
        assert read_holder(tmp_path).token == lease.holder.token


def test_the_holder_writes_its_lease_anew_when_it_was_damaged(tmp_path):
    """A live driver whose lease file was garbled (by hand, by a tool) says it still holds it,
    rather than leaving it for the next launch to take over in a minute."""
    with FileLease.acquire(tmp_path, heartbeat_s=0.05) as lease:
        (tmp_path / LEASE_FILE).write_text("garbage")
        deadline = time.time() + 5
        while read_holder(tmp_path).damaged and time.time() < deadline:
            time.sleep(0.02)
        assert read_holder(tmp_path).token == lease.holder.token and not lease.lost
