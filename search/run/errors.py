"""Why a launch could not start or go on (exit 1); the message says why and what to do."""


class LaunchError(RuntimeError):
    pass
