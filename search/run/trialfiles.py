"""Ray's per-trial files (`ray/<trial>/result.json`, `progress.csv`) kept whole across a pause.

Ray's JSON and CSV loggers copy a trial's file from the storage over the driver's staged copy
every time the trial starts: also when a paused trial goes on, or a failed one is retried, in
the same driver. The storage's copy is only as new as Ray's last sync (with each experiment
snapshot), so a trial that promotion ASHA paused and promoted between a report and that sync
lost the reports in between from Ray's files for good (its `result.json` read `[2]` where epochs
1 and 2 were trained). The staged copy is the newest whenever it exists; the storage's is
fetched only when it does not, which is a resumed driver's fresh staging folder.

The record reads the driver's journal, not these files (search/experiment/journal.py); they
are what Ray's own tools and a user's notebook read. Both loggers go into every new tuner's
callbacks, so Ray adds none of its own of these kinds; a tuner saved before keeps Ray's.

A driver killed while Ray uploads a snapshot leaves the storage with the new experiment state
and older trial files: Ray uploads file by file, and a trial that reported between two uploads
lost those reports from its storage files, whether or not it runs again (a trial paused at a
rung that the resumed search never promotes never starts again, so no logger touches its files).
`complete` adds them back from the journal at the end of a launch that resumed, after Ray's last
upload, for the trials an earlier driver ran, and adds to the journal what only Ray's copy has.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from typing import Any, Callable, Iterable, Optional

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.utils import flatten_dict

from search.engine import compat
from search.experiment.journal import journal_path, line_of, read_journal
from search.experiment.storage import StoragePath, as_path, is_local, read_text

RESULT_FILE, PROGRESS_FILE = "result.json", "progress.csv"  # Ray's names (EXPR_RESULT_FILE, ...)

log = logging.getLogger("resnet_search.trialfiles")


class _StagedFirst:
    def _restore_from_remote(self, file_name: str, trial: Any) -> None:  # Ray's hook (compat)
        if not os.path.exists(os.path.join(trial.local_path, file_name)):
            compat.fetch_trial_file(super(), file_name, trial)


class JsonLogger(_StagedFirst, JsonLoggerCallback):
    """Ray's result.json logger, fetching the storage's copy only when none is staged."""


class CSVLogger(_StagedFirst, CSVLoggerCallback):
    """Ray's progress.csv logger, fetching the storage's copy only when none is staged."""


def _epoch(result: dict) -> Optional[int]:
    epoch = result.get("epoch")
    return int(epoch) if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) \
        else None


def missing(kept: Iterable[dict], journal: Iterable[dict]) -> list[dict]:
    """The journal's results of epochs that Ray's file `kept` lacks, in the journal's order,
    each epoch once (pure)."""
    have = {_epoch(r) for r in kept}
    out, added = [], set()
    for result in journal:
        epoch = _epoch(result)
        if epoch is not None and epoch not in have and epoch not in added:
            out.append(result)
            added.add(epoch)
    return out


def completed_json(text: str, journal: list[dict]) -> Optional[str]:
    """result.json's text with the journal's missing results added (a line each, the file then
    ordered by epoch, each epoch's reports in the order they came), or None when it lacks
    none (pure)."""
    lines = [line for line in text.splitlines() if line.strip()]
    kept = []
    for line in lines:
        try:
            kept.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short: kept as it is, read by no one
            kept.append({})
    extra = missing(kept, journal)
    if not extra:
        return None
    rows = [(line, result) for line, result in zip(lines, kept)] + \
        [(json.dumps(result, default=str), result) for result in extra]
    rows.sort(key=lambda row: _epoch(row[1]) or 0)
    return "".join(f"{line}\n" for line, _ in rows)


def completed_csv(text: str, journal: list[dict]) -> Optional[str]:
    """progress.csv's text with the journal's missing results added as rows of its columns (as
    Ray's CSV logger writes them: flattened with "/", without the config), or None (pure)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    kept = [{"epoch": _number(row.get("epoch"))} for row in rows]
    extra = missing(kept, journal)
    if not extra:
        return None
    flat = [flatten_dict({k: v for k, v in r.items() if k != "config"}, delimiter="/")
            for r in extra]
    columns = list(csv.DictReader(io.StringIO(text)).fieldnames or flat[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    ordered = [(row, kept_row["epoch"]) for row, kept_row in zip(rows, kept)] + \
        [(row, _epoch(row)) for row in flat]
    ordered.sort(key=lambda pair: pair[1] or 0)
    writer.writerows(row for row, _ in ordered)
    return out.getvalue()


def _number(text: Optional[str]) -> Optional[float]:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


COMPLETERS: dict[str, Callable[[str, list[dict]], Optional[str]]] = {
    RESULT_FILE: completed_json, PROGRESS_FILE: completed_csv}


def _parsed(lines: Iterable[str]) -> list[dict]:
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short
            continue
    return out


def completed_journal(lines: list[str], ray_text: str) -> Optional[str]:
    """The journal's text with the results of Ray's result.json (`ray_text`) of epochs it lacks
    added at its end, or None when it lacks none (pure). The other way round from the files: a
    driver killed between Ray's upload of a finished trial and the journal's next put (an
    object store's journal is put every second) left the journal one epoch short of Ray's copy,
    and the trial, finished, is never run again."""
    extra = missing(_parsed(lines), _parsed(ray_text.splitlines()))
    if not extra:
        return None
    return "".join(f"{line}\n" for line in [*lines, *(line_of(r) for r in extra)])


def complete(ray_dir: StoragePath, directory: StoragePath, trial_ids: Iterable[str],
             keep: Callable[[], bool] = lambda: True) -> tuple[int, int]:
    """Make each trial's journal of the experiment `directory` and its Ray files in `ray_dir`
    hold every result either holds (see the module's docstring and `completed_journal`),
    while `keep()`. Returns (files rewritten, files that could not be): a file that cannot be
    read or written is logged and counted, never raised (the search is worth more)."""
    rewritten = failed = 0
    for trial_id in trial_ids:
        lines = read_journal(directory, trial_id)
        if lines is None:  # an experiment from before the journal: Ray's files are the record
            continue
        texts: dict[str, str] = {}  # each of Ray's files, read once
        path = journal_path(directory, trial_id)
        try:
            new = completed_journal(lines, _text(as_path(ray_dir) / trial_id, RESULT_FILE, texts))
            if new is not None and keep():
                _write(path, new)
                lines = new.splitlines()
                rewritten += 1
        except Exception as error:  # noqa: BLE001  any filesystem or client error
            failed += 1
            log.warning("could not complete %s from Ray's result.json: %s", path, error)
        journal = _parsed(lines)
        if not journal:
            continue
        for name, completed in COMPLETERS.items():
            path = as_path(ray_dir) / trial_id / name
            try:
                new = completed(_text(path.parent, name, texts), journal)
                if new is None or not keep():
                    continue
                _write(path, new)
                rewritten += 1
            except Exception as error:  # noqa: BLE001  any filesystem or client error
                failed += 1
                log.warning("could not complete %s from the journal: %s", path, error)
    return rewritten, failed


def _text(folder: StoragePath, name: str, texts: dict[str, str]) -> str:
    """The file `name` of a trial's folder ("" when there is none), read once into `texts`."""
    if name not in texts:
        try:
            texts[name] = read_text(folder / name, errors="replace")
        except FileNotFoundError:
            texts[name] = ""
    return texts[name]


def _write(path: StoragePath, text: str) -> None:
    """An object is put whole; a local file is written beside and renamed over, so a driver
    killed meanwhile leaves the old file, never half of the new one."""
    if not is_local(path):
        path.write_text(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.completing")
    aside.write_text(text)
    os.replace(aside, path)
