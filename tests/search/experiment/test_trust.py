"""Whether an experiment's pickled state may be restored: the rule (owner, mode -> problem) as a
table, then the walk over a real directory tree laid out as Ray lays out an experiment."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from search.experiment import trust

ME, OTHER, ROOT = 1000, 1001, 0
SHARED_GID = pwd.getpwnam("nobody").pw_gid  # nogroup: not the private group of the owner

RULE = [
    # owner, mode, private group, expected reason (None: trusted)
    (ME, 0o644, False, None),
    (ME, 0o600, False, None),
    (ME, 0o755, False, None),
    (ROOT, 0o644, False, None),  # root may write anything anyway
    (ME, 0o664, False, "is writable by its group"),
    (ME, 0o775, False, "is writable by its group"),
    (ME, 0o664, True, None),  # the owner's private group (umask 002): nobody else is in it
    (ME, 0o666, True, "is writable by every user"),  # a private group does not cover others
    (ME, 0o646, False, "is writable by every user"),
    (ME, 0o1777, False, "is writable by every user"),  # sticky: others still add files
    (OTHER, 0o644, False, "is not owned by you"),
    (OTHER, 0o600, True, "is not owned by you"),  # whoever owns it may write it
    (ROOT, 0o666, False, "is writable by every user"),
]


@pytest.mark.parametrize("owner,mode,private,expected", RULE)
def test_the_rule_trusts_only_what_nobody_else_could_write(owner, mode, private, expected):
    assert trust.problem(owner, mode, ME, private) == expected


def test_a_shared_group_is_not_a_private_one():
    nobody = pwd.getpwnam("nobody")
    # nobody's group is nogroup: another name, so nobody cannot tell who else is in it.
    assert not trust.is_private_group(nobody.pw_gid, nobody.pw_uid)
    assert not trust.is_private_group(nobody.pw_gid, 0)
    assert not trust.is_private_group(2_000_000_000, 0)  # a gid with no name


# --- the walk over an experiment directory -----------------------------------------------------

def experiment(tmp_path: Path) -> Path:
    """What Ray leaves in storage_path/NAME (the files that matter here), owned by this user."""
    root = tmp_path / "runs" / "exp"
    trial = root / "a1b2c3"
    (trial / "checkpoint_000002").mkdir(parents=True)
    for name in ("tuner.pkl", "experiment_state-2026-01-01_00-00-00.json",
                 "searcher-state-2026-01-01_00-00-00.pkl", "resnet_search.json",
                 "search_gen_state-2026-01-01_00-00-00.json",
                 "basic-variant-state-2026-01-01_00-00-00.json"):
        (root / name).write_bytes(b"x")
    for name in ("params.pkl", "params.json", "result.json", "error.pkl"):
        (trial / name).write_bytes(b"x")
    (trial / "checkpoint_000002" / "state.pt").write_bytes(b"x")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def test_an_experiment_written_by_its_user_alone_is_trusted(tmp_path):
    assert trust.untrusted(experiment(tmp_path)) == []


@pytest.mark.parametrize("relative", [
    "tuner.pkl", "experiment_state-2026-01-01_00-00-00.json",
    "searcher-state-2026-01-01_00-00-00.pkl", "a1b2c3/params.pkl", "a1b2c3/error.pkl",
    # the searcher wrappers' state: Tune unpickles it, whatever its name says
    "search_gen_state-2026-01-01_00-00-00.json"])
def test_a_group_writable_file_that_ray_unpickles_is_refused_by_name(tmp_path, relative):
    root = experiment(tmp_path)
    os.chown(root / relative, -1, SHARED_GID)  # a group others are in
    (root / relative).chmod(0o664)
    problems = trust.untrusted(root)
    assert len(problems) == 1, problems
    line = problems[0]
    assert f"file {root / relative} is writable by its group" in line
    assert "mode 0664" in line and "owner root (uid 0), group nogroup" in line
    assert f"`chmod go-w {root / relative}`" in line
    assert "\n" not in line


def test_group_write_in_the_owners_private_group_is_trusted_only_there(tmp_path):
    # With umask 002 (Debian/Ubuntu's user-private groups) every file Ray writes is 0664.
    root = experiment(tmp_path)
    for path in [root, *root.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o020)
    st = root.stat()
    private = trust.is_private_group(st.st_gid, st.st_uid)
    assert (trust.untrusted(root) == []) is private
    for path in [root, *root.rglob("*")]:
        os.chown(path, -1, SHARED_GID)
    assert len(trust.untrusted(root)) == 8  # 2 directories, 6 pickles


def test_files_ray_does_not_unpickle_are_not_judged(tmp_path):
    root = experiment(tmp_path)
    for relative in ("resnet_search.json", "a1b2c3/result.json", "a1b2c3/params.json",
                     "a1b2c3/checkpoint_000002/state.pt",
                     "basic-variant-state-2026-01-01_00-00-00.json"):
        (root / relative).chmod(0o666)
    (root / "a1b2c3" / "checkpoint_000002").chmod(0o777)  # holds no pickle
    assert trust.untrusted(root) == []


def test_a_file_owned_by_another_user_is_refused_even_when_read_only(tmp_path):
    root = experiment(tmp_path)
    nobody = pwd.getpwnam("nobody")
    os.chown(root / "tuner.pkl", nobody.pw_uid, nobody.pw_gid)
    (root / "tuner.pkl").chmod(0o444)
    [line] = trust.untrusted(root)
    assert f"file {root / 'tuner.pkl'} is not owned by you" in line
    assert f"owner nobody (uid {nobody.pw_uid})" in line and "mode 0444" in line
    assert "check who wrote it" in line and "`chown root " in line


@pytest.mark.parametrize("relative", ["", "a1b2c3"])
def test_a_directory_others_may_write_to_is_refused(tmp_path, relative):
    # Whoever may write the directory may replace the pickle in it.
    root = experiment(tmp_path)
    directory = root / relative if relative else root
    directory.chmod(0o777)
    problems = trust.untrusted(root)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"directory {directory} is writable by every user")


def test_a_linked_pickle_is_judged_by_its_target_and_the_targets_directory(tmp_path):
    root = experiment(tmp_path)
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir(mode=0o777)
    elsewhere.chmod(0o1777)
    (elsewhere / "tuner.pkl").write_bytes(b"x")
    (root / "tuner.pkl").unlink()
    (root / "tuner.pkl").symlink_to(elsewhere / "tuner.pkl")
    problems = trust.untrusted(root)
    assert [p.split(" is ")[0] for p in problems] == [f"directory {elsewhere}"], problems


def test_the_rule_is_applied_for_the_given_user(tmp_path):
    # Root's files are trusted by everyone; a user's own files only by that user.
    root = experiment(tmp_path)
    assert trust.untrusted(root, me=OTHER) == []
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(root / "tuner.pkl", nobody, -1)
    assert trust.untrusted(root, me=nobody) == []
    assert len(trust.untrusted(root, me=OTHER)) == 1


def test_the_refusal_names_the_experiment_the_first_problem_and_how_many_more(tmp_path):
    root = experiment(tmp_path)
    for path in [root, *root.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o022)
    problems = trust.untrusted(root)
    assert len(problems) == 8  # 2 directories, 6 pickles
    text = trust.refusal(root, problems)
    assert text.startswith(f"refusing to resume the experiment in {root}: directory {root} ")
    assert text.endswith("(and 7 more like it)") and "\n" not in text


def test_a_loop_of_linked_directories_ends(tmp_path):
    root = experiment(tmp_path)
    (root / "a1b2c3" / "back").symlink_to(root)
    assert trust.untrusted(root) == []
