"""Executing sweep runs as Ray tasks (optional extra ``ray``).

Each run is one task asking for one CPU, so Ray spreads runs over the cluster's cores and
machines; a run on ``cuda`` (or ``auto`` on a cluster with GPUs) also asks for one GPU,
which Ray chooses and makes the task's only visible GPU (so ``cuda:N`` becomes ``cuda``).
Ray hides every GPU from a task that asks for none, so CPU runs never touch one. Only the
driver writes the database: a task returns its result and the driver records it. Run
directories must be on storage every node can reach (a shared file system) for resuming
to find their checkpoints; results reach the database either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from signalprop.sweep._exec import run_one


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError("--ray needs Ray: pip install 'signalprop[ray]' (or pip install "
                          "ray)") from None
    return ray


def ray_gpus(config: dict[str, Any], cluster_gpus: float) -> tuple[int, dict[str, Any]]:
    """(GPUs the task for ``config`` asks Ray for, the config it runs with).

    Examples:
        >>> ray_gpus({"device": "auto"}, 0.0), ray_gpus({"device": "cuda:3"}, 4.0)
        ((0, {'device': 'auto'}), (1, {'device': 'cuda'}))
    """
    device = config.get("device", "cpu")
    if device.startswith("cuda") or (device == "auto" and cluster_gpus >= 1):
        return 1, {**config, "device": "cuda"}
    return 0, config


def run_ray(jobs: list[tuple[str, dict[str, Any], str]], address: str, threads: int = 1
            ) -> Iterator[tuple[str, str, Any]]:
    """Run ``jobs`` (run_id, config, out) as Ray tasks on the cluster at ``address``.

    ``address`` is passed to ``ray.init`` ("auto" finds a running cluster, or
    "ray://host:10001", "host:6379"). If this process is already connected to Ray, that
    connection is used and left open. Yields ``("start", run_id, worker)`` and
    ``("done", run_id, result)`` like the local executor; at most as many runs are in
    flight as the cluster has CPUs, so "running" rows in the database are really running.
    """
    ray = _ray()
    owned = not ray.is_initialized()
    if owned:
        # NOTE: no usage statistics leave the machine unless the user opted in.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=address, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}})
    try:
        resources = ray.cluster_resources()
        capacity = max(1, int(resources.get("CPU", 1) // threads))
        gpus = float(resources.get("GPU", 0))
        if any(ray_gpus(config, gpus)[0] for _, config, _ in jobs):
            capacity = min(capacity, max(1, int(gpus)))  # GPU runs queue for their GPU
        task = ray.remote(num_cpus=threads, max_retries=0)(run_one)
        pending = list(jobs)
        inflight: dict[Any, str] = {}
        while pending or inflight:
            while pending and len(inflight) < capacity:
                run_id, config, out = pending.pop(0)
                need, config = ray_gpus(config, gpus)
                ref = task.options(num_gpus=need).remote(config, out, threads)
                inflight[ref] = run_id
                yield "start", run_id, "ray"
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                run_id = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as e:  # noqa: BLE001 -- a lost task fails its run only
                    result = {"status": "failed", "error": f"Ray task failed: "
                              f"{type(e).__name__}: {str(e).splitlines()[0]}"}
                yield "done", run_id, result
    finally:
        if owned:
            ray.shutdown()
