"""Tracking: MLflow as a mirror of the search. `store` (synchronous calls at a launch's start and
end; `sqlite_store` makes a local store ready, `mlflow_compat` holds MLflow's private names),
`writer` (the background thread that retries and drops), `mirror` (the Tune callback),
`runbook` (each trial's run: every MLflow call the mirror's actions make, on the writer's thread),
`points` and `backfill` (what a result becomes in MLflow, and the repair of what was dropped);
what people read there: `names` (a trial run's name, its `hp.*` metrics and params),
`describe` (the parent run's description), `view` (the search's saved view of its runs) and
`ui` (the UI's address, MLflow's own server for a local store).
Ray's experiment storage is the source of truth; MLflow never holds up a search."""
