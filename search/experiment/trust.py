"""Whether Ray's saved experiment state may be restored: only what the current user alone could
have written.

Resuming unpickles what Ray saved under storage_path/NAME: `tuner.pkl` (plain pickle), the
searcher's and the callbacks' states (`searcher-state-*.pkl`, `callback-states-*.pkl`), the
trials embedded in `experiment_state-*.json` (cloudpickle blobs inside the JSON) and each trial's
pickled error (`<trial>/error.pkl`). Unpickling runs whatever code the file names, so a file
there that someone else wrote (storage_path on shared storage, a group-writable directory) would
run their code as the user who resumes, on every driver that resumes it. Before a restore every
such file, and every directory on the way down to it, must be owned by the current user (or
root) and writable by nobody else. Reading the owner and mode is all: nothing is opened.

A group-writable entry is allowed when its group is its owner's private group (a group of the
same name with no other member: Debian and Ubuntu give each user one, with umask 002), since
then nobody else is in it.

An object store has no owner or mode per object: there the trust boundary is the bucket's
policy (who may write under the prefix), which this process cannot read, so nothing is refused
here and the README says to keep the prefix writable by the search's own credentials only.
"""

from __future__ import annotations

import fnmatch
import grp
import os
import pwd
import stat
from pathlib import Path
from typing import Optional

from search.experiment.storage import StoragePath, is_local

# Files of an experiment directory that Ray unpickles on restore (at any depth: trial dirs).
# (`search_gen_state-*.json`, the searcher wrappers' state, is a pickle despite its name.)
PICKLED = ("*.pkl", "experiment_state-*.json", "search_gen_state-*.json")
# Root may write anything anyway; a file it owns is no one else's.
ROOT = 0


def problem(owner: int, mode: int, me: int, private_group: bool = False) -> Optional[str]:
    """Why an entry with this owner uid and mode must not be trusted by user `me`, or None.
    The rule: owned by `me` or root, and not writable by others nor by its group (unless the
    group is the owner's private group)."""
    if owner not in (me, ROOT):
        return "is not owned by you"
    if mode & stat.S_IWOTH:
        return "is writable by every user"
    if mode & stat.S_IWGRP and not private_group:
        return "is writable by its group"
    return None


def is_private_group(gid: int, owner: int) -> bool:
    """The group is the owner's user-private group: same name as the owner, no other member
    listed, and no other user with it as primary group."""
    try:
        name = pwd.getpwuid(owner).pw_name
        group = grp.getgrgid(gid)
    except KeyError:  # an unnamed uid or gid: nothing says the group is private
        return False
    if group.gr_name != name or set(group.gr_mem) - {name}:
        return False
    return all(user.pw_gid != gid or user.pw_uid == owner for user in pwd.getpwall())


def _name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _what_to_do(path: Path, owner: int, me: int) -> str:
    if owner not in (me, ROOT):
        return (f"check who wrote it; if you trust its content, `chown {_user(me)} {path}`, "
                "otherwise move the experiment aside and launch it under a new --name")
    return (f"check who wrote it, then `chmod go-w {path}` (or move the experiment aside and "
            "launch it under a new --name)")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def describe(path: Path, st: os.stat_result, me: int, reason: str) -> str:
    """One line: the entry, its owner and mode, why that is refused, and what to do."""
    kind = "directory" if stat.S_ISDIR(st.st_mode) else "file"
    return (f"{kind} {path} {reason}: owner {_name(st.st_uid)}, group {_group(st.st_gid)}, "
            f"mode {stat.S_IMODE(st.st_mode):04o}; Ray unpickles the experiment's state when it "
            f"resumes, which runs any code in it, so only you ({_user(me)}) may be able to "
            f"write it; {_what_to_do(path, st.st_uid, me)}")


def _pickled(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in PICKLED)


def untrusted(experiment: StoragePath, me: Optional[int] = None) -> list[str]:
    """One line per file Ray would unpickle from `experiment`, or directory holding one, that
    user `me` (default: this process's) must not trust; [] when it may be restored. Symbolic
    links are judged by what they point to (what Ray would read), and by the directory that
    holds the target. An object store: [] (its bucket policy is the boundary, see above)."""
    if not isinstance(experiment, str) and not is_local(experiment):
        return []
    me = os.geteuid() if me is None else me
    found: list[str] = []
    judged: set[tuple[int, int]] = set()
    private: dict[tuple[int, int], bool] = {}

    def judge(path: Path) -> None:
        try:
            st = path.stat()
        except OSError:  # gone meanwhile: nothing to unpickle
            return
        if (st.st_dev, st.st_ino) in judged:
            return
        judged.add((st.st_dev, st.st_ino))
        mode = stat.S_IMODE(st.st_mode)
        key = (st.st_gid, st.st_uid)
        if mode & stat.S_IWGRP and key not in private:
            private[key] = is_private_group(*key)
        reason = problem(st.st_uid, mode, me, private.get(key, False))
        if reason:
            found.append(describe(path, st, me, reason))

    root = Path(experiment)
    walked: set[tuple[int, int]] = set()
    _first_visit(root, walked)
    for directory, subdirs, files in os.walk(root, followlinks=True):
        here = Path(directory)
        # A linked directory is walked once (a loop of links would never end).
        subdirs[:] = sorted(d for d in subdirs if _first_visit(here / d, walked))
        pickled = [here / name for name in sorted(files) if _pickled(name)]
        if not pickled:
            continue
        # The directories from the experiment down to here: whoever may write one of them may
        # replace what it holds.
        parts = here.relative_to(root).parts
        for depth in range(len(parts) + 1):
            judge(root.joinpath(*parts[:depth]))
        for file in pickled:
            judge(file)
            if file.is_symlink():
                judge(file.resolve().parent)
    return found


def _first_visit(directory: Path, walked: set[tuple[int, int]]) -> bool:
    try:
        st = directory.stat()
    except OSError:
        return False
    if (st.st_dev, st.st_ino) in walked:
        return False
    walked.add((st.st_dev, st.st_ino))
    return True


def refusal(experiment: Path, problems: list[str]) -> str:
    """The message a refused restore gives: the first problem in full, how many more."""
    more = f" (and {len(problems) - 1} more like it)" if len(problems) > 1 else ""
    return f"refusing to resume the experiment in {experiment}: {problems[0]}{more}"
