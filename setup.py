"""Optional C accelerators of signalprop.measure and signalprop.nn (metadata lives in
pyproject.toml).

All are built with OpenMP and link libgomp.so.1, which resolves to the copy torch has
already loaded, so they run on torch's own threads. ``optional=True``: without a C
compiler or OpenMP the install still succeeds and signalprop uses torch instead.
"""

from setuptools import Extension, setup

_FLAGS = {
    "extra_compile_args": ["-O3", "-fopenmp"],
    "extra_link_args": ["-fopenmp"],
    "depends": ["src/signalprop/measure/forward/_csupport.h", "src/signalprop/_cvariant.h"],
}

setup(
    ext_modules=[
        # One-pass channel sums for spp()'s forward hooks.
        Extension("signalprop.measure.forward._cmoments",
                  ["src/signalprop/measure/forward/_cmoments.c"], optional=True, **_FLAGS),
        # The residual add that takes statistics as it adds (signalprop's own blocks).
        Extension("signalprop.measure.forward._cfused",
                  ["src/signalprop/measure/forward/_cfused.c"], libraries=["m"], optional=True,
                  **_FLAGS),
        # SGD's step and the rounding onto a grid in one pass (QuantizedTraining SR / R).
        # -ffp-contract=off: only the kernel's explicit fma() calls fuse (SGD's roundings);
        # -fno-trapping-math: branch-free selects vectorize (no FP exception is relied on).
        Extension("signalprop.optim._cqstep", ["src/signalprop/optim/_cqstep.c"],
                  libraries=["m"], optional=True,
                  **{**_FLAGS, "extra_compile_args": [*_FLAGS["extra_compile_args"],
                                                      "-ffp-contract=off",
                                                      "-fno-trapping-math"]}),
        # The binary weight quantizer of signalprop.nn in two passes each way.
        # -ffp-contract=off: products and sums rounded one by one, as torch's ops round them.
        Extension("signalprop.nn.quantized._cquant", ["src/signalprop/nn/quantized/_cquant.c"],
                  libraries=["m"], optional=True,
                  **{**_FLAGS, "extra_compile_args": [*_FLAGS["extra_compile_args"],
                                                      "-ffp-contract=off"]}),
        # The PH weight composition sum_s kron(A_s, F_s) and its backward, one pass each.
        Extension("signalprop.nn.hypercomplex._cphm",
                  ["src/signalprop/nn/hypercomplex/_cphm.c"], optional=True, **_FLAGS),
    ]
)
