"""signalprop.theory.quantized runs with torch unimportable (NumPy/SciPy only)."""

import subprocess
import sys

CODE = """
import sys
sys.modules['torch'] = None
import numpy as np
from signalprop import theory as t
assert abs(t.quantized_variance_gain('binary') - 2 / np.pi) < 1e-12
assert t.surrogate_gain('reste', 1.0) > 0
r = t.rounding_chain(t.DoubleWell(0.3).grad, np.linspace(-2, 2, 9), lr=0.05, noise=1.0)
assert abs(sum(r.stationary) - 1) < 1e-12
assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]
"""


def test_quantized_theory_runs_without_torch():
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
