"""Orthogonal convolutions (Achour, Malgouyres & Mamalet, JMLR 2022): when they exist
(orth-conv-existence), how a small L_orth bounds the spectral error at every image size
(orth-conv-stability), and the accuracy / orthogonality trade-off of the penalty
(orth-conv-tradeoff). Importing this package registers the three claims."""

from signalprop.experiments.claims.orthogonal import existence, stability, tradeoff

__all__ = ["existence", "stability", "tradeoff"]
