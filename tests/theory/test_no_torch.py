"""The theory layer works with torch unimportable (it is NumPy/SciPy only)."""

import subprocess
import sys
from pathlib import Path

CODE = """
import sys
sys.modules['torch'] = None  # any 'import torch' now raises ImportError
import numpy as np
import signalprop.theory as t
from signalprop.plot.phase import phase_diagram as plot_phase
assert t.critical_point('tanh').sigma_w2 == 1.0
pd = t.phase_diagram('tanh', np.linspace(0.5, 3, 6), [0.0, 0.1])
assert pd.chi_1.shape == (2, 6)
assert len(t.residual_schedule('nf', [2, 2]).records) == 5
assert abs(t.selu_constants()[0] - t.SELU_LAMBDA) < 1e-12
assert abs(t.four_point_vertex('relu', 3, 2.0).normalized[-1] - 10.0) < 1e-12
assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]
"""


def test_theory_and_its_plot_run_without_torch():
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


DOCTESTS = """
import doctest, importlib, pathlib, sys
sys.modules['torch'] = None
import signalprop.theory
root = pathlib.Path(signalprop.theory.__file__).parent
names = ['signalprop.theory' + ('' if p.stem == '__init__' else '.' + p.stem)
         for p in sorted(root.glob('*.py')) if '>>>' in p.read_text()]
flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
for name in [*names, 'signalprop.plot.phase']:
    res = doctest.testmod(importlib.import_module(name), optionflags=flags)
    assert res.attempted > 0 and res.failed == 0, (name, res)
assert 'torch' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]
print(len(names))
"""


def test_theory_examples_run_without_torch(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", DOCTESTS], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert int(res.stdout) >= 12  # every theory module with examples was run
