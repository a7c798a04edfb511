"""Training dynamics read from the optimizer: the effective learning rate of
scale-invariant weights (``effective_lr``)."""

from signalprop.measure.dynamics._effective_lr import effective_lr

__all__ = ["effective_lr"]
