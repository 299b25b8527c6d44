"""Why a training run stopped on its own."""

from __future__ import annotations


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite.

    A config that diverges will diverge again with the same seed, so the search treats this as
    final for the trial (never retried) and records where it happened.
    """

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training diverged: loss is {loss} at epoch {epoch}, step {step}")
        self.epoch = epoch
        self.step = step
        self.loss = loss

    def __reduce__(self):
        # Ray ships exceptions between processes by pickling; keep the attributes on the way.
        return type(self), (self.epoch, self.step, self.loss)
