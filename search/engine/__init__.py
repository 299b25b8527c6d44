"""The engines' adapters: the spec's space as an Optuna define-by-run function, the sampler and
scheduler registries, the fidelity-aware Optuna searcher, and (in `compat`) every private
attribute of Ray or Optuna the product reaches."""
