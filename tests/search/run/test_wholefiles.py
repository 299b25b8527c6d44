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
from disks import small_filesystem
from search.run.wholefiles import (IN_MEMORY, PARTIAL, WholeFiles, partial_name,
                                    storage_filesystem)


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


# A writer killed halfway through a file, as SIGKILL kills Tune's driver: a snapshot file (kept
# in memory until closed) or one larger than that (streamed to its sibling, as a new file is).
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from search.run.wholefiles import storage_filesystem
path, size = Path(sys.argv[1]), int(sys.argv[2])
out = storage_filesystem(path.parent).open_output_stream(str(path))
out.write(b'{"trial_data": [' + b'x' * size)
out.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("size, sibling", [(250_000, False), (IN_MEMORY + 1, True)])
def test_a_writer_killed_midway_leaves_the_previous_file_whole(tmp_path, size, sibling):
    state = tmp_path / "experiment_state-x.json"
    state.write_text('{"trial_data": ["whole"]}')
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(state), str(size)],
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert killed.returncode == -signal.SIGKILL
    assert state.read_text() == '{"trial_data": ["whole"]}'
    left = [p for p in tmp_path.iterdir() if p != state]
    assert len(left) == int(sibling)
    if sibling:  # hidden, not matching Tune's pattern: no restore reads it
        assert left[0].name.startswith(".experiment_state-x.json.")
        assert left[0].name.endswith(PARTIAL) and left[0].stat().st_size > IN_MEMORY


def test_a_new_file_is_written_as_it_comes_and_a_killed_writer_leaves_only_its_sibling(
        tmp_path):
    checkpoint = tmp_path / "model.pt"
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(checkpoint), "1000"],
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert killed.returncode == -signal.SIGKILL
    left = list(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".model.pt.")
    assert left[0].stat().st_size == 1016  # what was written before the kill, unbuffered


@pytest.mark.parametrize("size", [100, IN_MEMORY + 1])
def test_a_file_that_cannot_replace_its_target_fails_and_leaves_no_sibling(tmp_path, size):
    target = tmp_path / "checkpoint_000001"
    target.mkdir()  # a folder where the file would go: the rename fails
    out = storage_filesystem(tmp_path).open_output_stream(str(target))
    out.write(b"x" * size)
    with pytest.raises(OSError):
        out.close()
    assert target.is_dir() and os.listdir(tmp_path) == [target.name]


def test_a_full_disk_takes_a_snapshot_file_in_place_and_a_checkpoint_fails_with_it(tmp_path):
    """A disk filled to its last blocks has no room for a second copy of a snapshot file beside
    the first: it is rewritten in place, as pyarrow wrote it, over the old file's blocks. A
    checkpoint that does not fit fails, and leaves nothing behind."""
    with small_filesystem(tmp_path / "disk", "256k") as disk:
        state = disk.path / "experiment_state-x.json"
        state.write_bytes(b"a" * 150_000)
        filler = disk.path / "filler"
        with open(filler, "wb", buffering=0) as out:  # the rest of the disk, to its last block
            with pytest.raises(OSError, match="No space left on device"):
                while True:
                    out.write(b"f" * 4096)
        fs = storage_filesystem(disk.path)
        with fs.open_output_stream(str(state)) as out:
            out.write(b"b" * 150_000)
        assert state.read_bytes() == b"b" * 150_000
        checkpoint = disk.path / "model.pt"
        with pytest.raises(OSError, match="No space left on device"):
            with fs.open_output_stream(str(checkpoint)) as out:
                out.write(b"c" * (IN_MEMORY + 1))
        assert sorted(os.listdir(disk.path)) == ["experiment_state-x.json", "filler"]


def test_a_copy_onto_a_full_disk_fails_where_pyarrow_sees_it_and_leaves_no_part(tmp_path):
    """Tune uploads with pyarrow's C++ `copy_files`, which ignores what a Python stream's
    close raises: a file that failed only there was reported copied, cut short (a checkpoint a
    trial then failed to load, "[Errno 22] Invalid argument") or not there at all. Every
    failure is raised by a write instead: the copy fails as pyarrow's own local copy does."""
    source = tmp_path / "checkpoint"
    source.mkdir()
    for name, size in (("a.bin", 100_000), ("model.pt", 300_000), ("b.bin", 50_000)):
        (source / name).write_bytes(os.urandom(size))
    with small_filesystem(tmp_path / "disk", "256k") as disk:
        for kind, fs in (("ours", storage_filesystem(disk.path)),
                         ("pyarrow", pyarrow.fs.LocalFileSystem())):
            target = disk.path / kind
            target.mkdir()
            with pytest.raises(OSError, match="[Nn]o space left on device"):
                pyarrow.fs.copy_files(str(source), str(target), destination_filesystem=fs,
                                      use_threads=False)
            if kind == "ours":  # what is there is whole; the file that failed is not there
                for copied in target.iterdir():
                    assert copied.read_bytes() == (source / copied.name).read_bytes()
                assert not [p for p in target.iterdir() if p.name.endswith(PARTIAL)]
            for copied in target.iterdir():
                copied.unlink()


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
