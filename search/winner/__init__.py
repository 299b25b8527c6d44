"""The winner of a search as something to keep: `export` writes its full resolved training config
and data section as a spec `validate` accepts (with provenance and its checkpoint), `retrain`
trains it on train+validation for the full budget, evaluates it once on the test split, logs an
MLflow run linked to the experiment and saves the weights with a model card. No Ray."""
