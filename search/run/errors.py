"""Why a launch could not start or go on (exit 1); the message says why and what to do."""


class LaunchError(RuntimeError):
    pass


class StorageFull(LaunchError):
    """storage_path ran out of space during the search (search/run/fullstorage.py)."""
