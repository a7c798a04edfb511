"""No function in src/ (outside the claim modules) is longer than 60 lines without its
docstring (STYLE: functions a reader can hold in mind); tools/long_functions.py lists them."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 60


def _tool():
    spec = importlib.util.spec_from_file_location("long_functions", ROOT / "tools" / "long_functions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_function_over_the_limit():
    rows = _tool().long_functions([ROOT / "src"], LIMIT)
    assert not rows, "split these into named steps (python tools/long_functions.py):\n" + "\n".join(
        f"  {length} lines  {path}:{line}  {name}" for path, line, name, length in rows)


def test_the_count_leaves_out_docstrings_and_counts_decorators(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(3))
    src = f'@property\ndef f():\n    """Doc\n\n    more\n    """\n{body}\n\n\nclass A:\n    def g(self):\n        return 1\n'
    path = tmp_path / "m.py"
    path.write_text(src)
    assert list(_tool().function_lengths(path)) == [("f", 2, 5), ("A.g", 13, 2)]
