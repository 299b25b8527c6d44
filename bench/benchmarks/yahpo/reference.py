"""Values yahpo_gym's own `objective_function` computes for a few LCBench configurations, written
to reference.json beside this file; tests/search/replay/test_problems.py checks that this
project's reading of the same model (search/replay/problems/lcbench.py) agrees with them.

yahpo-gym 1.0.2 pins numpy < 2 and ConfigSpace <= 0.6.1, so it runs in its own environment:

    python3.11 -m venv /tmp/yahpo-ref && /tmp/yahpo-ref/bin/pip install yahpo-gym==1.0.2
    HOME=$(mktemp -d) /tmp/yahpo-ref/bin/python bench/benchmarks/yahpo/reference.py
"""

import json
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = ["3945", "167190", "189909"]
EPOCHS = [1, 2, 13, 52]
CONFIGS = [
    {"batch_size": 64, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.001,
     "num_layers": 3, "max_units": 256, "max_dropout": 0.2},
    {"batch_size": 16, "learning_rate": 0.00011, "momentum": 0.1, "weight_decay": 1e-05,
     "num_layers": 1, "max_units": 64, "max_dropout": 0.0},
    {"batch_size": 512, "learning_rate": 0.099, "momentum": 0.99, "weight_decay": 0.1,
     "num_layers": 5, "max_units": 1024, "max_dropout": 1.0},
    {"batch_size": 200, "learning_rate": 0.003, "momentum": 0.5, "weight_decay": 0.05,
     "num_layers": 2, "max_units": 700, "max_dropout": 0.6},
]


def main() -> None:
    from yahpo_gym import benchmark_set, local_config

    local_config.init_config()
    local_config.set_data_path(str(HERE))
    bench = benchmark_set.BenchmarkSet("lcbench", multithread=False)
    rows = []
    for task in TASKS:
        bench.set_instance(task)
        queries = [{**c, "epoch": e, "OpenML_task_id": task} for c in CONFIGS for e in EPOCHS]
        for query, answer in zip(queries, bench.objective_function(queries)):
            rows.append({"task": task, "epoch": query["epoch"],
                         "config": {k: query[k] for k in CONFIGS[0]},
                         "y": {k: float(v) for k, v in answer.items()}})
    out = {"how": "yahpo_gym.BenchmarkSet('lcbench').objective_function, this file's script",
           "versions": {p: metadata.version(p) for p in ("yahpo_gym", "onnxruntime", "numpy",
                                                          "ConfigSpace")},
           "python": sys.version.split()[0], "rows": rows}
    (HERE / "reference.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(rows)} rows to {HERE / 'reference.json'}")


if __name__ == "__main__":
    main()
