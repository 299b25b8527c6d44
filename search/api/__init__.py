"""resnet-search from Python (a notebook, a script): the same code the CLI runs, as functions.

    import search
    exp = search.open_experiment("spaces/digits.yaml")   # or its directory, or an s3:// URI
    exp.status()      # how it stands (what `resnet-search status` prints)
    exp.trials()      # a pandas DataFrame, one row per trial, best first
    exp.best()        # the winner: config, value, checkpoint
    search.validate({"name": "x", ...})   # the resolved spec, or SpecError listing every problem
    search.launch("spaces/digits.yaml", trials=4)         # runs the search here, as `launch`
    search.submit("spaces/digits.yaml", address="http://head:8265")   # as a Ray job

Importing this package loads no engine (Ray, Optuna, MLflow, torch); each function loads what
it needs when called (pandas for `trials()`, Ray for `launch`).
"""

from search.api.experiment import Best, Experiment, NoSuchTarget, open_experiment
from search.api.specs import SpecError, launch, submit, validate

__all__ = ["Best", "Experiment", "NoSuchTarget", "SpecError", "launch", "open_experiment", "submit",
           "validate"]
