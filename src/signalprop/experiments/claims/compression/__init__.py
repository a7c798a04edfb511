"""Depth compression: merging convolutions by dropping activations (``depth-dp``)."""
