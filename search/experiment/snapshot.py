"""Ray's experiment snapshot as a killed driver can leave it: each file whole, or cut short.

Tune writes its snapshot (`experiment_state-*.json`, the searcher's `searcher-state-*.pkl` and
its wrappers' `search_gen_state-*.json` (a pickle), the callbacks' `callback-states-*.pkl`)
atomically into a staging folder of the driver's Ray session and then copies that folder into
the experiment's `ray/` folder with pyarrow's `copy_files`. Through pyarrow's local filesystem
that copy wrote each file in place, and a driver killed during it left the file it was copying
cut short (CI caught it twice: a cut-short callbacks file made Tune start the experiment anew
over a restored searcher; a cut-short experiment state made the resume impossible). Tune now
writes through `search/run/wholefiles.py`, each file whole or not at all; what is read here is
what an experiment saved before that, or a filesystem whose rename is not atomic, can still
leave.

Before a restore the launch reads each file of the snapshot Tune restores (the newest of each
kind, by name):
- a cut-short callbacks file is set aside (renamed `NAME.cut-short`: kept, and no longer matching
  Tune's pattern); Tune then gives the callbacks the previous session's state or none, and they
  rebuild what they keep (the mirror re-finds its runs by tag; the ledger is the record's);
- a cut-short experiment state or searcher state (the sampler's whole history) cannot be
  replaced: the launch refuses to resume, names the file and changes nothing.
Whether a file is whole is read without running anything: a pickle's opcodes are walked
(`pickletools`), never unpickled; JSON is parsed.

An object store writes an object whole or not at all: only a directory is checked.
"""

from __future__ import annotations

import json
import pickletools
from pathlib import Path
from typing import Optional

from search.experiment.storage import StoragePath, is_local

# Tune's snapshot files, each restored from the newest of its kind; those of the callbacks can be
# done without, the others cannot.
CALLBACKS = "callback-states-*.pkl"
ESSENTIAL = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")
SET_ASIDE = ".cut-short"


def cut_short(name: str, data: bytes) -> bool:
    """Whether a snapshot file's bytes end before its content does (pure): JSON that does not
    parse (the experiment state), a pickle whose opcodes run out before STOP (the others, also
    `search_gen_state-*.json`, which Tune pickles), or an empty file."""
    if not data:
        return True
    if name.startswith("experiment_state-"):
        try:
            json.loads(data)
        except ValueError:
            return True
        return False
    try:
        for _ in pickletools.genops(data):
            pass
    except ValueError:  # "pickle exhausted before seeing STOP", or an opcode cut in two
        return True
    return False


def _newest_cut_short(folder: Path, pattern: str) -> Optional[Path]:
    found = sorted(folder.glob(pattern))
    return found[-1] if found and cut_short(found[-1].name, found[-1].read_bytes()) else None


def damaged(ray_directory: StoragePath) -> list[str]:
    """The names of the snapshot files a restore needs that a killed driver left cut short
    (the newest of each essential kind); [] for an object store or a missing folder."""
    if not is_local(ray_directory) or not Path(ray_directory).is_dir():
        return []
    return [found.name for pattern in ESSENTIAL
            if (found := _newest_cut_short(Path(ray_directory), pattern)) is not None]


def set_aside_cut_short(ray_directory: StoragePath) -> list[str]:
    """Rename each cut-short callbacks file of a local `ray/` folder to NAME.cut-short, newest
    first until a whole one is the newest; the names set aside."""
    if not is_local(ray_directory) or not Path(ray_directory).is_dir():
        return []
    found = []
    while (cut := _newest_cut_short(Path(ray_directory), CALLBACKS)) is not None:
        cut.rename(cut.with_name(cut.name + SET_ASIDE))
        found.append(cut.name)
    return found
