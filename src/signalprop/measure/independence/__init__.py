"""Batch independence: does one example's output depend on the other examples?"""

from signalprop.measure.independence._batch_independence import batch_independence

__all__ = ["batch_independence"]
