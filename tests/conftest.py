"""Shared test settings: deterministic torch, few threads (CI has 2 cores)."""

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
    if torch is not None:
        torch.set_num_threads(2)
