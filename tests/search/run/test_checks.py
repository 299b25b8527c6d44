"""Pure rules of the launch checks (no Ray runtime)."""

from types import SimpleNamespace

import pytest

from search.run.checks import slots


@pytest.mark.parametrize("cpu, gpu, cluster, expected", [
    (1, 0, {"CPU": 2}, 2),
    (2, 0, {"CPU": 16}, 8),
    (2, 0.25, {"CPU": 16, "GPU": 1}, 4),  # four trials pack one GPU
    (1, 0.5, {"CPU": 16, "GPU": 2}, 4),
    (4, 0, {"CPU": 2}, 1),  # never 0: the launch check rejects what no node can hold
])
def test_default_concurrency_is_what_the_cluster_holds(cpu, gpu, cluster, expected):
    assert slots(SimpleNamespace(cpu=cpu, gpu=gpu), cluster) == expected
