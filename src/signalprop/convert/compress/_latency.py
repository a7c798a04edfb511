"""Latency of modules on this machine's CPU, measured side by side and cached on disk.

Modules are timed in rounds (every module once per round, in a rotating order) so that
load drifting on a shared machine reaches all of them alike; each module's latency is
the median over rounds. One sample runs the module n times (n chosen so that a sample
lasts about ``min_sample`` seconds) and divides. With one thread the clock is the
process's CPU time (time spent waiting for a busy core is not counted); with more
threads CPU time would add the threads up, so wall time is used.

The cache is a JSON file per machine (host name and processor) under
``$SIGNALPROP_CACHE/latency/`` (default ``~/.cache/signalprop``), keyed by the module's
configuration, the input shape, dtype, thread count, clock and torch version: a
measured convolution shape is never measured again on that machine.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn

CLOCKS = ("cpu", "wall")


def default_cache_dir() -> Path:
    """``$SIGNALPROP_CACHE``, else ``~/.cache/signalprop``."""
    env = os.environ.get("SIGNALPROP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "signalprop"


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """A file-name-safe name of this machine: host name and a hash of the processor."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", platform.node() or "host")[:40]
    digest = hashlib.sha1(_processor().encode()).hexdigest()[:8]
    return f"{host}-{digest}"


def module_key(module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype, threads: int,
               clock: str) -> str:
    """The cache key of timing ``module`` on an input of ``shape``."""
    desc = repr(module).replace("\n", "").replace(" ", "")
    bias = [type(m).__name__ + ("+b" if getattr(m, "bias", None) is not None else "")
            for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return (f"{desc}|{','.join(bias)}|x={list(shape)}|{str(dtype).replace('torch.', '')}"
            f"|threads={threads}|{clock}|torch={torch.__version__}")


class LatencyCache:
    """Measured latencies by key, read from and merged back into one JSON file.

    Examples:
        >>> cache = LatencyCache(Path("latency.json"))
        >>> cache.put("conv|x=[1]", 0.002)
        >>> cache.save()
        >>> LatencyCache(Path("latency.json")).get("conv|x=[1]")
        0.002
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, float] = self._read() if path is not None else {}
        self.new: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text())  # type: ignore[union-attr]
        except (OSError, ValueError):
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}

    def get(self, key: str) -> float | None:
        return self.entries.get(key)

    def put(self, key: str, seconds: float) -> None:
        self.entries[key] = self.new[key] = seconds

    def save(self) -> None:
        """Merge the new entries into the file (written atomically)."""
        if self.path is None or not self.new:
            return
        merged = {**self._read(), **self.new}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, indent=0, sort_keys=True))
        tmp.replace(self.path)
        self.new = {}


@contextmanager
def timing_threads(threads: int) -> Iterator[None]:
    """torch on ``threads`` intra-op threads, with the garbage collector off."""
    old, enabled = torch.get_num_threads(), gc.isenabled()
    torch.set_num_threads(threads)
    gc.disable()
    try:
        yield
    finally:
        torch.set_num_threads(old)
        if enabled:
            gc.enable()


def clock_fn(clock: str) -> Callable[[], float]:
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r} is not allowed; valid: {', '.join(CLOCKS)}")
    return time.process_time if clock == "cpu" else time.perf_counter


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, clock: str,
                min_sample: float = 2e-3) -> dict[str, list[float]]:
    """Per-call seconds of each function, ``repeats`` samples each, in rotating rounds.

    Examples:
        >>> t = interleaved({"a": lambda: sum(range(1000)), "b": lambda: None}, 3, "wall")
        >>> len(t["a"]), t["a"][0] > t["b"][0]
        (3, True)
    """
    now = clock_fn(clock)
    counts = {}
    for k, fn in fns.items():  # warm up, then choose how many calls make one sample
        fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-7)
        counts[k] = max(1, min(1000, math.ceil(min_sample / one)))
    keys, out = list(fns), {k: [] for k in fns}
    for r in range(repeats):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            fn, n = fns[k], counts[k]
            t0 = now()
            for _ in range(n):
                fn()
            out[k].append((now() - t0) / n)
    return out


def time_modules(items: dict[str, tuple[nn.Module, tuple[int, ...]]], *, repeats: int,
                 threads: int, clock: str, dtype: torch.dtype,
                 cache: LatencyCache | None = None) -> dict[str, float]:
    """Median latency of each ``(module, input shape)``, measured side by side; entries
    found in ``cache`` are not measured again, new ones are added to it."""
    keys = {name: module_key(m, shape, dtype, threads, clock)
            for name, (m, shape) in items.items()}
    found = {name: cache.get(k) for name, k in keys.items()} if cache else {}
    todo = [name for name in items if found.get(name) is None]
    fns = {}
    gen = torch.Generator().manual_seed(0)
    for name in todo:
        m, shape = items[name]
        m = m.eval()
        x = torch.randn(shape, generator=gen, dtype=dtype)
        fns[name] = _call(m, x)
    with timing_threads(threads), torch.no_grad():
        samples = interleaved(fns, repeats, clock) if fns else {}
    out = {name: v for name, v in found.items() if v is not None}
    for name, s in samples.items():
        out[name] = statistics.median(s)
        if cache is not None:
            cache.put(keys[name], out[name])
    if cache is not None:
        cache.save()
    return out


def _call(m: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    return lambda: m(x)
