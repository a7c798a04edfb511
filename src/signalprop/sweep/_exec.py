"""Executing sweep runs: the function every worker calls, and the local process pool.

Workers are spawned processes with one torch thread each. On Linux a worker asks the
kernel to kill it when the sweep driver dies (``PR_SET_PDEATHSIG``) and also watches its
parent, so killing the driver never leaves orphans training in the background.

GPUs: each pool worker takes a number 0 .. workers - 1 when it starts, and runs whose
device is ``cuda`` (or ``auto`` on a machine with a GPU) go to GPU ``number mod GPUs``:
round-robin, one GPU per worker process, several workers sharing a GPU when there are more
workers than GPUs. A run that names ``cuda:N`` runs on GPU N whichever worker takes it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_slot: int | None = None  # this pool worker's number (None: not a pool worker)


def worker_device(device: str, slot: int | None) -> str:
    """The device pool worker ``slot`` runs a config's ``device`` on (see the module
    docstring): ``cuda`` / ``auto`` become a GPU round-robin by slot; the rest is kept.

    Examples:
        >>> worker_device("cpu", 3), worker_device("cuda:1", 3), worker_device("cuda", None)
        ('cpu', 'cuda:1', 'cuda')
    """
    if slot is None or device not in ("cuda", "auto"):
        return device
    import torch

    if not torch.cuda.is_available():
        return device  # auto: the CPU; cuda: fit says in one line that there is no GPU
    return f"cuda:{slot % torch.cuda.device_count()}"


def run_one(config: dict[str, Any], out: str, threads: int = 1) -> dict[str, Any]:
    """Train one sweep run in this process (resuming from its checkpoint if any).

    Returns the ``TrainResult`` dict plus ``worker`` ("host:pid"); an exception becomes
    ``{"status": "failed", "error": ...}`` with the traceback saved to ``out/error.txt``.
    """
    import torch

    torch.set_num_threads(threads)
    from signalprop.train import TrainConfig, fit

    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        config = {**config, "device": worker_device(config.get("device", "cpu"), _slot)}
        result = fit(TrainConfig.from_dict(config), out, resume=True, progress=False)
        return {**result.to_dict(), "worker": worker}
    except Exception as e:  # noqa: BLE001 -- a failed run is recorded, the sweep goes on
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "error.txt").write_text(traceback.format_exc())
        return {"status": "failed", "error": f"{type(e).__name__}: {e}", "worker": worker}


def _take_slot(slots: Any) -> None:
    """Take this worker's number from the queue ``slots`` (one number per worker)."""
    global _slot
    _slot = int(slots.get(timeout=60))


def _init_worker(parent: int, threads: int, slots: Any) -> None:
    """Pool initializer: a worker number, one thread, exit when the driver is gone."""
    _take_slot(slots)
    _die_with_parent(parent, threads)


def _die_with_parent(parent: int, threads: int) -> None:
    """One thread, and exit as soon as the driver process is gone."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the watcher thread below still works
        pass
    if os.getppid() != parent:  # the driver died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="signalprop-parent-watch").start()
    import torch

    torch.set_num_threads(threads)


def run_local(jobs: list[tuple[str, dict[str, Any], str]], workers: int, threads: int = 1
              ) -> Iterator[tuple[str, str, Any]]:
    """Run ``jobs`` (run_id, config, out) on ``workers`` spawned processes.

    Yields ``("start", run_id, worker)`` when a run is handed to a process and
    ``("done", run_id, result)`` when it ends; at most ``workers`` runs are in flight.
    A worker that dies (killed, out of memory) fails its run and the pool is rebuilt.
    """
    ctx = multiprocessing.get_context("spawn")
    pending = list(jobs)
    while pending:
        slots = ctx.Queue()
        for i in range(workers):
            slots.put(i)
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(os.getpid(), threads, slots))
        inflight: dict[Future, str] = {}
        broken = False
        try:
            while (pending or inflight) and not broken:
                while pending and len(inflight) < workers:
                    run_id, config, out = pending.pop(0)
                    inflight[pool.submit(run_one, config, out, threads)] = run_id
                    yield "start", run_id, f"{socket.gethostname()}:pool"
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    run_id = inflight.pop(fut)
                    try:
                        yield "done", run_id, fut.result()
                    except BrokenProcessPool:
                        broken = True
                        yield "done", run_id, {"status": "failed", "error":
                                               "its worker process died (killed or out of "
                                               "memory)"}
            if broken:
                for run_id in inflight.values():
                    yield "done", run_id, {"status": "failed",
                                           "error": "a worker process died (killed or out "
                                           "of memory); rerun the sweep to retry"}
                inflight.clear()
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
