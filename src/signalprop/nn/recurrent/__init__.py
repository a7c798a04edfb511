"""Linear recurrences over grids (multi-dimensional linear RNNs).

- :class:`LinearRNN2d`: a reference 2-D linear recurrence with Source, Transition and Mark
  gates in wavefront order, in the naive, P (directed propagation) or D (diffusive
  distribution) mode of pLSTM (Poeppel et al., 2025);
- :func:`skew` / :func:`unskew`: the antidiagonal layout the wavefront works in.
"""

from signalprop.nn.recurrent._linear_rnn2d import MODES, TRANSITIONS, LinearRNN2d, skew, unskew

__all__ = ["MODES", "TRANSITIONS", "LinearRNN2d", "skew", "unskew"]
