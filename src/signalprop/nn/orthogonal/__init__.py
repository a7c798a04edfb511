"""Orthogonal convolutions: the L_orth regularizer (Wang et al. 2020, as analysed by Achour,
Malgouyres & Mamalet 2022) and an exactly orthogonal circular convolution (products of
block convolutions, BCOP, or the Cayley transform in the Fourier domain, Trockman & Kolter
2021). Whether an orthogonal
convolution can exist at all is :func:`signalprop.theory.orthogonal_conv_exists`.
"""

from signalprop.nn.orthogonal._cayley import cayley, cayley_apply
from signalprop.nn.orthogonal._layer import CONSTRUCTIONS, OrthoConv2d
from signalprop.nn.orthogonal._penalty import orth_penalty

__all__ = ["CONSTRUCTIONS", "OrthoConv2d", "cayley", "cayley_apply", "orth_penalty"]
