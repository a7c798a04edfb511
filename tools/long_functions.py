"""List the functions in src/ longer than a limit (default 60 lines).

A function's length is counted from its ``def`` line to its last line, without its
docstring (a long docstring teaches; it does not make the code harder to hold in mind).
Nested functions are counted on their own and also inside their parent.

Usage::

    python tools/long_functions.py [--limit 60] [--all] [paths ...]

By default ``src/`` is scanned, skipping ``src/signalprop/experiments/claims/`` (the claim
modules are scripts of one experiment each). ``--all`` includes them.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = ("src/signalprop/experiments/claims/",)


def _docstring_lines(node: ast.AST) -> int:
    body = getattr(node, "body", [])
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[0].end_lineno - body[0].lineno + 1
    return 0


def function_lengths(path: Path) -> Iterator[tuple[str, int, int]]:
    """Yield ``(qualified name, first line, length without docstring)`` for each function."""
    tree = ast.parse(path.read_text(), filename=str(path))

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                start = min([d.lineno for d in child.decorator_list] + [child.lineno])
                length = child.end_lineno - start + 1 - _docstring_lines(child)
                yield name, child.lineno, length
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def long_functions(
    paths: list[Path], limit: int = 60, include_claims: bool = False
) -> list[tuple[str, int, str, int]]:
    """Return ``(file, line, name, length)`` for every function over ``limit`` lines."""
    found = []
    for base in paths:
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for file in files:
            rel = file.resolve().relative_to(ROOT).as_posix()
            if not include_claims and rel.startswith(SKIP):
                continue
            for name, line, length in function_lengths(file):
                if length > limit:
                    found.append((rel, line, name, length))
    return sorted(found, key=lambda row: -row[3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "src"])
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--all", action="store_true", help="include the claim modules")
    args = parser.parse_args(argv)
    rows = long_functions(args.paths, args.limit, args.all)
    for rel, line, name, length in rows:
        print(f"{length:4d}  {rel}:{line}  {name}")
    print(f"{len(rows)} function(s) over {args.limit} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
