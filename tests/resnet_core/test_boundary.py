"""resnet_core must run alone on a GPU box that has only torch and torchvision."""

import subprocess
import sys
from pathlib import Path

import resnet_core

ENGINES = ("ray", "optuna", "mlflow", "pydantic", "sklearn", "typer")


def test_resnet_core_trains_without_importing_any_engine():
    # A fresh interpreter: what the package imports on its own, not what the test session has.
    code = (
        "import sys\n"
        "from resnet_core import TrainConfig, DataConfig, load_data, Trainer\n"
        "data = load_data(DataConfig(dataset='synthetic', synthetic_size=128))\n"
        "trainer = Trainer(TrainConfig(depth=20, width=0.25, batch_size=64, epochs=1), data)\n"
        "print(next(iter(trainer.fit()))['epoch'])\n"
        f"print(sorted(m for m in {ENGINES!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    epoch, loaded = done.stdout.strip().splitlines()[-2:]
    assert epoch == "1"
    assert loaded == "[]", f"resnet_core imported engines: {loaded}"


def test_no_source_file_imports_an_engine():
    root = Path(resnet_core.__file__).parent
    for path in root.rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                top = words[1].split(".")[0]
                assert top not in ENGINES or top == "sklearn", f"{path}: {line.strip()}"
