"""Progress lines in a pipe (a CI log): plain text, no markup tags, no terminal colour codes,
and brackets of a config or an error message kept as they are."""

import io

import ray.cloudpickle
from rich.console import Console

from search.run.progress import ProgressPrinter


class Trial:
    def __init__(self, trial_id: str, config: dict, error_file: str = "") -> None:
        self.trial_id, self.config, self.num_failures = trial_id, config, 1
        self.pickled_error_file, self.path = error_file, f"/runs/x/{trial_id}"


def test_lines_in_a_pipe_are_plain_text(tmp_path):
    error_file = tmp_path / "error.pkl"
    with open(error_file, "wb") as handle:  # Ray colours the exceptions it wraps
        ray.cloudpickle.dump(RuntimeError("\x1b[36mray::ImplicitFunc.train()\x1b[39m [boom]"),
                             handle)
    stream = io.StringIO()  # not a terminal
    printer = ProgressPrinter("val_acc", 3, 2, scheduler_stops=lambda t: False,
                              console=Console(file=stream, width=200))
    listed = Trial("a", {"milestones": [0.5, 0.75], "lr": 0.1}, str(error_file))
    printer.on_trial_start(0, [], listed)
    printer.on_trial_recover(0, [], listed)
    printer.on_trial_result(0, [], listed, {"epoch": 3, "val_acc": 0.5})
    printer.on_trial_complete(0, [], listed)
    printer.on_trial_error(0, [], Trial("b", {}, str(error_file)))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "start a  milestones=[0.5, 0.75] lr=0.1"
    assert lines[1] == ("retry a (failure 1) from its last checkpoint: RuntimeError: "
                        "ray::ImplicitFunc.train() [boom]")
    assert lines[2] == "[1/2] a done after 3/3 epochs  val_acc=0.5000"
    assert lines[3].startswith("[2/2] b failed after 0/3 epochs  RuntimeError: "
                               "ray::ImplicitFunc.train() [boom] (traceback: /runs/x/b/")
    assert "\x1b[" not in stream.getvalue() and "[/" not in stream.getvalue()
