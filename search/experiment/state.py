"""The record's state file `<directory>/resnet_search.json`: plain JSON, written atomically.

Atomic (temp file, fsync, rename; on an object store one PUT, which is atomic by itself) because
the driver can be killed at any moment, and a state file cut in half would make the experiment
unreadable. Every file of the record is read through
`read_json`, so a damaged one always says which file and what to do, never a traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from search.experiment.storage import StoragePath, as_path, is_local, read_text

STATE_FILE = "resnet_search.json"
FORMAT = 2  # 1 was the unversioned file of the previous layout (see OldRecord)


class Status(str, Enum):
    RUNNING = "running"  # a driver is (or was, until it crashed) running it
    FINISHED = "finished"  # every trial ended: nothing left to run
    INTERRUPTED = "interrupted"  # stopped by the user (Ctrl+C, SIGTERM): resumable
    ABORTED = "aborted"  # stopped by fail-fast: its searcher was told to finish, not resumable


@dataclass
class State:
    name: str
    spec_hash: str
    parent_run_id: str
    tracking_uri: str
    status: Status
    created_at: float
    updated_at: float
    reason: Optional[str] = None  # why aborted/interrupted: "SIGINT", the abort summary
    format: int = FORMAT
    # Each launch that gave the experiment a larger budget: {"at": time, "changes": [...]}.
    extended: list = field(default_factory=list)
    # Where a warm-started search's knowledge came from (search.experiment.warm), or None.
    warm_start: Optional[dict] = None


class DamagedRecord(Exception):
    """A record file that cannot be read. The message names the file and what to do."""


class OldRecord(DamagedRecord):
    """A state file of the layout before this version: its experiment cannot be resumed."""


def _what_to_do(path: Path) -> str:
    return (f"Ray's state next to it is untouched: restore {path.name} from a backup to resume "
            f"the experiment, or move {path.parent} away (or launch under a new --name) to "
            "start a new one")


def damaged(path: Path, problem: str) -> DamagedRecord:
    return DamagedRecord(f"{path} is damaged ({problem}); {_what_to_do(path)}")


def write_json_atomic(path: StoragePath, obj: Any) -> None:
    """Write `obj` as JSON so that a reader sees the old file or the new one, never half."""
    path = as_path(path)
    if not is_local(path):  # an object is replaced whole by a PUT
        path.write_text(json.dumps(obj, indent=2, sort_keys=True))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory: os.replace is only atomic within one filesystem.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(obj, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: StoragePath) -> Optional[Any]:
    """The JSON in `path`, or None when there is no such file; DamagedRecord when unreadable."""
    path = as_path(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise damaged(path, f"cannot be read: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        problem = "it is empty" if not text.strip() else f"not valid JSON: {error}"
        raise damaged(path, problem) from None


_TYPES: dict[str, tuple] = {
    "format": (int,), "name": (str,), "spec_hash": (str,), "parent_run_id": (str,),
    "tracking_uri": (str,), "status": (str,), "created_at": (int, float),
    "updated_at": (int, float), "reason": (str, type(None)), "extended": (list,),
    "warm_start": (dict, type(None)),
}
_OPTIONAL = {"reason", "extended", "warm_start"}  # a record written before them has none


def state_from(data: Any, path: Path) -> State:
    """A State from the parsed file, or the reason it is not one."""
    if not isinstance(data, dict):
        raise damaged(path, f"it holds a JSON {type(data).__name__}, not an object")
    if "format" not in data:
        raise OldRecord(
            f"{path} was written by an older version of resnet-search; experiments from before "
            f"this version cannot be resumed: launch under a new --name, or move {path.parent} "
            "away to start the experiment anew")
    missing = [k for k in _TYPES if k not in data and k not in _OPTIONAL]
    if missing:
        raise damaged(path, f"missing {', '.join(missing)}")
    for key, types in _TYPES.items():
        value = data.get(key)
        if key in data and (not isinstance(value, types) or isinstance(value, bool)):
            raise damaged(path, f"{key} is {value!r}, not {' or '.join(t.__name__ for t in types)}")
    if data["format"] != FORMAT:
        raise damaged(path, f"format is {data['format']}, but this version of resnet-search "
                            f"reads format {FORMAT}")
    try:
        status = Status(data["status"])
    except ValueError:
        raise damaged(path, f"status is {data['status']!r}, not one of "
                            f"{', '.join(s.value for s in Status)}") from None
    fields = {k: data[k] for k in _TYPES if k != "status" and k in data}
    fields.update(created_at=float(data["created_at"]), updated_at=float(data["updated_at"]))
    return State(**fields, status=status)


def read_state(directory: StoragePath) -> Optional[State]:
    path = as_path(directory) / STATE_FILE
    data = read_json(path)
    return None if data is None else state_from(data, path)


def write_state(directory: StoragePath, state: State) -> None:
    write_json_atomic(as_path(directory) / STATE_FILE, {**asdict(state), "status": state.status.value})
