"""The backward pass: gradient propagation plots and per-example gradient geometry.

``gradient_spp`` records per-block gradient statistics; ``gradient_gram`` computes the
per-example gradient Gram matrix in one backward (the engine is in ``_gram/``);
``gradient_confusion`` summarizes it (Sankararaman et al., 2020).
"""

from signalprop.measure.gradients._confusion import confusion_from_gram, gradient_confusion
from signalprop.measure.gradients._gradient_spp import gradient_spp
from signalprop.measure.gradients._gram.engine import gradient_gram

__all__ = ["confusion_from_gram", "gradient_confusion", "gradient_gram", "gradient_spp"]
