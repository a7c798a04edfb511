"""Torch layers and initializers (constants come from signalprop.theory).

NOTE: minimal version from the ``theory`` branch (initializers only); the lead's version
adds the layers.
"""

from signalprop.nn.init import critical_, delta_orthogonal_, lecun_normal_

__all__ = ["critical_", "delta_orthogonal_", "lecun_normal_"]
