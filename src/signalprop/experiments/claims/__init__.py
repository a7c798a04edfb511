"""The built-in claims, one module per paper claim, in topic packages.

Layout (a topic is a package; a claim module is named for its claim, ``nf-spp`` ->
``nf_spp.py``, and defines ``CLAIM = Claim(...)``):

* ``normfree/``: normalizer-free networks vs BatchNorm (``nf-spp``, ``skipinit-depth``,
  ``bn-batchsize``, ``nf-vs-bn``);
* ``meanfield/``: depth scales and initialization from mean-field theory
  (``snn-depth``, ``confusion-width-depth``, ``criticality-depth``);
* ``optimization/``: what the optimizer and its batch noise do (``sgd-noise``,
  ``adam-nag``);
* ``quantized/``: low-precision networks (``bc-vs-sr``, ``reste-equilibrium``,
  ``binary-spp``);
* ``regions/``: linear regions of piecewise-linear networks (``ternary-regions``,
  ``region-density``);
* ``sequence/``: propagation along the sequence and across grids (``counting-ood``,
  ``plstm-modes``);
* ``orthogonal/``: orthogonal convolutions (``orth-conv-existence``,
  ``orth-conv-stability``, ``orth-conv-tradeoff``);
* ``compression/``: depth compression by merging convolutions (``depth-dp``).
* ``identity/``: identity-biased blocks beyond ResNets and BatchNorm's scale invariance
  (``phydi-depth``, ``byol-no-batch-stats``, ``exp-lr-equivalence``).

Helpers a single topic shares live in that topic as private modules (``_x.py``); helpers
shared across topics live one level up in ``signalprop.experiments`` (``_stats``,
``_rows``, ``_models``, ``_resnet_runs``).

:data:`CLAIMS` is the one list of built-in claims, in the order ``--list`` and ``--all``
follow. The registry imports each listed module the first time a claim is looked up and
registers its ``CLAIM``; a listed module that is missing, or that defines no ``CLAIM``,
raises ``ImportError`` naming it. To add a claim: write ``<topic>/<name>.py`` (a new topic
is a new package with an ``__init__.py``) and add ``"<topic>.<name>"`` to :data:`CLAIMS`.

Examples:
    >>> CLAIMS[0]
    'normfree.nf_spp'
"""

#: Module paths (relative to this package) of the built-in claims, in listing order.
CLAIMS: tuple[str, ...] = (
    "normfree.nf_spp",
    "normfree.skipinit_depth",
    "normfree.bn_batchsize",
    "normfree.nf_vs_bn",
    "meanfield.snn_depth",
    "meanfield.confusion_width_depth",
    "optimization.sgd_noise",
    "meanfield.criticality_depth",
    "optimization.adam_nag",
    "quantized.bc_vs_sr",
    "quantized.reste_equilibrium",
    "quantized.binary_spp",
    "regions.ternary_regions",
    "regions.region_density",
    "sequence.counting_ood",
    "sequence.plstm_modes",
    "orthogonal.orth_conv_existence",
    "orthogonal.orth_conv_stability",
    "orthogonal.orth_conv_tradeoff",
    "compression.depth_dp",
    "identity.phydi_depth",
    "identity.byol_no_batch_stats",
    "identity.exp_lr_equivalence",
)

__all__ = ["CLAIMS"]
