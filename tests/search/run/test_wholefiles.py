"""The filesystem Tune writes a local experiment through: pyarrow's copy of a folder lands the
same bytes as pyarrow's local filesystem, and a writer killed midway leaves the old file whole."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.fs
import pytest

from search.experiment.storage import object_path
from search.run.wholefiles import PARTIAL, WholeFiles, partial_name, storage_filesystem


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_copied_folder_is_the_same_bytes_and_modes_as_pyarrows_own_copy(tmp_path):
    source = tmp_path / "staging"
    (source / "trial" / "checkpoint_000001").mkdir(parents=True)
    (source / "experiment_state-x.json").write_text('{"trial_data": []}')
    (source / "trial" / "checkpoint_000001" / "model.pt").write_bytes(os.urandom(300_000))
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    # Ray's call: a chunk size larger than the files, so each is written in one go.
    pyarrow.fs.copy_files(str(source), str(ours), destination_filesystem=storage_filesystem(ours),
                          chunk_size=64 * 1024 * 1024)
    pyarrow.fs.copy_files(str(source), str(theirs),
                          destination_filesystem=pyarrow.fs.LocalFileSystem())
    assert _tree(ours) == _tree(theirs) and len(_tree(ours)) == 2
    assert not [p for p in ours.rglob("*") if p.name.endswith(PARTIAL)]


def test_a_file_is_written_again_whole_and_a_missing_folder_is_refused_as_pyarrows_is(tmp_path):
    fs = storage_filesystem(tmp_path)
    for text in (b"first, and longer than the second", b"second"):
        with fs.open_output_stream(str(tmp_path / "state.json")) as out:
            out.write(text)
    assert (tmp_path / "state.json").read_bytes() == b"second"
    fs.copy_file(str(tmp_path / "state.json"), str(tmp_path / "copy.json"))
    assert (tmp_path / "copy.json").read_bytes() == b"second"
    with pytest.raises(FileNotFoundError):
        fs.open_output_stream(str(tmp_path / "missing" / "state.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.json", "state.json"]


# A writer of a new snapshot killed halfway through it, as SIGKILL kills Tune's driver.
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from search.run.wholefiles import storage_filesystem
path = Path(sys.argv[1])
out = storage_filesystem(path.parent).open_output_stream(str(path))
out.write(b'{"trial_data": [' + b'"x", ' * 50_000)
out.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_midway_leaves_the_previous_file_whole(tmp_path):
    state = tmp_path / "experiment_state-x.json"
    state.write_text('{"trial_data": ["whole"]}')
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(state)],
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert killed.returncode == -signal.SIGKILL
    assert state.read_text() == '{"trial_data": ["whole"]}'
    (partial,) = [p for p in tmp_path.iterdir() if p != state]
    # Hidden and not matching Tune's pattern: no restore reads it.
    assert partial.name.startswith(".experiment_state-x.json.") and partial.name.endswith(PARTIAL)
    assert partial.stat().st_size > 100_000  # it was killed writing, not before


def test_the_partial_name_is_a_hidden_sibling_and_unique():
    one, two = partial_name("/runs/e/ray/searcher-state-x.pkl"), partial_name(
        "/runs/e/ray/searcher-state-x.pkl")
    assert os.path.dirname(one) == "/runs/e/ray" and one != two
    assert os.path.basename(one).startswith(".searcher-state-x.pkl.") and one.endswith(PARTIAL)


def test_the_workers_get_the_same_filesystem_and_an_object_store_keeps_rays():
    fs = storage_filesystem(Path("/runs"))
    # Tune pickles the storage context to the workers that upload checkpoints.
    again = pickle.loads(pickle.dumps(fs))
    assert isinstance(again.handler, WholeFiles) and again.equals(fs)
    assert storage_filesystem(object_path("s3://bucket/runs")) is None
