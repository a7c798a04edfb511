"""Claims about linear regions of piecewise-linear networks.

* ``ternary-regions`` (:mod:`.ternary_regions`): Nakahara, Kobayashi & Matsushima's
  ternary constructions, counted exactly, reach their lower bounds and match the general
  ReLU bound after doubling the width and the depth, or squaring the width.
* ``region-density`` (:mod:`.region_density`): Hanin & Rolnick's density of regions along
  lines through data grows linearly with the number of neurons at initialization.
"""
