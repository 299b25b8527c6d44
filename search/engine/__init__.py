"""The engines' adapters: the spec's space as an Optuna define-by-run function, the sampler
registry, the Ray scheduler each `scheduler:` entry names (built to tell the ledger its early
stops), the fidelity-aware Optuna searcher, and (in `compat`) every private attribute of Ray or
Optuna the product reaches."""
