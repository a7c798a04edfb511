"""Shared test settings: deterministic torch, few threads (CI has 2 cores)."""

import os

import numpy as np
import pytest

try:
    import torch
except ImportError:  # theory tests still run without torch
    torch = None


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)
    if torch is not None:
        torch.manual_seed(0)


def pytest_configure(config: pytest.Config) -> None:
    # CI has 2 free cores. On a machine where another process holds a core, OpenMP
    # threads wait on each other ~100x longer than the work: set SIGNALPROP_TEST_THREADS=1.
    threads = int(os.environ.get("SIGNALPROP_TEST_THREADS", "0"))
    if torch is not None and threads > 0:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN202 -- a fixture
    """Latency tables measured by tests are cached in a temporary folder, never in the
    user's ``~/.cache/signalprop``."""
    old = os.environ.get("SIGNALPROP_CACHE")
    os.environ["SIGNALPROP_CACHE"] = str(tmp_path_factory.mktemp("signalprop-cache"))
    yield
    if old is None:
        os.environ.pop("SIGNALPROP_CACHE", None)
    else:
        os.environ["SIGNALPROP_CACHE"] = old


@pytest.fixture(scope="module")
def local_ray():  # noqa: ANN201 -- the ray module
    """A local Ray instance (2 CPUs, one OpenMP thread per worker) for one test module."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield ray
    finally:
        ray.shutdown()
