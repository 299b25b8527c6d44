"""What a search found, for people: the leaderboard and the plots of a search (Optuna's
optimization history, parameter importances, parallel coordinates, slices; every trial's learning
curve with ASHA's rungs and stops) as interactive HTML and static PNG, written to a folder and
logged to the experiment's parent run. Read from the experiment record and the study the driver
persisted; never starts Ray."""
