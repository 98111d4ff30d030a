"""Every async test of this suite runs on asyncio and on trio (anyio's pytest plugin).

Property tests are derandomized by default, so ``make test`` (and CI) explores the same
examples every run; ``pytest --hypothesis-profile=explore`` looks for new ones.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
