"""One serialization mechanism for every result class: JSON strings, files and CSV.

A result is a dataclass that inherits :class:`Result`. Its fields are written as strict
JSON (non-finite floats as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
nested record dataclasses as objects; tuples as lists; tensors and arrays through their
``tolist()``), and read back by following the field annotations, so a class needs no
serialization code of its own:

* ``to_json()`` / ``from_json(text)`` for strings, ``save(path)`` / ``load(path)`` for
  files (``.json``, or ``.csv`` to write the table), ``to_csv()`` for one result and
  :func:`write_csv` for several results of one class in one table.
* The CSV table has a ``label`` column and one row per record for results with a
  ``records`` list (one column per record field), otherwise one summary row of the scalar
  fields. A class with another natural table overrides :meth:`Result.csv_rows`.

A field holding a torch tensor is declared with ``field(metadata=TENSOR)``; it is written
as nested lists and read back as a float64 tensor (torch is imported only then, so this
module stays standard-library only and the theory layer can build results too). A field
declared with ``field(metadata=SKIP)`` (a live object such as a model) is not written.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from signalprop.results._serial import decode_float, encode_float

R = TypeVar("R", bound="Result")

#: Field metadata of a tensor-valued field (read back as a float64 torch tensor).
TENSOR: dict[str, Any] = {"signalprop_tensor": True}
#: Field metadata of a field that is not written (a live object such as a model).
SKIP: dict[str, Any] = {"signalprop_skip": True}
_SUFFIXES = (".json", ".csv")


def encode(value: Any) -> Any:
    """``value`` as strict-JSON data (recursive; see the module docstring).

    Examples:
        >>> encode({"a": (1, float("nan")), "b": [float("inf")]})
        {'a': [1, 'NaN'], 'b': ['Infinity']}
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return encode_float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.metadata.get("signalprop_skip")}
    if isinstance(value, dict):
        return {_key(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # torch tensors, NumPy arrays and scalars
        return encode(value.tolist())
    raise TypeError(f"cannot write a {type(value).__name__} to JSON: {value!r}")


def _key(k: Any) -> str:
    if isinstance(k, float):
        return repr(k)
    return str(k)


def decode(tp: Any, value: Any) -> Any:
    """Read ``value`` (strict-JSON data) back as type ``tp`` (an annotation).

    Examples:
        >>> decode(dict[float, float], {"0.5": "NaN"})
        {0.5: nan}
        >>> decode(tuple[int, ...], [1, 2])
        (1, 2)
    """
    if value is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return _decode_any(value)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1:
            return decode(kinds[0], value)
        for a in kinds:  # e.g. float | str: try the number first, then the rest
            try:
                return decode(a, value)
            except (TypeError, ValueError):
                continue
        return _decode_any(value)
    if tp is float:
        return decode_float(value)
    if tp is bool:
        return bool(value)
    if tp is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if tp is Path:
        return Path(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if origin in (list, Sequence, typing.Sequence) or tp is list:
        inner = args[0] if args else Any
        return [decode(inner, v) for v in value]
    if origin is tuple or tp is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in value)
        if args:
            return tuple(decode(a, v) for a, v in zip(args, value))
        return tuple(_decode_any(v) for v in value)
    if origin is dict or tp is dict:
        kt, vt = args if args else (str, Any)
        return {_decode_key(kt, k): decode(vt, v) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_data(tp, value)
    raise TypeError(f"cannot read a value of type {tp!r} from JSON")


def _decode_key(tp: Any, key: str) -> Any:
    # JSON object keys are strings; numbers come back through their text.
    if tp in (int, float):
        return tp(key)
    return decode(tp, key)


def _decode_any(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return decode_float(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return [_decode_any(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode_any(v) for k, v in value.items()}
    return value


def from_data(cls: type[Any], data: dict[str, Any]) -> Any:
    """Build dataclass ``cls`` from what :func:`encode` wrote for it."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls) if f.init}
    data = {k: v for k, v in data.items() if k not in getattr(cls, "json_extras", ())}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; "
                         f"expected some of {sorted(names)}")
    missing = sorted(n for n, f in names.items() if n not in data
                     and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
    if missing:
        raise ValueError(f"{cls.__name__}: missing field(s) {missing}")
    kwargs = {}
    for name, value in data.items():
        f = names[name]
        if f.metadata.get("signalprop_tensor") and value is not None:
            import torch  # only tensor-valued results need it

            kwargs[name] = torch.tensor(_decode_any(value), dtype=torch.float64)
        else:
            kwargs[name] = decode(hints[name], value)
    return cls(**kwargs)


class Result:
    """Base class of every result dataclass: JSON, files and CSV in one place.

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Toy(Result):
        ...     label: str
        ...     value: float
        >>> Toy.from_json(Toy("a", float("nan")).to_json())
        Toy(label='a', value=nan)
        >>> print(Toy("a", 1.5).to_csv(), end="")
        label,value
        a,1.5
    """

    #: Fields left out of the CSV table (long lists, nested data).
    csv_exclude: ClassVar[tuple[str, ...]] = ("meta",)
    #: Derived properties also written to JSON for readers (ignored when reading back).
    json_extras: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The fields (and ``json_extras``) as strict-JSON data."""
        data: dict[str, Any] = encode(self)
        data.update((name, encode(getattr(self, name))) for name in self.json_extras)
        return data

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """Inverse of :meth:`to_dict`."""
        return from_data(cls, data)  # type: ignore[no-any-return]

    def to_json(self, indent: int | None = 1) -> str:
        """Strict JSON text (non-finite floats as strings)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        """Read what :meth:`to_json` wrote (a string; use :meth:`load` for a file)."""
        if not isinstance(text, str) or not text.lstrip().startswith("{"):
            raise ValueError(f"{cls.__name__}.from_json takes JSON text starting with '{{', "
                             f"got {str(text)[:40]!r}; use {cls.__name__}.load(path) for a file")
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write to ``path``: JSON for ``.json``, the CSV table for ``.csv``.

        The file is written whole or not at all (a temporary file, then renamed), so an
        interrupted save never leaves half a file; missing parent folders are created.
        """
        path = Path(path)
        if path.suffix not in _SUFFIXES:
            raise ValueError(f"path must end in one of {list(_SUFFIXES)}, got {str(path)!r}")
        text = self.to_json() + "\n" if path.suffix == ".json" else self.to_csv()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls: type[R], path: str | Path) -> R:
        """Read a ``.json`` file written by :meth:`save`.

        Raises:
            ValueError: not a ``.json`` path, unreadable, or not this class's fields
                (the message names the file).
        """
        path = Path(path)
        if path.suffix != ".json":
            raise ValueError(f"{cls.__name__}.load reads .json files, got {str(path)!r}")
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"cannot read a {cls.__name__} from {path}: {e}") from None

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Column names (after ``label``) and rows for the CSV table."""
        records = getattr(self, "records", None)
        if isinstance(records, list):
            if not records:
                return [], []
            cols = [f.name for f in dataclasses.fields(records[0])]
            extra = ["kind"] if hasattr(self, "kind") else []
            rows = [([self.kind] if extra else []) + [getattr(r, c) for c in cols]
                    for r in records]
            return extra + cols, rows
        cols = [f.name for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.name != "label" and f.name not in self.csv_exclude
                and _is_scalar(getattr(self, f.name))]
        return cols, [[getattr(self, c) for c in cols]]

    def to_csv(self) -> str:
        """This result as a CSV table (see :func:`write_csv` for several)."""
        return write_csv([self])

    @classmethod
    def from_csv(cls: type[R], text: str) -> list[R]:
        """Results with a ``records`` list back from their CSV table, one per label (and
        kind); the other fields keep their defaults.

        Examples:
            >>> from signalprop.results import BlockStats, SPPResult
            >>> t = write_csv([SPPResult("a", [BlockStats("b0", 0, 0.0, 1.0)])])
            >>> SPPResult.from_csv(t)[0].records[0].avg_var
            1.0
        """
        hints = typing.get_type_hints(cls)
        if "records" not in hints:
            raise ValueError(f"{cls.__name__} has no records; its CSV is a summary table")
        (record_cls,) = typing.get_args(hints["records"])
        record_hints = typing.get_type_hints(record_cls)
        out: dict[tuple[str, str], Any] = {}
        for row in csv.DictReader(io.StringIO(text)):
            label, kind = row.pop("label"), row.pop("kind", None)
            res = out.get((label, str(kind)))
            if res is None:
                res = cls(label=label, records=[], **({"kind": kind} if kind else {}))
                out[(label, str(kind))] = res
            fields = {k: _read_cell(record_hints[k], v) for k, v in row.items()}
            res.records.append(record_cls(**fields))  # type: ignore[attr-defined]
        return list(out.values())


def _read_cell(tp: Any, text: str) -> Any:
    # CSV cells are text: read them as the field's annotated type ("" is None).
    if text == "":
        return None
    try:
        return decode(tp, text)
    except (TypeError, ValueError):
        return decode(tp, float(text))


class RecordsResult(Result):
    """A result holding a list of per-block (per-layer) ``records``: its length, the
    records' names, one field of every record as a list, and the ``kind`` check.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> r = SPPResult("toy", [BlockStats("a", 0, 0.0, 1.0), BlockStats("b", 1, 0.5, 2.0)])
        >>> len(r), r.names, r.column("avg_var")
        (2, ['a', 'b'], [1.0, 2.0])
    """

    #: Allowed values of a ``kind`` field, where the class has one.
    kinds: ClassVar[tuple[str, ...]] = ("measured", "predicted")

    def __post_init__(self) -> None:
        kind = getattr(self, "kind", None)
        if kind is not None and kind not in self.kinds:
            allowed = " or ".join(repr(k) for k in self.kinds)
            raise ValueError(f"kind must be {allowed}, got {kind!r}")

    def __len__(self) -> int:
        return len(self.records)  # type: ignore[attr-defined]

    @property
    def names(self) -> list[str]:
        """The records' names, in order."""
        return [r.name for r in self.records]  # type: ignore[attr-defined]

    def column(self, name: str) -> list[Any]:
        """Field ``name`` of every record, in order."""
        return [getattr(r, name) for r in self.records]  # type: ignore[attr-defined]


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _cell(v: Any) -> str:
    # float() reads back "NaN", "Infinity" and "-Infinity", so numbers round-trip.
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(encode_float(v))
    return str(v)


def write_csv(results: Iterable[Result], path: str | Path | None = None) -> str:
    """Several results of one class as one CSV table (``label`` first); also write ``path``.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> a = SPPResult("a", [BlockStats("b0", 0, 0.0, 1.0)])
        >>> print(write_csv([a, SPPResult("b", [BlockStats("b0", 0, 0.5, 2.0)])]), end="")
        label,kind,name,index,avg_sq_mean,avg_var,res_var,nonfinite
        a,measured,b0,0,0.0,1.0,,0
        b,measured,b0,0,0.5,2.0,,0
    """
    results = list(results)
    kinds = {type(r).__name__ for r in results}
    if len(kinds) > 1:
        raise ValueError(f"write_csv takes results of one class, got {sorted(kinds)}")
    columns: list[str] | None = None
    body: list[list[str]] = []
    for r in results:
        cols, rows = r.csv_rows()
        if not rows:
            continue
        if columns is None:
            columns = cols
        elif cols != columns:
            raise ValueError(f"results have different CSV columns: {columns} vs {cols}")
        label = str(getattr(r, "label", ""))
        body += [[label, *(_cell(v) for v in row)] for row in rows]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["label", *(columns or [])])
    w.writerows(body)
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text)
    return text
