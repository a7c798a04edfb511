"""Low-precision networks (PAPERS.md section 10): BinaryConnect vs stochastic rounding
(``bc-vs-sr``, Li et al. 2017), ReSTE's estimator equilibrium (``reste-equilibrium``,
Wu et al. 2023) and the variance gain of quantized weights (``binary-spp``)."""
