"""Every docstring example in src/signalprop runs and prints what it says.

The modules are found by walking the source tree for files that contain ``>>>``; nothing
is listed by hand. Each docstring's examples are one pytest case (named by the docstring's
qualified name), run in a temporary working directory with torch on one thread. A module
whose ``>>>`` lines are not all collected as examples (one in a comment, in a string that is
not a docstring, in a nested function) fails, and so does a public name without an example.

Without torch this module is skipped; tests/theory/test_no_torch.py runs the theory
examples with torch blocked.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "signalprop"
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
PROMPT = re.compile(r"^[ \t]*(?:#[ \t]*)?>>>(?: (.*))?$", re.M)  # a commented one too


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _prompts(path: Path) -> list[str]:
    """The code after each ``>>>`` prompt (in a docstring or not) in a source file."""
    return PROMPT.findall(path.read_text(encoding="utf-8"))


def _modules_with_examples() -> dict[str, Path]:
    """Module name -> source file, for every file under src/signalprop with a ``>>>``."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
            if ">>>" in p.read_text(encoding="utf-8")}


MODULES = _modules_with_examples()
FINDER = doctest.DocTestFinder(exclude_empty=True)


def _collect() -> dict[str, str]:
    """Doctest name (module.qualname) -> its module, for every docstring with examples."""
    cases: dict[str, str] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # reported by test_module_examples_are_collected
            continue
        for test in FINDER.find(module):
            if test.examples:
                cases[test.name] = name
    return cases


CASES = _collect()


@pytest.fixture(autouse=True)
def _one_thread():  # noqa: ANN202 -- a fixture
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _uncollected(prompts: list[str], collected: list[str]) -> list[str]:
    """The prompts that no collected example accounts for (each example counts once).

    A ``{...}`` in a prompt matches anything, for docstrings built from a template with
    ``str.format`` (one template line then yields several examples).
    """
    pool = list(collected)
    missing = []
    for code in prompts:
        parts = re.split(r"\{[^{}]*\}", code.strip())
        pattern = re.compile(".*".join(re.escape(part) for part in parts))
        hit = next((i for i, line in enumerate(pool) if pattern.fullmatch(line)), None)
        if hit is None:
            missing.append(code)
        else:
            del pool[hit]
    return missing


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_are_collected(name: str) -> None:
    module = importlib.import_module(name)
    collected = [ex.source.splitlines()[0].strip() if ex.source.strip() else ""
                 for test in FINDER.find(module) for ex in test.examples]
    assert collected, f"{name} contains '>>>' but doctest collects no example from it"
    missing = _uncollected(_prompts(MODULES[name]), collected)
    assert not missing, (
        f"{name}: these '>>>' lines are not in a docstring doctest finds (a comment, a "
        f"nested function, a plain string), so they never run: {missing}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_docstring_examples(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module(CASES[case])
    (test,) = [t for t in FINDER.find(module) if t.name == case]
    monkeypatch.chdir(tmp_path)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


# ---- every public name has an example ------------------------------------------------


def _packages() -> list[str]:
    return sorted(_module_name(p) for p in PACKAGE.rglob("__init__.py")
                  if not any(part.startswith("_") for part in
                             p.relative_to(SRC).parent.parts))


def _public_objects() -> list[tuple[str, object]]:
    """(qualified name, object) for each function and class a package lists in __all__."""
    import signalprop

    objects: dict[str, object] = {}
    for package in _packages():
        module = importlib.import_module(package)
        names = list(getattr(module, "__all__", []))
        if package == "signalprop":
            names += list(signalprop._LAZY)
        for attr in names:
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                objects[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return sorted(objects.items())


def _own_doc(obj: object) -> str:
    """The docstring written on the object itself (a class's, not one it inherits)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    return doc or ""


def test_every_public_name_has_an_example() -> None:
    missing = [name for name, obj in _public_objects() if ">>>" not in _own_doc(obj)]
    assert not missing, "no '>>>' example in the docstring of:\n  " + "\n  ".join(missing)
