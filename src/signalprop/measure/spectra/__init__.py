"""Spectra: singular values of the input-output Jacobian and extreme eigenvalues of the
loss Hessian, by Lanczos on matrix-free products (never a dense matrix)."""

from signalprop.measure.spectra._hessian import hessian_extremes
from signalprop.measure.spectra._jacobian import jacobian_spectrum
from signalprop.measure.spectra._lanczos import lanczos

__all__ = ["hessian_extremes", "jacobian_spectrum", "lanczos"]
