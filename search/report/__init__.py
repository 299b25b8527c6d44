"""What a search found, for people: the leaderboard and the plots of a search (Optuna's
optimization history, parameter importances, parallel coordinates, slices; every trial's learning
curve with the scheduler's rungs and stops) as interactive HTML and static PNG, written to a folder and
logged to the experiment's parent run. Read from the experiment record, through the same study
the driver persists for optuna-dashboard (`search.engine.study`); never starts Ray.

    build        the report of one experiment, in a folder (`make`)
    leaderboard  the trials as rows, best first, and leaderboard.csv
    optuna_plots Optuna's plots, and which of them a study can have (`why_not`)
    curves       the learning curves with the scheduler's rungs and each early end
    page         index.html
    publish      the folder on the MLflow parent run
"""
