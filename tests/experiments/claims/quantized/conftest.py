import pytest

from tests.experiments.claims.quantized import _noise


@pytest.fixture(autouse=True)
def _fresh_noise():
    _noise.reset()
