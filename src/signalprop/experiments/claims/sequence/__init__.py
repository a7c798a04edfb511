"""Claims about propagation along the sequence and across grids: counting without softmax
and LayerNorm (``counting-ood``) and the stable modes of 2-D linear RNNs
(``plstm-modes``)."""
