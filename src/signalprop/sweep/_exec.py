"""Executing sweep runs: the function every worker calls, and the local process pool.

Workers are spawned processes with one torch thread each. On Linux a worker asks the
kernel to kill it when the sweep driver dies (``PR_SET_PDEATHSIG``) and also watches its
parent, so killing the driver never leaves orphans training in the background.
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
        result = fit(TrainConfig.from_dict(config), out, resume=True, progress=False)
        return {**result.to_dict(), "worker": worker}
    except Exception as e:  # noqa: BLE001 -- a failed run is recorded, the sweep goes on
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "error.txt").write_text(traceback.format_exc())
        return {"status": "failed", "error": f"{type(e).__name__}: {e}", "worker": worker}


def _die_with_parent(parent: int, threads: int) -> None:
    """Pool initializer: one thread, and exit as soon as the driver process is gone."""
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
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent,
                                   initargs=(os.getpid(), threads))
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
