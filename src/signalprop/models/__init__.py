"""Model families built from signalprop.nn.

NOTE: minimal version from the ``theory`` branch (MLPs only); the lead's version adds
ResNet-V2 and the registry.
"""

from signalprop.models.mlp import MLP, mlp

__all__ = ["MLP", "mlp"]
