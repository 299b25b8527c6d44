"""Tracking: MLflow as a mirror of the search (the store, its background writer, the Tune
callback). Ray's experiment storage is the source of truth; MLflow never holds up a search."""
