"""Measurements of low-precision networks: ReSTE's estimator indicators."""

from signalprop.measure.quantized._indicators import estimator_indicators

__all__ = ["estimator_indicators"]
