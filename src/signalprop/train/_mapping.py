"""Reading a config or sweep spec file: YAML or JSON holding one mapping, read strictly.

Two departures from a plain ``yaml.safe_load`` / ``json.loads``, both so that a file means
what its author meant:

- A key given twice in one mapping is an error naming the key and both lines (the
  loaders would silently keep the last value).
- Numbers in exponent notation without a dot, such as ``1e6`` or ``5e-4``, are floats.
  YAML 1.1, which PyYAML implements, reads them as strings (its floats need a dot and a
  signed exponent: ``1.0e+6``); YAML 1.2 and JSON read them as numbers, as people do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# YAML 1.2 core-schema floats that YAML 1.1 leaves as strings: an exponent without a
# dot (1e6, -2E-3) or with an unsigned exponent (1.5e6). Integers still resolve first.
_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML (``.yaml``/``.yml``, needs PyYAML) or JSON file holding one mapping.

    ``1e6`` and ``5e-4`` are read as floats (as in YAML 1.2 and JSON), and a key repeated
    in one mapping is an error.

    Raises:
        ValueError: unreadable, unparsable, a duplicate key, or not a mapping (names the
            file, and the line where YAML knows it).

    Examples:
        >>> _ = Path("run.yaml").write_text("{lr: 1e-3, steps: 10}")
        >>> read_mapping("run.yaml")
        {'lr': 0.001, 'steps': 10}
        >>> _ = Path("twice.yaml").write_text("{lr: 0.1, steps: 10, lr: 0.2}")
        >>> read_mapping("twice.yaml")
        Traceback (most recent call last):
        ...
        ValueError: twice.yaml, line 1: duplicate key 'lr' (first on line 1); keep one of them
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    data = _load_yaml(path, text) if path.suffix.lower() in (".yaml", ".yml") else (
        _load_json(path, text))
    if data is None:
        raise ValueError(f"{path} is empty: it must hold a mapping of keys to values such as "
                         "'model: resnetv2_50'")
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of keys to values, "
                         f"got {type(data).__name__}")
    return data


class _DuplicateKey(ValueError):
    pass


def _loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader that refuses duplicate keys and reads 1e6 as a float."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            first: dict[Any, int] = {}
            for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *base' entries may be overridden on purpose
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in first:
                        raise _DuplicateKey(f"line {line}: duplicate key {key!r} (first on "
                                            f"line {first[key]}); keep one of them")
                    first[key] = line
                except TypeError:
                    continue  # an unhashable key: the base class reports it
            return super().construct_mapping(node, deep=deep)

    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12,
                                       list("-+0123456789."))
    return StrictLoader


def _load_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError(f"reading {path} needs PyYAML: pip install 'signalprop[sweep]' "
                          "(or pip install pyyaml), or write the file as JSON") from None
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 -- a SafeLoader subclass
    except _DuplicateKey as e:
        raise ValueError(f"{path}, {e}") from None
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        if mark is None or not problem:
            raise ValueError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
        context = getattr(e, "context", None)
        raise ValueError(f"{path}, line {mark.line + 1}, column {mark.column + 1}: not valid "
                         f"YAML: {problem}" + (f" ({context})" if context else "")) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate key {key!r}; keep one of them")
        out[key] = value
    return out


def _load_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        raise ValueError(f"{path}: {e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
