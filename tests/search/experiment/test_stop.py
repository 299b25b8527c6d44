"""The stop request: written atomically, read by the driver, cleared by the next launch."""

from search.experiment.stop import STOP_FILE, clear_stop, request_stop, stop_request, who


def test_a_request_names_who_asked_until_cleared(tmp_path):
    assert stop_request(tmp_path) is None
    path = request_stop(tmp_path, by="alice@laptop (pid 7)")
    assert path == tmp_path / STOP_FILE and not list(tmp_path.glob(".*.tmp"))
    assert stop_request(tmp_path) == "alice@laptop (pid 7)"
    clear_stop(tmp_path)
    assert stop_request(tmp_path) is None
    clear_stop(tmp_path)  # clearing twice is fine: a launch clears whatever is there


def test_by_default_the_request_names_this_user_host_and_pid(tmp_path):
    request_stop(tmp_path)
    assert stop_request(tmp_path) == who() and "@" in who() and "(pid " in who()


def test_a_damaged_request_is_still_a_request(tmp_path):
    (tmp_path / STOP_FILE).write_text('{"by": "ali')  # cut short
    assert stop_request(tmp_path) == "an unreadable stop request"
