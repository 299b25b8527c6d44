"""What a node answers when the launch asks it about the files trials read (search/remote/
cluster.py `_reads`, run there by a pinned task), which files each dataset needs
(search/run/checks.py), and how `ask_every_node` reports a node that fails or does not answer
(a local one-node Ray)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import ray

from resnet_core.config import DataConfig
from resnet_core.data import DATASETS
from search.remote import cluster
from search.remote.cluster import _creatable, _reads, _sees
from search.run.raystart import give_ray_time
from search.run.checks import DATA_FILES, NO_FILES, data_fix, data_paths, trial_nodes
from search.spec.model import Resources


def test_every_dataset_of_the_registry_says_what_a_node_must_have():
    # A new dataset must not slip past the check unnoticed: it needs a row here or a reason.
    assert set(DATA_FILES) | NO_FILES == set(DATASETS)
    assert not set(DATA_FILES) & NO_FILES


def test_cifar_needs_the_batch_files_torchvision_opens(tmp_path):
    paths = data_paths(DataConfig(dataset="cifar10", root=str(tmp_path)))
    folder = tmp_path / "cifar-10-batches-py"
    assert paths[:2] == [f"{tmp_path}/", f"{folder}/"]
    assert {Path(p).name for p in paths[2:]} == {
        "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
        "test_batch", "batches.meta"}
    folder.mkdir()
    for path in paths[2:]:
        open(path, "wb").close()
    assert _reads(paths) is None
    os.unlink(folder / "data_batch_3")
    assert _reads(paths) == f"{folder}/data_batch_3: missing"


def test_imagefolder_needs_its_train_folder(tmp_path):
    paths = data_paths(DataConfig(dataset="imagefolder", root=str(tmp_path / "imgs")))
    assert _reads(paths) == f"{tmp_path}/imgs: missing"
    (tmp_path / "imgs").mkdir()
    assert _reads(paths) == f"{tmp_path}/imgs/train: missing"
    (tmp_path / "imgs" / "train").write_text("a file, not a folder")
    assert _reads(paths) == f"{tmp_path}/imgs/train: not a directory"
    (tmp_path / "imgs" / "train").unlink()
    (tmp_path / "imgs" / "train" / "cat").mkdir(parents=True)
    assert _reads(paths) is None


def test_a_root_with_a_tilde_is_the_home_of_the_process_that_asks():
    assert data_paths(DataConfig(dataset="imagefolder", root="~/d"))[0] == \
        os.path.expanduser("~/d") + "/"


def test_generated_datasets_read_no_files():
    assert data_paths(DataConfig(dataset="digits")) == []
    assert data_paths(DataConfig(dataset="synthetic")) == []


def test_with_download_a_node_that_can_create_the_root_passes(tmp_path):
    paths = data_paths(DataConfig(dataset="cifar10", root=str(tmp_path / "new" / "data")))
    assert _reads(paths, or_writes=str(tmp_path / "new" / "data")) is None
    assert _creatable(str(tmp_path / "new" / "data"))
    # Under a file, nothing can be created: the node can neither read nor download.
    (tmp_path / "file").write_text("x")
    under = str(tmp_path / "file" / "data")
    assert _reads([under + "/"], or_writes=under) == f"{under}: missing"


def test_the_storage_marker_answer_says_why(tmp_path):
    marker = tmp_path / "m"
    marker.write_text("abc")
    assert _sees(str(marker), "abc") is None
    assert _sees(str(marker), "xyz") == "reads another file there"
    assert _sees(str(tmp_path / "gone"), "abc").startswith("cannot read it")


def test_only_nodes_that_can_run_a_trial_are_asked():
    head = {"NodeID": "h", "Resources": {"CPU": 0.0}}
    small = {"NodeID": "s", "Resources": {"CPU": 2.0}}
    gpu = {"NodeID": "g", "Resources": {"CPU": 8.0, "GPU": 1.0}}
    nodes = [head, small, gpu]
    assert trial_nodes(nodes, Resources(cpu=1)) == [small, gpu]
    assert trial_nodes(nodes, Resources(cpu=4)) == [gpu]
    assert trial_nodes(nodes, Resources(cpu=1, gpu=0.5)) == [gpu]


# --- on a real (local, one-node) Ray --------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    give_ray_time()  # as a launch does: a loaded machine only makes Ray start slowly
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _fails() -> None:
    raise OSError("disk on fire")


def _hangs() -> None:
    time.sleep(3600)  # a node whose storage hangs (NFS): only the limit ends the wait


def test_each_node_answers_from_itself(local_ray, tmp_path):
    nodes = cluster.alive_nodes()
    assert cluster.ask_every_node(nodes, _reads, [f"{tmp_path}/"]) == []
    (name, why), = cluster.ask_every_node(nodes, _reads, [f"{tmp_path}/nope/"])
    assert name == cluster.node_name(nodes[0]) and why == f"{tmp_path}/nope: missing"
    assert cluster.nodes_unable_to_read(nodes, []) == []  # nothing to read: nothing asked


def test_a_node_whose_check_fails_or_hangs_is_named_not_waited_for(local_ray):
    nodes = cluster.alive_nodes()
    (_, why), = cluster.ask_every_node(nodes, _fails)
    assert why == "could not run the check (RayTaskError(OSError))"
    said: list[str] = []
    # Returning at all proves the limit ended the wait: the task never answers (pytest-timeout
    # is the guard). The node stays alive all along, so the reason is the limit, not its death.
    (_, why), = cluster.ask_every_node(nodes, _hangs, timeout_s=2, note=said.append)
    assert why.startswith("did not answer within 2 s (a node too busy to start a task, or whose "
                          "storage hangs); launch again")
    assert said == []  # a wait shorter than 10 s says nothing


def test_a_node_that_is_slow_to_answer_is_waited_for_while_it_is_alive(local_ray):
    nodes = cluster.alive_nodes()
    said: list[str] = []
    # 12 s: longer than the 10 s after which a wait says what it waits for, on any machine.
    assert cluster.ask_every_node(nodes, _answers_late, 12.0, note=said.append,
                                  what="the test") == []
    assert said and said[0].startswith("waiting for every node to answer the test (")
    assert "0 of 1 nodes answered" in said[0]


def _answers_late(seconds: float) -> None:
    time.sleep(seconds)


@pytest.mark.parametrize("died, waited, why", [
    (True, 40.0, "left the cluster before it answered"),
    (False, 300.0, "did not answer within 5 min (a node too busy to start a task, or whose "
                   "storage hangs); launch again once it is reachable"),
])
def test_why_a_node_has_no_answer(died, waited, why):
    assert cluster.unanswered(died, waited) == why



@pytest.mark.parametrize("dataset, download, named, offers_download", [
    ("cifar10", False, "cifar-10-python.tar.gz", True),
    ("cifar100", False, "cifar-100-python.tar.gz", True),
    ("cifar10", True, "cifar-10-python.tar.gz", False),  # it is on: nothing to offer
    ("imagefolder", False, None, False),  # a user's own images: no archive, no download
])
def test_the_fix_for_nodes_without_the_data_names_the_official_archive(dataset, download, named,
                                                                        offers_download):
    fix = data_fix(dataset, "/data/cifar", download)
    assert fix.startswith("copy the dataset to that path on those nodes or mount it there")
    if named:
        import torchvision

        cls = {"cifar10": torchvision.datasets.CIFAR10,
               "cifar100": torchvision.datasets.CIFAR100}[dataset]
        assert (f"extract the official archive {named} ({cls.url}) into /data/cifar on each "
                f"(it makes /data/cifar/{cls.base_folder}/)") in fix
    else:
        assert "archive" not in fix
    assert ("data.download: true" in fix) is offers_download
