"""Claims about low-precision networks (PAPERS.md section 10): importing this package
registers bc-vs-sr (Li et al. 2017), reste-equilibrium (Wu et al. 2023) and binary-spp."""

from signalprop.experiments.claims.quantized import bc_vs_sr, binary_spp, reste_equilibrium

__all__ = ["bc_vs_sr", "binary_spp", "reste_equilibrium"]
