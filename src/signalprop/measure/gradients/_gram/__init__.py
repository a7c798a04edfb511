"""The per-example gradient Gram engine (private): ``engine`` runs one forward and one
backward; ``layers`` (Linear/ConvNd, factorized or materialized, with ``im2col``),
``embedding`` and ``func`` (torch.func fallback) turn each module's inputs and output
gradients into its (B, B) contribution; ``base`` holds what they share."""
