"""Claims on identity-biased blocks beyond ResNets: PHYDI for hypercomplex ResNets, BYOL
without batch statistics, and BatchNorm's scale invariance (the exponential lr)."""
