"""Checkpoints written atomically and read back with ``torch.load(weights_only=True)``.

A checkpoint is written to a temporary file in the same directory, flushed to disk, then
renamed over the previous one (``os.replace`` is atomic on POSIX and Windows), so a crash
or a failed write at any moment leaves either the old or the new checkpoint, never a
truncated one. Only tensors, numbers, strings, lists and dicts are stored (the config as
JSON text), which is what ``weights_only=True`` accepts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message says what is intact.

    Examples:
        >>> try:
        ...     load_checkpoint("missing.pt")
        ... except CheckpointError as err:
        ...     print(err)
        no checkpoint at missing.pt
    """


def atomic_write(path: Path, write: Any, mode: str = "wb") -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts) to ``path``.

    Raises:
        CheckpointError: the write failed; the previous checkpoint at ``path`` is intact.

    Examples:
        >>> save_checkpoint(CHECKPOINT, {"step": 3, "weights": torch.ones(2)})
        >>> load_checkpoint(CHECKPOINT)["weights"]
        tensor([1., 1.])
    """
    path = Path(path)
    try:
        atomic_write(path, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as e:
        kept = "the previous checkpoint is intact" if path.exists() else "no checkpoint exists"
        raise CheckpointError(f"could not write checkpoint {path} ({type(e).__name__}: {e}); "
                              f"{kept}") from e


def _reason(e: Exception) -> str:
    """One line from torch's multi-paragraph unpickling errors."""
    text = str(e)
    marker = "WeightsUnpickler error: "
    if marker in text:
        return "only tensors and plain containers are accepted; " + (
            text.split(marker, 1)[1].split(" was not", 1)[0].strip())
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        CheckpointError: missing or unreadable file (names the path and the reason).

    Examples:
        >>> save_checkpoint("checkpoint.pt", {"step": 3, "config": "{}"})
        >>> load_checkpoint("checkpoint.pt")
        {'step': 3, 'config': '{}'}
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any unpickling failure means an unusable file
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(e).__name__}: "
                              f"{_reason(e)}); delete it to start the run over") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a signalprop checkpoint (it holds a "
                              f"{type(state).__name__}, not a mapping of fields)")
    if "step" not in state:
        raise CheckpointError(f"{path} is not a signalprop checkpoint (it has no field "
                              f"'step'; fields: {', '.join(map(str, state)) or 'none'})")
    return state
