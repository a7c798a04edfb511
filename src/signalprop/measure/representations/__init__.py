"""Representations: whether a model's embeddings collapse (``collapse``)."""

from signalprop.measure.representations._collapse import collapse

__all__ = ["collapse"]
