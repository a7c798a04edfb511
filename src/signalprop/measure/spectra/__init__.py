"""Spectra: singular values of the input-output Jacobian and extreme eigenvalues of the
loss Hessian, by Lanczos on matrix-free products (never a dense matrix); and every singular
value of a convolution layer (exact through the FFT for circular padding, certified
bounds otherwise), for one layer or every layer of a model."""

from signalprop.measure.spectra._conv_spectra import conv_spectra
from signalprop.measure.spectra._conv_spectrum import conv_spectrum
from signalprop.measure.spectra._hessian import hessian_extremes
from signalprop.measure.spectra._jacobian import jacobian_spectrum
from signalprop.measure.spectra._lanczos import lanczos

__all__ = ["conv_spectra", "conv_spectrum", "hessian_extremes", "jacobian_spectrum", "lanczos"]
