"""Claims about orthogonal convolutions (Achour, Malgouyres & Mamalet, JMLR 2022).

* ``orth-conv-existence`` (:mod:`.orth_conv_existence`): minimizing the orthogonality
  error reaches zero exactly where Theorem 4 (and Propositions 5-6) say an orthogonal
  convolution exists.
* ``orth-conv-stability`` (:mod:`.orth_conv_stability`): a small L_orth bounds the spectral
  orthogonality error at every image size (Theorem 8), the Frobenius one grows as N^2
  (Theorem 7).
* ``orth-conv-tradeoff`` (:mod:`.orth_conv_tradeoff`): the penalty weight trades accuracy
  for orthogonality.
"""
