"""Plain result objects shared by measurement and theory.

This package imports nothing beyond the standard library, so every layer (theory included)
can build the same objects; a plot can then overlay a prediction on a measurement
without glue code.
"""

from signalprop.results.independence import BatchIndependenceResult
from signalprop.results.spp import BlockStats, SPPResult, write_csv

__all__ = ["BatchIndependenceResult", "BlockStats", "SPPResult", "write_csv"]
