"""Normalizer-free networks vs BatchNorm: signal propagation at initialization, depth,
batch size (Brock, De & Smith 2021; De & Smith 2020; Smith, Elsen & De 2020)."""
