"""Tracking: MLflow as a mirror of the search. `store` (synchronous calls at a launch's start and
end), `writer` (the background thread that retries and drops), `mirror` (the Tune callback),
`points` and `backfill` (what a result becomes in MLflow, and the repair of what was dropped).
Ray's experiment storage is the source of truth; MLflow never holds up a search."""
